"""The tests' poll loop (tests/mc_wait.py): the value it returns, the errors it polls through,
and a timeout message that names what was awaited and the last thing seen."""

import itertools

import pytest
from mc_wait import seconds_until, wait_for


def test_returns_the_first_good_result():
    calls = itertools.count(1)
    assert wait_for(lambda: next(calls) >= 3 and "ready", 5, 0.01) == "ready"


def test_until_decides_and_the_message_shows_the_last_value():
    with pytest.raises(AssertionError) as err:
        wait_for(
            lambda: {"mx1": 1},
            0.1,
            0.02,
            what="returns",
            until=lambda ret: {"mx1", "mx2"} <= set(ret),
            show=sorted,
            explain=lambda: "; audit: nothing",
        )
    text = str(err.value)
    assert text.startswith("timed out after 0.1 s waiting for returns (")
    assert text.endswith("tries); last value: ['mx1']; audit: nothing")


def test_listed_errors_are_polled_through_and_reported():
    def refused():
        raise ConnectionRefusedError("port 25")

    with pytest.raises(AssertionError, match="last error: ConnectionRefusedError: port 25"):
        wait_for(refused, 0.1, 0.02, ignore=(OSError,))


def test_other_errors_are_raised_at_once():
    calls = []

    def broken():
        calls.append(1)
        raise KeyError("bug")

    with pytest.raises(KeyError):
        wait_for(broken, 5, 0.01, ignore=(OSError,))
    assert len(calls) == 1


def test_a_nameless_wait_names_the_function_and_its_line():
    where = r"waiting for test_a_nameless_wait\S*<lambda> \(test_mc_wait\.py:\d+\)"
    with pytest.raises(AssertionError, match=where):
        wait_for(lambda: None, 0.05, 0.01)


def test_seconds_until():
    calls = itertools.count()
    assert 0.02 <= seconds_until(lambda: next(calls) >= 2, 5, 0.01) < 2
