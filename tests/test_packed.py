"""Commands sent pre-packed, in one write (common.packed), on a real Redis."""

import pytest
import redis as redis_lib

from jobjournal.common.packed import Pending, execute_packed, pack


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

