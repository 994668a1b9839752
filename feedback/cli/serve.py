"""``python -m feedback serve`` (``chat-feedback serve``): the app as ``python app.py`` serves it.

Configuration comes from the environment (``FEEDBACK_*``, ``GRADIO_SERVER_NAME``/``_PORT``, see the
README), not from arguments, so the command, ``python app.py`` and a Space run the same app.
"""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = (
    "Serve the chat app (page, API, widget at /widget/) until interrupted, configured from the environment "
    "(FEEDBACK_*, GRADIO_SERVER_NAME, GRADIO_SERVER_PORT; see the README). With nothing set: the echo "
    "responder on 127.0.0.1:7860, records in ./data."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``serve`` command."""
    serve = subparsers.add_parser(
        "serve", help="serve the chat app (what `python app.py` does)", description=DESCRIPTION
    )
    serve.set_defaults(func=lambda args: main())


def main() -> int:
    """Read the settings, build the app and serve it until interrupted (final push on the way out).

    Returns the exit code: 0 after a normal stop; 2 for bad settings (one line per bad variable,
    before anything starts); 1 when the app cannot start (a data dir that cannot be written, a
    responder that cannot be built), with one clear line.
    """
    from loguru import logger
    from pydantic import ValidationError

    from feedback.app import StartupError, create_app
    from feedback.logs import setup_logging
    from schemas.settings import Settings, describe_error

    try:
        settings = Settings()
    except ValidationError as error:
        sys.stderr.write(f"{describe_error(error)}\n")
        return 2
    setup_logging(settings.log_level)
    try:
        app = create_app(settings)
    except StartupError as error:
        logger.error("cannot start: {}", error)
        return 1
    app.serve()
    return 0
