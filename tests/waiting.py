"""Waiting in tests: poll a condition until it holds or a deadline passes, never sleep blindly.

The only place in tests/ that sleeps (besides the fakes' simulated latency): a test says what it
waits for, and a wait that times out fails with that name, how long it waited, and what it saw.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# how often a condition is asked again; a condition asking a server polls it at this rate
INTERVAL_SECONDS = 0.1


def wait_until(
    condition: Callable[[], T],
    *,
    timeout: float,
    what: str,
    interval: float = INTERVAL_SECONDS,
    seen: Callable[[], object] | None = None,
) -> T:
    """``condition()`` once it is truthy, asked every ``interval`` seconds for ``timeout`` seconds at most.

    Past the deadline an AssertionError names ``what`` was awaited and, with ``seen``, what
    there was instead.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            shown = f": {seen()}" if seen is not None else ""
            raise AssertionError(f"waited {timeout:g} s for {what}{shown}")
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def holds_for(
    condition: Callable[[], object], *, seconds: float, what: str, interval: float = INTERVAL_SECONDS
) -> None:
    """Assert ``condition()`` stays truthy, asked every ``interval`` seconds, for ``seconds`` seconds.

    For what must NOT happen within a span (a hidden message stays hidden, no run is started):
    the span is the property itself, and the condition is checked all along it.
    """
    deadline = time.monotonic() + seconds
    while True:
        assert condition(), f"{what}: broken {seconds - (deadline - time.monotonic()):.1f} s into the {seconds:g} s"
        if time.monotonic() >= deadline:
            return
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
