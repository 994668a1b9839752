"""One web server for the whole app: the chat page at ``/``, the reviewer page at ``/review`` and
the embeddable chat widget at ``/widget/``.

It serves what it is given (built by :func:`feedback.app.create_app`, the composition root) and
builds nothing of its own. Each page is a ``gr.Blocks`` mounted with ``gr.mount_gradio_app``, so
the reviewer page has its own sign-in (Gradio ``auth`` from ``FEEDBACK_REVIEW_AUTH``, or "Sign in
with Hugging Face" on a Space) while the chat page stays open to everyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import fastapi
import gradio as gr
import uvicorn
from loguru import logger

from feedback.web.api import MAX_FILES
from feedback.web.guard import RequestGuard
from feedback.web.review_guard import LoginThrottle, ReviewGuard
from feedback.web.widget import mount_widget

REVIEW_PATH = "/review"


@dataclass(frozen=True)
class ServerLimits:
    """What the server accepts: request and upload sizes (bytes), and the data dir it never serves."""

    max_request_bytes: int
    max_upload_bytes: int
    data_dir: Path


@dataclass(frozen=True)
class ReviewMount:
    """The reviewer page and how reviewers sign in.

    Args:
        page: the page (see :class:`feedback.web.review_page.ReviewPage`).
        credentials: Gradio ``auth`` pairs; None on a Space with OAuth ("Sign in with Hugging Face").
        lockout: seconds a sign-in stays refused after repeated failures.
    """

    page: gr.Blocks
    credentials: list[tuple[str, str]] | None
    lockout: float


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


def make_server(chat: gr.Blocks, *, limits: ServerLimits, review: ReviewMount | None = None) -> fastapi.FastAPI:
    """The FastAPI application serving ``chat`` at ``/``, ``review`` (if any) at ``/review`` and the
    widget, behind the :class:`RequestGuard` (body and upload limits, file references) and, for
    ``/review``, the reviewer guard (same-origin writes, ``SameSite=Lax`` cookies, sign-in throttling)."""
    server = fastapi.FastAPI(title="chat-feedback")
    mount_options = {
        "max_file_size": limits.max_upload_bytes,
        "blocked_paths": [str(limits.data_dir.resolve())],  # the data dir is never served
    }
    if review is not None:
        _mount(server, review.page.queue(), REVIEW_PATH, auth=review.credentials, **mount_options)
        throttle = LoginThrottle(lockout=review.lockout)
        server.add_middleware(ReviewGuard, prefix=REVIEW_PATH, throttle=throttle)
        logger.info("review page at {}/", REVIEW_PATH)
    mount_widget(server)  # before the chat page: a mount at "" takes every path left
    _mount(server, chat.queue(), "", **mount_options)
    server.add_middleware(  # added last, so it is the outermost: the first to see every request
        RequestGuard,
        max_body_bytes=limits.max_request_bytes,
        max_upload_bytes=limits.max_upload_bytes,
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
