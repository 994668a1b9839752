"""chat-feedback: a chat app that records every turn, rating and flag (``python app.py``).

Configuration comes from the environment (``FEEDBACK_*``, see the README); with none, it answers
with the echo responder and logs to ``./data``. With ``FEEDBACK_DATASET_REPO`` and ``HF_TOKEN``
it also syncs the records to that Hugging Face dataset repo.
"""

from feedback.app import create_app
from feedback.logs import setup_logging
from schemas.settings import Settings


def main() -> None:
    """Read the settings, build the app and serve it until interrupted (final push on the way out)."""
    settings = Settings()
    setup_logging(settings.log_level)
    create_app(settings).serve()


if __name__ == "__main__":
    main()
