"""Logging: loguru everywhere, with the standard library's loggers (huggingface_hub's among them)
routed into it, and every line able to carry the ``conversation_id`` it is about."""

from __future__ import annotations

import inspect
import logging
import sys

from loguru import logger

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


def setup_logging(level: str = "INFO") -> None:
    """Send loguru's output to stderr at ``level`` and route stdlib logging into loguru.

    Lines without a bound ``conversation_id`` show ``-`` in its place.
    """
    logger.remove()
    logger.configure(extra={"conversation_id": "-"})
    logger.add(sys.stderr, level=level, format=FORMAT, backtrace=False, diagnose=False)
    logging.basicConfig(handlers=[InterceptHandler()], level=logging.WARNING, force=True)
    for name in ("huggingface_hub", "datasets", "httpx", "httpx2", "httpcore", "httpcore2"):
        logging.getLogger(name).setLevel(logging.WARNING)
