"""`jobjournal status` and `jobjournal resources`, through the CLI on the test Redis."""

import json

from jobjournal.common import keys
from jobjournal.common.ids import f58
from tests.helpers import names, submit, wait_caught_up, wait_for


def test_status_says_who_leads_who_applies_and_how_far_behind(redis, start_manager, start_lister, cli):
    down = cli("status")
    assert down.exit_code == 0
    assert "manager   none: requests wait in the inbox" in down.output and "listers   0 live" in down.output
    assert "no job view and no lister to build it" in down.output
    start_manager()
    worker = start_lister()
    wait_caught_up(redis)
    report = json.loads(cli("status", "--json").output)
    assert report["manager"] == redis.get(keys.manager_lease()).decode()
    assert report["listers"] == {worker.name.rsplit(":", 1)[0]: "0"}, "host:pid: partitions"
    assert report["view"] == {"fatal": None, "warnings": [], "behind_events": 0, "behind_s": 0.0}
    assert report["queues"] == {"ingest": 0, "exec": 0} and report["executors"] == {} and report["inbox"] >= 0
    assert "view      caught up" in cli("status").output


def test_resources_lists_free_and_allocated_nodes_and_cores_of_the_leading_manager(redis, start_manager, cli):
    missing = cli("resources")
    assert missing.exit_code == 1 and "no manager has published its resources" in missing.output
    start_manager(nodes=4, cores_per_node=8)
    [whole] = submit(redis, ntasks=1, cores_per_task=8, sim={"runtime": 600})  # all of one node
    [part] = submit(redis, ntasks=1, cores_per_task=3, sim={"runtime": 600})  # 3 cores of another
    wait_for(lambda: all("start" in names(redis, j) for j in (whole, part)))

    def rows() -> list:
        return json.loads(cli("resources", "--json").output)["rows"]

    expected = [{"state": "free", "nnodes": 3, "ncores": 21, "nodelist": "node[1-3]"},
                {"state": "allocated", "nnodes": 2, "ncores": 11, "nodelist": "node[0-1]"}]
    wait_for(lambda: rows() == expected, what=f"the manager to publish its pool ({f58(part)} on node1)")
    table = cli("resources").output.splitlines()
    assert table[0].split() == ["STATE", "NNODES", "NCORES", "NODELIST"]
    assert table[1].split() == ["free", "3", "21", "node[1-3]"] and table[2].split() == ["allocated", "2", "11",
                                                                                         "node[0-1]"]
