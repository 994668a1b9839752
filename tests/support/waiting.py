"""Waiting on state outside the test process (records on disk, the test Hub's repo): poll a condition."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(condition: Callable[[], object], timeout: float = 60, what: str = "condition") -> None:
    """Return once ``condition()`` is true (checked every 50 ms), or fail after ``timeout`` seconds.

    For state outside a page (records on disk, the repo); inside a page, use Playwright's ``expect``.

    Raises:
        AssertionError: when ``condition()`` is still false after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)
