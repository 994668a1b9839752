"""chat-feedback: a chat app that records every turn, rating and flag (``python app.py``).

Configuration comes from the environment (``FEEDBACK_*``, see the README); with none, it answers
with the echo responder and logs to ``./data``. With ``FEEDBACK_DATASET_REPO`` and ``HF_TOKEN``
it also syncs the records to that Hugging Face dataset repo.
"""

import sys

from loguru import logger
from pydantic import ValidationError

from feedback.app import StartupError, create_app
from feedback.logs import setup_logging
from schemas.settings import Settings, describe_error


def main() -> int:
    """Read the settings, build the app and serve it until interrupted (final push on the way out).

    Returns the exit code: 0 after a normal stop; 2 for bad settings (one line per bad variable,
    before anything starts); 1 when the app cannot start (a data dir that cannot be written, a
    responder that cannot be built), with one clear line.
    """
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


if __name__ == "__main__":
    sys.exit(main())
