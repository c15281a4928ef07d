"""The web server's one journal reader (jobjournal/web/fanout.py): every stream gets what is posted
after it subscribed, a slow or lost one is told to resync, and no subscriber or thread outlives
its stream. Real Redis; a real uvicorn server in a thread where a client must come and go."""

import asyncio
import contextlib
import http.client
import socket
import threading

import pytest
import uvicorn

from jobjournal.common.journal import JournalGap
from jobjournal.common.layout import read_layout
from jobjournal.web import fanout as fanout_module
from jobjournal.web.app import make_app
from jobjournal.web.fanout import QUEUE, RESYNC, JournalFanout, Subscriber
from tests.helpers import submit, wait_for


def test_a_subscriber_that_does_not_keep_up_is_told_to_resync_and_nothing_else():
    loop = asyncio.new_event_loop()
    try:
        subscriber = Subscriber(loop, None)
        for batch in range(QUEUE + 1):
            subscriber.offer([(batch, "submit", 0)])
        assert subscriber.queue.qsize() == 1 and subscriber.queue.get_nowait() is RESYNC
    finally:
        loop.close()


async def _next_item(subscriber: Subscriber, timeout: float = 30):
    return await asyncio.wait_for(subscriber.queue.get(), timeout)


def test_every_subscriber_gets_what_is_posted_after_it_subscribed_and_a_resync_after_a_gap(
        redis, start_manager, monkeypatch):
    start_manager()
    fanout = JournalFanout(redis, read_layout(redis))

    async def scenario():
        loop = asyncio.get_running_loop()
        everything = await asyncio.to_thread(fanout.subscribe, loop)
        [job_id] = await asyncio.to_thread(submit, redis)
        first = await _next_item(everything)
        assert (job_id, "submit", 0) in first
        of_one = await asyncio.to_thread(fanout.subscribe, loop, job_id)
        real = fanout_module.read_journals
        gaps = iter([True])

        def gap_once(*args):
            if next(gaps, False):
                raise JournalGap("trimmed past the reader (injected)", 0)
            return real(*args)

        monkeypatch.setattr(fanout_module, "read_journals", gap_once)
        seen = set()
        while RESYNC not in seen:
            seen.add(await _next_item(everything))
        assert await _next_item(of_one) in (RESYNC, True)
        fanout.unsubscribe(everything)
        fanout.unsubscribe(of_one)

    asyncio.run(scenario())
    wait_for(lambda: fanout._reader is None, what="the reader to end once nobody subscribes")


def test_a_subscription_that_cannot_read_the_journals_leaves_no_subscriber(redis, tmp_path):
    from jobjournal.common.connection import connect_url
    from jobjournal.common.redis_server import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "soon-gone")
    own = connect_url(server.start())
    fanout = JournalFanout(own, read_layout(own))
    server.stop(save=False)
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(Exception):  # noqa: B017, PT011 - whichever Redis error the client raises
            fanout.subscribe(loop)
        assert fanout.subscribers == 0 and fanout._reader is None
    finally:
        loop.close()
        own.close()


@pytest.fixture
def in_thread_server(redis, settings):
    """The app served by uvicorn in a thread of this process: (base host, port, app)."""
    app = make_app(redis, settings)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, what="uvicorn to start")
    yield port, app
    server.should_exit = True
    thread.join(30)


def test_streams_that_end_leave_no_subscriber_and_the_reader_stops(start_manager, in_thread_server):
    start_manager()
    port, app = in_thread_server
    connections = []
    for path in ["/api/v1/events"] * 3:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", path)
        connection.getresponse().readline()  # the stream has begun
        connections.append(connection)
    wait_for(lambda: app.state.fanout.subscribers == 3, what="three subscribers")
    for connection in connections:
        with contextlib.suppress(OSError):
            connection.sock.shutdown(socket.SHUT_RDWR)
        connection.close()
    wait_for(lambda: app.state.fanout.subscribers == 0, what="every subscriber gone with its client")
    wait_for(lambda: app.state.fanout._reader is None, what="the journal reader to stop")
