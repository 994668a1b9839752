"""chat-feedback: a chat app that records every turn, rating and flag (``python app.py``).

Configuration comes from the environment (``FEEDBACK_*``, see the README); with none, it answers
with the echo responder and logs to ``./data``.
"""

from feedback.app import build_app
from feedback.logs import setup_logging
from schemas.settings import Settings


def main() -> None:
    """Read the settings, build the app and serve it until interrupted."""
    settings = Settings()
    setup_logging(settings.log_level)
    build_app(settings).queue().launch()


if __name__ == "__main__":
    main()
