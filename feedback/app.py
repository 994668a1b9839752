"""Building the whole app from settings: store, recorder, responder, page, and the Hub sync."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from huggingface_hub import get_token
from loguru import logger

from feedback.card import dataset_card
from feedback.recorder import FeedbackRecorder
from feedback.redaction import MIN_SECRET_CHARS, register_secret
from feedback.responders import ResponderError, make_responder
from feedback.store import FeedbackStore
from feedback.sync import HubSync
from feedback.ui import FeedbackChatInterface
from schemas.settings import Settings


class StartupError(RuntimeError):
    """The app cannot start; the message says why in one line (no traceback needed)."""


@dataclass
class FeedbackApp:
    """The assembled app: ``demo`` (the Gradio Blocks) plus what it writes to and syncs with."""

    settings: Settings
    store: FeedbackStore
    recorder: FeedbackRecorder
    demo: FeedbackChatInterface
    sync: HubSync | None

    def serve(self, host: str | None = None, port: int | None = None) -> None:
        """Start the sync and serve every page until Ctrl-C or SIGTERM, then make the final push.

        Stopping takes about 20 s at most, whatever the Hub does: up to 5 s to end serving, then up
        to :data:`feedback.sync.FINAL_PUSH_SECONDS` (15 s) for the final push; what it could not
        send stays in the data dir, is named in one log line, and goes with the next run's push.

        ``host`` and ``port`` default to Gradio's ``GRADIO_SERVER_NAME`` (127.0.0.1) and
        ``GRADIO_SERVER_PORT`` (7860).
        """
        from feedback.server import make_server, run

        host = host or os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
        port = port or int(os.environ.get("GRADIO_SERVER_PORT", "7860"))
        if self.sync is not None:
            self.sync.start()
        try:
            logger.info("serving on http://{}:{}", host, port)
            with _signals_end_serving():
                run(make_server(self), host, port)
        finally:
            self.store.close()
            if self.sync is not None:
                self.sync.close()


@contextmanager
def _signals_end_serving() -> Iterator[None]:
    """Let Ctrl-C and SIGTERM (how Spaces and process managers stop an app) end serving without
    ending the process: uvicorn shuts down gracefully, then re-raises the signal it caught with
    the handler it found, which is this quiet one, so the final push still runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping = {sig: signal.signal(sig, lambda *_: logger.info("stopping")) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in stopping.items():
            signal.signal(sig, handler)


def create_app(settings: Settings) -> FeedbackApp:
    """Assemble the app ``settings`` describe; nothing is started or launched.

    Raises:
        StartupError: when the data dir cannot be written (read-only, full) or the responder
            cannot be built.
    """
    _register_secrets(settings)
    store = _open_store(settings)
    recorder = FeedbackRecorder(
        store,
        flag_reasons=settings.flag_reasons,
        max_message_chars=settings.max_message_chars,
        max_comment_chars=settings.max_comment_chars,
    )
    try:
        responder = make_responder(settings)
    except ResponderError as error:
        raise StartupError(f"the {settings.responder} responder cannot be built: {error}") from error
    logger.info(
        "responder {} (model {}), logging to {}", responder.name, responder.model, settings.data_dir.resolve()
    )
    demo = FeedbackChatInterface(
        responder,
        recorder=recorder,
        notice=settings.notice,
        title=settings.title,
        multimodal=True,
        fill_height=True,
    )
    return FeedbackApp(settings, store, recorder, demo, _make_sync(settings, store))


def _register_secrets(settings: Settings) -> None:
    """Keep every credential the app holds out of the logs: HF_TOKEN (or the locally saved token
    the sync falls back to) and the reviewer passwords (see :mod:`feedback.redaction`)."""
    register_secret(settings.hf_token.get_secret_value() if settings.hf_token else None)
    register_secret(get_token())
    try:
        passwords = [password for _, password in settings.review_credentials()]
    except ValueError:  # refused with a clear message when the review page is built
        passwords = [entry.strip() for entry in settings.review_auth.get_secret_value().split(",") if entry.strip()]
    if not all([register_secret(password) for password in passwords]):
        logger.warning(
            "a FEEDBACK_REVIEW_AUTH password is shorter than {} characters: it cannot be kept out of the logs",
            MIN_SECRET_CHARS,
        )


def _open_store(settings: Settings) -> FeedbackStore:
    """The data dir's store, after a probe write shows it can take records."""
    try:
        store = FeedbackStore(
            settings.data_dir, shard_max_bytes=settings.shard_max_bytes, shard_max_age=settings.shard_max_age
        )
        store.check_writable()
    except OSError as error:
        raise StartupError(
            f"the data dir {settings.data_dir.resolve()} cannot be written ({error.strerror or error}); "
            "free some space, fix its permissions or set FEEDBACK_DATA_DIR"
        ) from error
    return store


def _make_sync(settings: Settings, store: FeedbackStore) -> HubSync | None:
    if not settings.dataset_repo:
        logger.info("FEEDBACK_DATASET_REPO not set: logging locally only, to {}", settings.data_dir.resolve())
        return None
    token = settings.hf_token.get_secret_value() if settings.hf_token else get_token()
    if not token:
        logger.warning("FEEDBACK_DATASET_REPO is set but there is no HF_TOKEN: logging locally only")
        return None
    card = dataset_card(repo_id=settings.dataset_repo, license=settings.license, consent=settings.notice)
    return HubSync(
        store,
        repo_id=settings.dataset_repo,
        token=token,
        every=settings.sync_every,
        private=settings.private,
        card=card,
        timeout=settings.hub_timeout,
    )


def build_app(settings: Settings) -> FeedbackChatInterface:
    """The chat page ``settings`` describe, logging to ``settings.data_dir`` (no sync); not launched."""
    return create_app(settings).demo
