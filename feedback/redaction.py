"""Keeping credentials out of every log line: a process-wide registry of secret values, and patterns
for credentials the app was never told about (a model server may echo any key it received).

:func:`redact_secrets` is applied to every fully formatted log line, traceback and exception
cause chain included (:func:`feedback.logs.setup_logging` installs it), and to anything else
written to ``sys.stdout``/``sys.stderr`` (Gradio and uvicorn print their own tracebacks).

Which registered values are replaced, and why (a short value would blank out ordinary words):

- ``FRAGMENT_CHARS`` (8) characters or more: the value wherever it occurs, and also any run of
  8 or more characters taken from it (a server may echo a truncated key);
- ``MIN_SECRET_CHARS`` (4) to 7 characters: the value where it stands as a whole word, that is,
  not inside a longer run of letters and digits;
- shorter: not redacted at all; :func:`register_secret` returns False so the caller can warn.

Whatever was registered, these are also replaced: the value after an ``Authorization``,
``api-key``, ``token``, ``password`` or ``secret`` key (``Authorization: Bearer ...``,
``"api_key": "..."``, ``HF_TOKEN=...``), a ``Bearer`` token, a Hugging Face token (``hf_`` and 20+
letters or digits), an OpenAI-style key (``sk-`` and 16+ characters) and the credentials of a URL
(``https://user:password@host``). Each becomes :data:`REDACTED`.
"""

from __future__ import annotations

import re
import threading

REDACTED = "***"
FRAGMENT_CHARS = 8
"""Registered secrets this long or longer are redacted with every piece of this length."""
MIN_SECRET_CHARS = 4
"""Registered secrets shorter than this are not redacted (they would blank ordinary text)."""

_VALUE = r"[^\s'\"\\,;&}\])]+"
_GENERIC = (
    # key: value / key=value / "key": "value" (JSON, Python repr, escaped JSON), optional auth scheme
    (
        re.compile(
            r"(?i)(?<![a-z0-9])((?:proxy-)?authorization|api[-_]?key|token|password|passwd|secret)"
            r"([\\'\"]*\s*[:=]\s*[\\'\"]*)(?:(bearer|basic|token)\s+)?" + _VALUE
        ),
        lambda match: f"{match[1]}{match[2]}{match[3] + ' ' if match[3] else ''}{REDACTED}",
    ),
    # a bearer token anywhere (with at least one digit or symbol, so prose is left alone)
    (
        re.compile(r"(?<![A-Za-z0-9])([Bb]earer\s+)(?=[A-Za-z0-9._~+/=-]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{8,}"),
        lambda match: f"{match[1]}{REDACTED}",
    ),
    (re.compile(r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{20,}"), lambda match: REDACTED),
    (re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{16,}"), lambda match: REDACTED),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"), lambda match: f"{match[1]}{REDACTED}@"),
)


class _Registry:
    """The registered secrets and the patterns built from them (rebuilt on each registration)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._short: set[str] = set()
        self.long: tuple[str, ...] = ()
        self.words: re.Pattern[str] | None = None
        self.fragments: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        with self._lock:
            if len(value) >= FRAGMENT_CHARS and value not in self.long:
                self.long = tuple(sorted({*self.long, value}, key=len, reverse=True))
                step = FRAGMENT_CHARS
                pieces = {secret[i : i + step] for secret in self.long for i in range(len(secret) - step + 1)}
                self.fragments = re.compile(f"(?=(?:{_alternatives(pieces)}))")
            elif len(value) < FRAGMENT_CHARS and value not in self._short:
                self._short.add(value)
                self.words = re.compile(f"(?<![A-Za-z0-9])(?:{_alternatives(self._short)})(?![A-Za-z0-9])")

    def clear(self) -> None:
        with self._lock:
            self._short, self.long, self.words, self.fragments = set(), (), None, None


def _alternatives(values: set[str]) -> str:
    """A regex alternation matching any of ``values`` literally, longest first."""
    return "|".join(re.escape(value) for value in sorted(values, key=lambda value: (-len(value), value)))


_registry = _Registry()


def register_secret(value: str | None) -> bool:
    """Have ``value`` replaced by ``***`` in every log line from now on (see the module docstring).

    Returns True when it will be redacted; False for None, an empty value or one shorter than
    :data:`MIN_SECRET_CHARS` (never redacted: it would blank ordinary text). Registering the same
    value twice is harmless.

    >>> register_secret("sk-test-0123456789")
    True
    >>> redact_secrets("key sk-test-0123456789 and its piece test-0123")
    'key *** and its piece ***'
    """
    if not value or len(value) < MIN_SECRET_CHARS:
        return False
    _registry.add(value)
    return True


def forget_secrets() -> None:
    """Forget every registered secret (for tests; the generic patterns stay)."""
    _registry.clear()


def redact_secrets(text: str) -> str:
    """``text`` with every registered secret and every credential-looking value replaced by ``***``."""
    registry = _registry
    for secret in registry.long:
        text = text.replace(secret, REDACTED)
    if registry.fragments is not None:
        text = _redact_fragments(text, registry.fragments)
    if registry.words is not None:
        text = registry.words.sub(REDACTED, text)
    for pattern, replacement in _GENERIC:
        text = pattern.sub(replacement, text)
    return text


def _redact_fragments(text: str, fragments: re.Pattern[str]) -> str:
    """Replace each run of text covered by ``FRAGMENT_CHARS``-long pieces of a secret with ``***``."""
    spans: list[list[int]] = []
    for match in fragments.finditer(text):
        start, end = match.start(), match.start() + FRAGMENT_CHARS
        if spans and start <= spans[-1][1]:
            spans[-1][1] = end
        else:
            spans.append([start, end])
    if not spans:
        return text
    parts, last = [], 0
    for start, end in spans:
        parts += [text[last:start], REDACTED]
        last = end
    parts.append(text[last:])
    return "".join(parts)
