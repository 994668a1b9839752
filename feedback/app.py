"""The composition root: :func:`create_app` builds the whole app from settings, in one place.

Data flows one way: the web pages and the command line call the recorder (the one write gate),
the recorder appends to the store, and the sync pushes the store to the Hub; exports, the review
queue and stats read back through :mod:`feedback.rules`. Nothing else builds these parts: the
server (:mod:`feedback.web.server`) serves the pages it is given.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import fastapi
from loguru import logger

from feedback.hub.card import dataset_card
from feedback.hub.client import hub_token
from feedback.hub.sync import HubSync
from feedback.privacy import ConsentGate, Redactor
from feedback.privacy.deletion import Eraser, serving
from feedback.recorder import FeedbackRecorder, GateStep
from feedback.redaction import MIN_SECRET_CHARS, register_secret
from feedback.responders import ResponderError, make_responder
from feedback.review.desk import ReviewDesk
from feedback.store import FeedbackStore
from feedback.web.page import FeedbackChatInterface
from feedback.web.review_page import ReviewPage
from feedback.web.server import ReviewMount, ServerLimits, make_server, run
from schemas.settings import Settings


class StartupError(RuntimeError):
    """The app cannot start; the message says why in one line (no traceback needed)."""


@dataclass
class FeedbackApp:
    """The assembled app: the chat page ``demo`` (with its API), the reviewer page, and what they
    write to and sync with."""

    settings: Settings
    store: FeedbackStore
    recorder: FeedbackRecorder
    demo: FeedbackChatInterface
    review: ReviewMount | None
    sync: HubSync | None
    eraser: Eraser

    def server(self) -> fastapi.FastAPI:
        """The FastAPI application serving every page (see :func:`feedback.web.server.make_server`)."""
        limits = ServerLimits(
            max_request_bytes=self.settings.max_request_bytes,
            max_upload_bytes=self.settings.max_upload_bytes,
            data_dir=self.settings.data_dir,
        )
        return make_server(self.demo, limits=limits, review=self.review)

    def serve(self, host: str | None = None, port: int | None = None) -> None:
        """Start the conversation index's catch-up (in the background) and the sync, serve every
        page until Ctrl-C or SIGTERM, then make the final push.

        Stopping takes about 20 s at most, whatever the Hub does: up to 5 s to end serving, then up
        to :data:`feedback.hub.sync.FINAL_PUSH_SECONDS` (15 s) for the final push; what it could not
        send stays in the data dir, is named in one log line, and goes with the next run's push.

        ``host`` and ``port`` default to Gradio's ``GRADIO_SERVER_NAME`` (127.0.0.1) and
        ``GRADIO_SERVER_PORT`` (7860).
        """
        host = host or os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
        port = port or int(os.environ.get("GRADIO_SERVER_PORT", "7860"))
        self.recorder.index.start_catch_up()  # index what is new in the data dir, in the background
        if self.sync is not None:
            self.sync.start()
        try:
            logger.info("serving on http://{}:{}", host, port)
            with _signals_end_serving(), serving(self.store.root):  # `delete` refuses a dir being served
                self.eraser.start()  # finishes an erasure an earlier run left
                run(self.server(), host, port)
        finally:
            self.eraser.close()
            self.store.close()
            self.recorder.close()
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
        gate=_privacy_gate(settings),
    )
    try:
        responder = make_responder(settings)
    except ResponderError as error:
        raise StartupError(f"the {settings.responder} responder cannot be built: {error}") from error
    logger.info("responder {} (model {}), logging to {}", responder.name, responder.model, settings.data_dir.resolve())
    sync = _make_sync(settings, store)
    if sync is not None:
        sync.index = recorder.index  # an erasure (HubSync.erase, the repo's deletions) keeps the index right
    eraser = Eraser(recorder, sync=sync)
    demo = FeedbackChatInterface(
        responder,
        recorder=recorder,
        notice=settings.notice,
        consent=settings.consent,
        policy_url=settings.policy_url,
        title=settings.title,
        multimodal=True,
        fill_height=True,
        session_ttl=settings.session_ttl,
        eraser=eraser,
    )
    review = _review_mount(settings, recorder, eraser)
    return FeedbackApp(settings, store, recorder, demo, review, sync, eraser)


def _privacy_gate(settings: Settings) -> list[GateStep]:
    """The write gate's privacy steps: consent first (a record kept out is not redacted for
    nothing), then, with ``FEEDBACK_REDACT=on``, the redaction of personal data.

    Raises:
        StartupError: when the redactor cannot be built (Presidio or spaCy missing).
    """
    steps: list[GateStep] = [ConsentGate(settings.consent)]
    if settings.redact:
        try:
            steps.append(Redactor())
        except (ImportError, OSError) as error:
            raise StartupError(f"FEEDBACK_REDACT=on, but the redactor cannot be built: {error}") from error
        logger.info(
            "redaction on: emails, phone numbers, card numbers, IP addresses, IBANs and URLs with "
            "credentials are replaced by placeholders in every record"
        )
    if settings.consent == "required":
        logger.info("consent required: a conversation is recorded only once its user agreed")
    return steps


def on_space_with_oauth() -> bool:
    """True on a Hugging Face Space with OAuth enabled (``hf_oauth: true`` in its README)."""
    return bool(os.environ.get("SPACE_ID") and os.environ.get("OAUTH_CLIENT_ID"))


def _review_mount(settings: Settings, recorder: FeedbackRecorder, eraser: Eraser) -> ReviewMount | None:
    """The reviewer page and its sign-in, or None when no reviewer is configured.

    On a Space with OAuth: "Sign in with Hugging Face", reviewers from ``FEEDBACK_REVIEWERS``.
    Elsewhere: Gradio's ``auth`` with ``FEEDBACK_REVIEW_AUTH``; ``FEEDBACK_REVIEWERS``, when set,
    further limits who may review.
    """
    desk = ReviewDesk(recorder, reviewers=settings.reviewers)
    if on_space_with_oauth() and settings.reviewers:
        return ReviewMount(ReviewPage(desk, oauth=True, eraser=eraser).build(), None, settings.review_lockout)
    credentials = settings.review_credentials()
    if not credentials:
        logger.info("review page off: set FEEDBACK_REVIEW_AUTH (or, on a Space with OAuth, FEEDBACK_REVIEWERS)")
        return None
    return ReviewMount(ReviewPage(desk, eraser=eraser).build(), credentials, settings.review_lockout)


def _register_secrets(settings: Settings) -> None:
    """Keep every credential the app holds out of the logs: HF_TOKEN (or the locally saved token
    the sync falls back to) and the reviewer passwords (see :mod:`feedback.redaction`)."""
    register_secret(settings.hf_token.get_secret_value() if settings.hf_token else None)
    hub_token()  # registers the locally saved token too
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
    token = hub_token(settings.hf_token.get_secret_value() if settings.hf_token else None)
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
