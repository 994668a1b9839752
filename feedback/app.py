"""Building the whole app from settings: store, recorder, responder, page."""

from __future__ import annotations

from loguru import logger

from feedback.recorder import FeedbackRecorder
from feedback.responders import make_responder
from feedback.store import FeedbackStore
from feedback.ui import FeedbackChatInterface
from schemas.settings import Settings


def build_app(settings: Settings) -> FeedbackChatInterface:
    """The chat app ``settings`` describe, logging to ``settings.data_dir``; not launched.

    Raises:
        feedback.responders.ResponderError: when the responder cannot be built.
    """
    store = FeedbackStore(
        settings.data_dir, shard_max_bytes=settings.shard_max_bytes, shard_max_age=settings.shard_max_age
    )
    recorder = FeedbackRecorder(
        store, flag_reasons=settings.flag_reasons, max_message_chars=settings.max_message_chars
    )
    responder = make_responder(settings)
    logger.info(
        "responder {} (model {}), logging to {}", responder.name, responder.model, settings.data_dir.resolve()
    )
    return FeedbackChatInterface(
        responder,
        recorder=recorder,
        notice=settings.notice,
        title=settings.title,
        multimodal=True,
        fill_height=True,
    )
