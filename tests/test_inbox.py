"""The manager's inbox: one sender, one reader, one decoder."""

import pytest

from jobjournal.common import formats, inbox, keys, messages
from jobjournal.common.errors import CorruptEntry
from jobjournal.common.keys import LEGACY
from jobjournal.manager import client
from tests.helpers import submit, wait_inactive


def test_a_sent_request_is_read_back_and_decoded_as_it_was_sent(redis):
    request = messages.Cancel(ids=[7], userid=1000, note="x")
    entry_id = inbox.send(redis, request)
    [(read_id, fields)] = inbox.read(redis, "0-0", count=10, block_ms=None)
    assert read_id == entry_id.decode() and inbox.decode(fields) == request


def test_an_entry_without_a_message_is_refused_with_its_reason(redis):
    redis.xadd(keys.manager_inbox(), {"other": "x"})
    [(_, fields)] = inbox.read(redis, "0-0", count=10, block_ms=None)
    with pytest.raises(CorruptEntry, match="no 'msg' field"):
        inbox.decode(fields)


def test_trimming_drops_the_cursors_entry_and_what_comes_before_it(redis):
    inbox.send(redis, messages.Cancel(ids=[1], userid=0))
    second = inbox.send(redis, messages.Cancel(ids=[2], userid=0)).decode()
    third = inbox.send(redis, messages.Cancel(ids=[3], userid=0)).decode()
    inbox.trim(redis, second)
    assert [entry_id for entry_id, _ in inbox.read(redis, "0-0", 10, None)] == [third]


def test_journal_entries_carry_the_journal_format_version_the_manager_passes_to_lua(redis, start_manager):
    start_manager()
    wait_inactive(redis, submit(redis, 2))
    assert client.purge(redis, num_limit=0, force=True)[1]["purged"] == 2
    entries = [fields for _, fields in redis.xrange(LEGACY.journal())]
    assert {fields[b"name"] for fields in entries} >= {b"submit", b"clean", b"purge"}
    assert {fields[b"v"] for fields in entries} == {str(formats.JOURNAL_VERSION).encode()}
