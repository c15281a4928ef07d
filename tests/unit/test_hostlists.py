"""RFC 29 hostlists, read (common/hostlists.py): matched without expanding, expanded when bounded."""

import pytest

from jobjournal.common import hostlists
from jobjournal.common.resources import hostlist


def _matches(text: str, host: str) -> bool:
    return any(pattern.matches(host) for pattern in hostlists.parse(text))


def test_a_hostlist_names_its_hosts_in_order():
    assert hostlists.expand("node[0-2,5],login1,gpu[08-10]-ib") == [
        "node0", "node1", "node2", "node5", "login1", "gpu08-ib", "gpu09-ib", "gpu10-ib"]


def test_what_we_write_reads_back():
    assert hostlists.expand(hostlist(["node3", "node4", "node9"])) == ["node3", "node4", "node9"]


@pytest.mark.parametrize(
    ("text", "host", "expected"),
    [("node[0-4294967295]", "node123456789", True), ("node[1-3]", "node01", False), ("node[01-03]", "node1", False),
     ("node[01-03]", "node02", True), ("node[1-3]", "node", False), ("node[1-3]", "node4", False),
     ("node[1-3]-ib", "node2-ib", True), ("node[1-3]-ib", "node2", False), ("login1", "login1", True)],
)
def test_a_host_matches_without_the_list_being_expanded(text, host, expected):
    assert _matches(text, host) is expected


@pytest.mark.parametrize("text", ["", "node[", "node]", "node[1-2", "a[1]b[2]", "node[x]", "node[3-1]", "node[]"])
def test_what_is_not_a_hostlist_is_refused(text):
    with pytest.raises(hostlists.HostlistError):
        hostlists.parse(text)


def test_expanding_is_bounded():
    with pytest.raises(hostlists.HostlistError, match="more than 10 hosts"):
        hostlists.expand("node[0-99]", limit=10)


def test_what_is_expanded_is_what_matches():
    for text in ("node[08-100]", "node[0-12]", "n[007-010]x"):
        hosts = hostlists.expand(text)
        assert all(_matches(text, host) for host in hosts), text
        assert not any(_matches(text, host) for host in ("node", "node-1", "node0008", "n7x"))


def test_a_range_bound_of_absurd_length_is_refused_not_crashed_on():
    with pytest.raises(hostlists.HostlistError):
        hostlists.parse("node[" + "9" * 5000 + "]")
