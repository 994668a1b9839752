"""One web server for the whole app: the chat page at ``/``, the reviewer page at ``/review`` and
the embeddable chat widget at ``/widget/``.

Each page is a ``gr.Blocks`` mounted with ``gr.mount_gradio_app``, so the reviewer page has its own
sign-in (Gradio ``auth`` from ``FEEDBACK_REVIEW_AUTH``, or "Sign in with Hugging Face" on a Space)
while the chat page stays open to everyone.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from types import FrameType

import fastapi
import gradio as gr
import uvicorn
from loguru import logger

from feedback.api import MAX_FILES
from feedback.request_guard import RequestGuard
from feedback.review.desk import ReviewDesk
from feedback.review.guard import LoginThrottle, ReviewGuard
from feedback.review.ui import ReviewPage
from feedback.widget import mount_widget

if TYPE_CHECKING:
    from feedback.app import FeedbackApp

REVIEW_PATH = "/review"


def on_space_with_oauth() -> bool:
    """True on a Hugging Face Space with OAuth enabled (``hf_oauth: true`` in its README)."""
    return bool(os.environ.get("SPACE_ID") and os.environ.get("OAUTH_CLIENT_ID"))


def review_page(app: FeedbackApp) -> tuple[gr.Blocks, list[tuple[str, str]] | None] | None:
    """The reviewer page and its credentials, or None when no reviewer is configured.

    On a Space with OAuth: "Sign in with Hugging Face", reviewers from ``FEEDBACK_REVIEWERS``.
    Elsewhere: Gradio's ``auth`` with ``FEEDBACK_REVIEW_AUTH``; ``FEEDBACK_REVIEWERS``, when set,
    further limits who may review.
    """
    settings = app.settings
    desk = ReviewDesk(app.recorder, reviewers=settings.reviewers)
    if on_space_with_oauth() and settings.reviewers:
        return ReviewPage(desk, oauth=True).build(), None
    credentials = settings.review_credentials()
    if not credentials:
        logger.info("review page off: set FEEDBACK_REVIEW_AUTH (or, on a Space with OAuth, FEEDBACK_REVIEWERS)")
        return None
    return ReviewPage(desk).build(), credentials


class Server(uvicorn.Server):
    """``uvicorn.Server`` that, when asked to stop, first ends the Gradio apps' open heartbeat
    streams (as ``gr.Blocks.close`` does), so a graceful shutdown does not wait on idle browsers."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        for route in getattr(self.config.app, "routes", []):
            stop_event = getattr(getattr(route, "app", None), "stop_event", None)
            if stop_event is not None:
                stop_event.set()
        super().handle_exit(sig, frame)


def run(server_app: fastapi.FastAPI, host: str, port: int) -> None:
    """Serve ``server_app`` until SIGINT/SIGTERM (then shut down gracefully, 5 s at most)."""
    config = uvicorn.Config(server_app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    Server(config).run()


def make_server(app: FeedbackApp) -> fastapi.FastAPI:
    """The FastAPI application serving every page of ``app``, behind the :class:`RequestGuard`
    (body and upload limits, file references) and, for ``/review``, the reviewer guard."""
    settings = app.settings
    server = fastapi.FastAPI(title="chat-feedback")
    limits = {
        "max_file_size": settings.max_upload_bytes,
        "blocked_paths": [str(settings.data_dir.resolve())],  # the data dir is never served
    }
    review = review_page(app)
    if review is not None:
        page, credentials = review
        _mount(server, page.queue(), REVIEW_PATH, auth=credentials, **limits)
        throttle = LoginThrottle(lockout=app.settings.review_lockout)
        server.add_middleware(ReviewGuard, prefix=REVIEW_PATH, throttle=throttle)  # same-origin, Lax cookies, throttle
        logger.info("review page at {}/", REVIEW_PATH)
    mount_widget(server)  # before the chat page: a mount at "" takes every path left
    _mount(server, app.demo.queue(), "", **limits)
    server.add_middleware(  # added last, so it is the outermost: the first to see every request
        RequestGuard,
        max_body_bytes=settings.max_request_bytes,
        max_upload_bytes=settings.max_upload_bytes,
        max_files=MAX_FILES,
    )
    return server


def _mount(server: fastapi.FastAPI, blocks: gr.Blocks, path: str, **kwargs: Any) -> None:
    """``gr.mount_gradio_app``, then mark ``blocks`` launched: Gradio checks that files named in a
    request were uploaded (``processing_utils._check_allowed``) only for launched Blocks, and a
    mounted app never is. (The :class:`RequestGuard` refuses such requests before Gradio sees them;
    this keeps Gradio's own check as a second line.)"""
    gr.mount_gradio_app(server, blocks, path=path, **kwargs)
    blocks.has_launched = True
