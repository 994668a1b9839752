"""Logging: loguru everywhere, with the standard library's loggers (huggingface_hub's among them)
routed into it, and every line able to carry the ``conversation_id`` it is about.

No line carries a credential: every formatted line (tracebacks and exception cause chains
included) and everything else printed to stdout/stderr goes through
:func:`feedback.redaction.redact_secrets`; register a value with :func:`register_secret`.
"""

from __future__ import annotations

import inspect
import logging
import re
import sys
import threading
from typing import TextIO

from loguru import logger

from feedback.redaction import redact_secrets, register_secret

__all__ = ["RedactingStream", "register_secret", "setup_logging"]

FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> | <level>{level: <8}</level> | "
    "<cyan>{name}</cyan> | {extra[conversation_id]} | <level>{message}</level>"
)


class InterceptHandler(logging.Handler):
    """A stdlib logging handler that re-emits each record through loguru (loguru's documented recipe)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = inspect.currentframe(), 0
        while frame and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


class RedactingStream:
    """A text stream that writes whole lines to ``stream`` with secrets redacted.

    A line is held until its newline arrives (or :meth:`flush`), so a secret written in
    several pieces is still caught. Every other attribute is the wrapped stream's.
    """

    MAX_PENDING = 64 * 1024
    """A partial line longer than this is written (redacted) without waiting for its newline."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._pending = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        """Buffer ``text``; write every completed line, redacted. Returns ``len(text)``."""
        with self._lock:
            lines, newline, rest = (self._pending + text).rpartition("\n")
            if len(rest) > self.MAX_PENDING:
                lines, newline, rest = lines + newline + rest, "", ""
            self._pending = rest
            if lines or newline:
                self.stream.write(redact_secrets(lines + newline))
        return len(text)

    def flush(self) -> None:
        """Write the partial line held back (redacted), then flush the wrapped stream."""
        with self._lock:
            pending, self._pending = self._pending, ""
            if pending:
                self.stream.write(redact_secrets(pending))
        self.stream.flush()

    def __getattr__(self, name: str) -> object:
        return getattr(self.stream, name)


def _redacting_sink(stream: TextIO):  # noqa: ANN202 - a loguru sink function
    """A loguru sink writing each fully formatted message, traceback included, redacted."""

    def sink(message: str) -> None:
        stream.write(redact_secrets(message))
        stream.flush()

    return sink


def setup_logging(level: str = "INFO", *, redact_std_streams: bool = True) -> None:
    """Send loguru's output to stderr at ``level`` and route stdlib logging into loguru.

    Lines without a bound ``conversation_id`` show ``-`` in its place. Every line is redacted
    (registered secrets and credential-looking values, see :mod:`feedback.redaction`); with
    ``redact_std_streams`` ``sys.stdout`` and ``sys.stderr`` are wrapped in :class:`RedactingStream`
    too, for what libraries print themselves (Gradio's and uvicorn's tracebacks).
    """
    if redact_std_streams:
        for name in ("stdout", "stderr"):
            if not isinstance(getattr(sys, name), RedactingStream):
                setattr(sys, name, RedactingStream(getattr(sys, name)))
    stderr = sys.stderr.stream if isinstance(sys.stderr, RedactingStream) else sys.stderr
    logger.remove()
    logger.configure(extra={"conversation_id": "-"})
    colorize = bool(getattr(stderr, "isatty", lambda: False)())
    logger.add(_redacting_sink(stderr), level=level, format=FORMAT, backtrace=False, diagnose=False, colorize=colorize)
    logging.basicConfig(handlers=[InterceptHandler()], level=logging.WARNING, force=True)
    for name in ("huggingface_hub", "datasets", "httpx", "httpx2", "httpcore", "httpcore2"):
        logging.getLogger(name).setLevel(logging.WARNING)
    _route_hub_logs()


_HUB_ROUTINE = {
    "huggingface_hub.utils._http": re.compile(r"thrown while requesting |^Retrying in |^Rate limited\. Waiting "),
    "huggingface_hub.hf_api": re.compile(r"^No files have been modified since last commit"),
}
"""huggingface_hub's warnings that are routine for the sync, by logger: one attempt of a request it
retries, and a push that found every file already on the Hub (as after a restart)."""


def _fold_hub_routine(record: logging.LogRecord) -> bool:
    """A logging filter: huggingface_hub's routine warnings become DEBUG lines (the sync logs one
    warning per failed push; a retry that succeeds is no news)."""
    pattern = _HUB_ROUTINE.get(record.name)
    if pattern is not None and record.levelno == logging.WARNING and pattern.search(record.getMessage()):
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
    return True


def _route_hub_logs() -> None:
    """Send huggingface_hub's lines through loguru only: remove the stderr handler it installs on
    import (which printed every line a second time, raw and unredacted, as its docs warn), and
    fold its routine warnings (retries) in at DEBUG."""
    from huggingface_hub import logging as hub_logging

    hub_root = hub_logging.get_logger()
    for handler in list(hub_root.handlers):
        if type(handler) is logging.StreamHandler:
            hub_root.removeHandler(handler)
    hub_logging.enable_propagation()
    for name in _HUB_ROUTINE:
        hub_logger = logging.getLogger(name)
        if _fold_hub_routine not in hub_logger.filters:
            hub_logger.addFilter(_fold_hub_routine)
