"""CLI arguments, fuzzed: every answer is a result or a one-line error, never a traceback.

The `cli` fixture lets exceptions through, so anything but a clean exit fails the test."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
words = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=25)


@FUZZ
@given(option=st.sampled_from(["-f", "--since", "-u", "--constraint", "-o", "--name"]), value=words)
def test_jobs_options_with_any_value_answer_or_refuse_clearly(cli, redis, option, value):
    result = cli("jobs", "--timeout", "0.05", "-A", option, value)
    assert result.exit_code in (0, 1, 2), result.output


@FUZZ
@given(text=words)
def test_job_ids_from_anywhere_answer_or_refuse_clearly(cli, redis, text):
    for args in (["eventlog", text], ["job", "--timeout", "0.05", text]):
        assert cli(*args).exit_code in (1, 2)
