

def test_ago_says_how_long_ago_in_the_largest_unit():
    from jobjournal.jobs_format import ago

    assert [ago(s) for s in (0, 59, 60, 3599, 3600, 86400 * 3, -180)] == [
        "0s ago", "59s ago", "1m ago", "59m ago", "1h ago", "3d ago", "in 3m"]
