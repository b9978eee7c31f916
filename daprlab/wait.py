"""Polling with a deadline: the lab never sleeps in place of checking a condition."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
POLL_INTERVAL_SECONDS = 0.1


class DeadlineExceeded(TimeoutError):
    """The condition did not hold before the deadline."""


def wait_for(
    condition: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = POLL_INTERVAL_SECONDS,
) -> T:
    """Call `condition` until it returns something truthy; return that, or raise after `timeout`."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = condition()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise DeadlineExceeded(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def holds_for(
    condition: Callable[[], object],
    duration: float,
    what: str,
    interval: float = POLL_INTERVAL_SECONDS,
) -> None:
    """Check `condition` throughout `duration` seconds; raise as soon as it is false.

    For "nothing happens" claims (a stopped timer stays stopped): the window is the claim.
    """
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        if not condition():
            raise AssertionError(f"no longer true: {what}")
        time.sleep(interval)
