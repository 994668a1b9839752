"""What the test Hub records and the faults a test can inject (status codes, hangs, by path)."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import NamedTuple

# ---------------------------------------------------------------------------------------- faults


class RequestRecord(NamedTuple):
    """One answered request: ``method``, decoded URL ``path`` (no query) and answered ``status``."""

    method: str
    path: str
    status: int


@dataclass
class _Rule:
    """A fault: answer ``status`` (or wait ``delay`` seconds) for matching requests."""

    status: int | None
    delay: float
    remaining: int | None
    paths: re.Pattern | None
    reads: bool
    retry_after: float | None = None

    def matches(self, path: str, is_write: bool) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if not (is_write or self.reads):
            return False
        return self.paths is None or self.paths.search(path) is not None


class _Faults:
    """Thread-safe fault rules, consumed by the server's event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []

    def add(self, rule: _Rule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, path: str, is_write: bool, hang: bool) -> _Rule | None:
        """The first matching fail (or hang) rule, with one use consumed."""
        with self._lock:
            for rule in self._rules:
                if (rule.status is None) == hang and rule.matches(path, is_write):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    return rule
        return None
