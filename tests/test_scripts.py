"""The one script runner: loads a script Redis lacks, maps lease and staleness errors once."""

from importlib import resources

import pytest
import redis as redis_lib

from jobjournal.common import keys
from jobjournal.common.errors import LeaseLost, StaleView
from jobjournal.common.keys import LEGACY
from jobjournal.common.lease import RENEW_LEASE
from jobjournal.common.scripts import Script, run_script
from jobjournal.lister.view import APPLY_BATCH
from jobjournal.manager.scripts import POST_EVENTS

PACKAGES = ("jobjournal.common", "jobjournal.manager", "jobjournal.lister")


def test_a_script_redis_lacks_is_loaded_and_run_with_its_arguments(redis):
    redis.script_flush()
    redis.set("lease", "me")
    assert run_script(redis, RENEW_LEASE, ["lease"], ["me", 60000]) == 1
    assert redis.script_exists(RENEW_LEASE.sha) == [True]
    assert 0 < redis.pttl("lease") <= 60000


def test_a_notleader_reply_raises_lease_lost(redis):
    redis.set(keys.manager_lease(), "someone else")
    fixed = [keys.manager_lease(), LEGACY.journal(), LEGACY.journal_head(), LEGACY.inbox_cursor(),
             LEGACY.active_jobs(), LEGACY.inactive_jobs()]
    with pytest.raises(LeaseLost, match="NOTLEADER"):
        run_script(redis, POST_EVENTS, fixed, ["me", 2, "", 0, 0])
    assert not redis.exists(LEGACY.journal())


def test_a_stale_reply_raises_stale_view(redis):
    redis.set(LEGACY.lister_lease(), "me")
    redis.hset(LEGACY.view_meta(1), "seq", 5)
    with pytest.raises(StaleView, match="STALE"):
        run_script(redis, APPLY_BATCH, [LEGACY.view_meta(1), LEGACY.lister_lease()], ["me", 4, 6, "1-0"])
    assert redis.hget(LEGACY.view_meta(1), "seq") == b"5"


def test_other_error_replies_stay_redis_errors(redis):
    script = Script("jobjournal.manager", "append_reply")
    with pytest.raises(redis_lib.ResponseError, match="GONE"):
        run_script(redis, script, ["no-such-reply"], [60, 0, "1-0", 1, "type", "jobs"])


@pytest.mark.parametrize("package", PACKAGES)
def test_every_lua_script_names_its_keys_and_arguments_in_its_header(package):
    for path in resources.files(package).joinpath("lua").iterdir():
        header = "".join(line for line in path.read_text().splitlines(keepends=True) if line.startswith("--"))
        assert "KEYS[1]" in header and "ARGV[1]" in header, path.name


def test_several_calls_go_in_one_round_trip_each_loaded_where_missing_and_errors_map_once_all_ran(redis):
    from jobjournal.common.scripts import run_scripts

    redis.script_flush()
    redis.set("a", "me")
    redis.set("b", "me")
    assert run_scripts(redis, [(RENEW_LEASE, ["a"], ["me", 60000]), (RENEW_LEASE, ["b"], ["you", 60000])]) == [1, 0]
    redis.set(keys.manager_lease(), "someone else")
    fixed = [keys.manager_lease(), LEGACY.journal(), LEGACY.journal_head(), LEGACY.inbox_cursor(),
             LEGACY.active_jobs(), LEGACY.inactive_jobs()]
    with pytest.raises(LeaseLost, match="NOTLEADER"):
        run_scripts(redis, [(POST_EVENTS, fixed, ["me", 2, "", 0, 0]), (RENEW_LEASE, ["a"], ["me", 50000])])
    assert 0 < redis.pttl("a") <= 50000, "the call after the refused one still ran"


def test_script_calls_on_a_stale_slot_table_follow_moved_and_run_once_each(cluster_url):
    from jobjournal.common.connection import connect_url
    from jobjournal.common.scripts import run_scripts

    store = connect_url(cluster_url)
    try:
        store.flushall()
        leases = [f"{{t{index}}}:lease" for index in range(6)]  # tags on every master
        for lease in leases:
            store.set(lease, "me")
        manager = store.nodes_manager
        nodes = [node for node in manager.nodes_cache.values() if node.server_type == "primary"]
        for slot, holders in list(manager.slots_cache.items()):  # every slot mapped to a wrong node
            manager.slots_cache[slot] = [next(node for node in nodes if node is not holders[0])]
        assert run_script(store, RENEW_LEASE, [leases[0]], ["me", 60000]) == 1
        for slot, holders in list(manager.slots_cache.items()):
            manager.slots_cache[slot] = [next(node for node in nodes if node is not holders[0])]
        assert run_scripts(store, [(RENEW_LEASE, [lease], ["me", 50000]) for lease in leases]) == [1] * 6
        assert all(40000 < store.pttl(lease) <= 50000 for lease in leases[1:])
    finally:
        store.close()
