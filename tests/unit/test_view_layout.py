"""The view's layout facts, next to its keys: lists, state groups, stats fields."""

from jobjournal.common import keys
from jobjournal.common.states import State


def test_every_state_is_on_exactly_one_list_and_the_lists_are_in_query_order():
    assert keys.VIEW_LISTS == ("pending", "running", "inactive")
    for state in State:
        assert [name for name, mask in keys.LIST_STATES.items() if state & mask] == [keys.LIST_OF_STATE[state.name]]


def test_state_groups_hold_the_lists_and_active():
    assert keys.STATE_GROUPS["active"] == keys.LIST_STATES["pending"] | keys.LIST_STATES["running"]
    assert set(keys.STATE_GROUPS) == {*keys.VIEW_LISTS, "active"}


def test_a_stats_field_names_its_queue_and_a_field_over_all_queues_names_none():
    assert keys.stat_state("RUN") == "state:RUN"
    assert keys.stat_result("FAILED", "gpu:a") == "queue:gpu:a:result:FAILED"
    assert keys.stat_queue(keys.stat_state("RUN", "gpu:a")) == "gpu:a"
    assert keys.stat_queue(keys.stat_result("TIMEOUT", "batch")) == "batch"
    assert keys.stat_queue(keys.stat_state("RUN")) is None
    assert keys.stat_queue(keys.STAT_PURGED) is None
