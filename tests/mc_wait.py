"""The tests' one poll loop, for every tier: call until the result is good, or fail the test
naming what was awaited and the last value (or error) seen.

Built on tenacity (stop after a delay, a fixed interval, retry on a result or an exception
type): a well-kept library instead of a loop written again in each test file.
"""

from __future__ import annotations

import time

import tenacity


def _name(fn) -> str:
    code = getattr(fn, "__code__", None)
    where = f" ({code.co_filename.rsplit('/', 1)[-1]}:{code.co_firstlineno})" if code else ""
    return f"{getattr(fn, '__qualname__', repr(fn))}{where}"


def wait_for(
    fn,
    timeout: float = 60,
    interval: float = 1.0,
    what: str | None = None,
    until=bool,
    ignore: tuple[type[BaseException], ...] = (),
    show=repr,
    explain=None,
):
    """Call ``fn()`` every ``interval`` s until ``until(result)`` is true; return that result.

    An exception of a type in ``ignore`` counts as a bad result (the daemon is not up yet);
    any other is raised at once. After ``timeout`` s an AssertionError says ``what`` was
    awaited (``fn``'s name and line if not given), after how many calls, and the last result
    through ``show`` (or the last error); ``explain()``, if given, adds the context (an audit
    tail) to that message.
    """

    def timed_out(state: tenacity.RetryCallState):
        outcome = state.outcome
        if outcome.failed:
            exc = outcome.exception()
            last = f"last error: {type(exc).__name__}: {exc}"
        else:
            last = f"last value: {show(outcome.result())}"
        if len(last) > 800:
            last = last[:800] + " ..."
        raise AssertionError(
            f"timed out after {timeout:g} s waiting for {what or _name(fn)} "
            f"({state.attempt_number} tries); {last}{explain() if explain else ''}"
        )

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(timeout),
        wait=tenacity.wait_fixed(interval),
        retry=tenacity.retry_if_exception_type(ignore)
        | tenacity.retry_if_result(lambda value: not until(value)),
        retry_error_callback=timed_out,
    )
    return retrying(fn)


def seconds_until(fn, timeout: float, interval: float = 0.2, what: str | None = None) -> float:
    """Seconds until ``fn()`` is true (a figure some tests report); fails as ``wait_for``."""
    start = time.monotonic()
    wait_for(fn, timeout, interval, what=what)
    return time.monotonic() - start
