"""Commands sent pre-packed, in one write (common.packed), on a real Redis."""

import pytest
import redis as redis_lib

from jobjournal.common.connection import connect_url
from jobjournal.common.packed import Pending, execute_packed, is_cluster, pack, pairs, reads


def test_packed_commands_run_in_order_and_return_their_replies(redis):
    replies = execute_packed(redis, [pack(("SET", "k", "v")), pack(("APPEND", "k", b"w")), pack(("GET", "k"))])
    assert replies == [b"OK", 2, b"vw"]


def test_an_error_reply_raises_after_every_reply_was_read(redis):
    with pytest.raises(redis_lib.ResponseError, match="WRONGTYPE"):
        execute_packed(redis, [pack(("SET", "s", "v")), pack(("XADD", "s", "*", "f", "v")), pack(("SET", "t", "1"))])
    assert redis.get("t") == b"1", "the commands after the error ran"
    assert redis.ping(), "the connection is still usable"


def test_pending_replies_are_read_after_the_caller_went_on(redis):
    with Pending(redis) as pending:
        pending.send([pack(("INCR", "n")), pack(("INCR", "n"))])
        assert pending.due == 2
        redis.set("other", "1")  # the caller goes on with other connections meanwhile
        assert pending.replies() == [1, 2] and pending.due == 0


def test_closing_with_a_blocked_read_due_does_not_wait_for_it(redis):
    import threading

    def send_and_close():
        with Pending(redis) as pending:
            pending.send([pack(("BLPOP", "nothing", 0))])  # blocks for ever: only not waiting returns

    closing = threading.Thread(target=send_and_close, daemon=True)
    closing.start()
    closing.join(30)
    assert not closing.is_alive(), "closing waited for the blocked read"
    assert redis.ping()



@pytest.fixture(params=["standalone", "cluster"])
def store(request, redis_url):
    """An emptied client of the session's Redis, or of a local 3-master Redis Cluster."""
    url = redis_url if request.param == "standalone" else request.getfixturevalue("cluster_url")
    client = connect_url(url)
    client.flushall()
    yield client
    client.close()


def _keys_on_every_node(count: int = 12) -> list[str]:
    return [f"{{t{index}}}:k" for index in range(count)]  # tags t0..t11 hash to slots on all 3 masters


def test_reads_answer_in_order_from_every_node_in_either_protocol(store):
    keys = _keys_on_every_node()
    for index, key in enumerate(keys):
        store.zadd(key, {"a": index, "b": index + 0.5})
        store.hset(key + "h", "f", index)
    commands = [command for key in keys for command in (("ZRANGE", key, 0, -1, "WITHSCORES"), ("HGETALL", key + "h"),
                                                        ("GET", key + "none"))]
    replies = reads(store, commands)
    for index in range(len(keys)):
        scores, fields, nothing = replies[3 * index: 3 * index + 3]
        assert [(m, float(s)) for m, s in pairs(scores)] == [(b"a", index), (b"b", index + 0.5)]
        assert pairs(fields) == [(b"f", str(index).encode())] and nothing is None


def test_pairs_reads_resp2_flat_and_resp3_replies_alike():
    assert pairs([b"a", b"1.5", b"b", b"2"]) == [(b"a", b"1.5"), (b"b", b"2")]
    assert pairs([[b"a", 1.5], [b"b", 2.0]]) == [[b"a", 1.5], [b"b", 2.0]]
    assert pairs({b"f": b"v"}) == [(b"f", b"v")] and pairs([]) == []


def test_a_read_error_raises_after_every_node_answered_and_the_client_goes_on(store):
    keys = _keys_on_every_node()
    store.set(keys[0], "a string")
    store.set(keys[-1], "last")
    with pytest.raises(redis_lib.ResponseError, match="WRONGTYPE"):
        reads(store, [("ZRANGE", keys[0], 0, -1)] + [("GET", key) for key in keys[1:]])
    assert reads(store, [("GET", keys[-1])]) == [b"last"], "every connection is usable again"


def test_a_read_on_a_stale_slot_table_follows_moved_and_answers(cluster_url):
    store = connect_url(cluster_url)
    assert is_cluster(store)
    store.flushall()
    keys = _keys_on_every_node()
    for key in keys:
        store.set(key, key)
    manager = store.nodes_manager
    nodes = [node for node in manager.nodes_cache.values() if node.server_type == "primary"]
    for slot, holders in list(manager.slots_cache.items()):  # a stale table: every slot on one wrong node
        manager.slots_cache[slot] = [next(node for node in nodes if node is not holders[0])]
    assert reads(store, [("GET", key) for key in keys]) == [key.encode() for key in keys]
    store.close()


def test_keys_with_one_hash_tag_are_read_from_the_node_of_that_tag(store):
    keys = ["jj{a}:x", "jj{a}:y", "{b}", "plain", "{}:c", "x{}{d}"]  # "{}" is no tag: the whole key hashes
    for key in keys:
        store.set(key, key)
    assert reads(store, [("GET", key) for key in keys]) == [key.encode() for key in keys]
