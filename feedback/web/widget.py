"""Serving the embeddable chat widget (``feedback/web/widget_dist``) from the app, at ``/widget/``.

The widget is a prebuilt ES module (``@gradio/client`` bundled in), its stylesheet and a demo
page; ``widget/build.mjs`` builds them from ``widget/src`` into ``widget_dist/`` beside this module
and the build is committed, so serving it needs no Node. Being inside the package, the files ship
in the wheel (package data) and are found the same way in a checkout and in an installed copy.
:func:`mount_widget` adds them to the FastAPI server the Gradio page is mounted on.

A page on another site loads the module with ``<script type="module" src=...>``, which browsers
fetch in CORS mode, so the files are sent with ``Access-Control-Allow-Origin: *``: they are public
and no credentials go with them. Calls to the API (``/gradio_api/...``) follow Gradio's own CORS
policy, not this one (see the README).
"""

from __future__ import annotations

from pathlib import Path

from loguru import logger
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

WIDGET_DIR = Path(__file__).resolve().parent / "widget_dist"
WIDGET_PATH = "/widget"
WIDGET_FILES = ("feedback-widget.js", "feedback-widget.css", "index.html")


def widget_files(directory: Path = WIDGET_DIR) -> ASGIApp | None:
    """The built widget as a static-files app (``index.html`` is the demo page) that any origin may
    load, or None, with a warning, when ``directory`` lacks a built file."""
    missing = [name for name in WIDGET_FILES if not (directory / name).is_file()]
    if missing:
        logger.warning("not serving the chat widget: {} missing in {} (make widget)", missing, directory)
        return None
    files = StaticFiles(directory=directory, html=True)
    return CORSMiddleware(files, allow_origins=["*"], allow_methods=["GET", "HEAD"])


def mount_widget(server: Starlette, path: str = WIDGET_PATH, directory: Path = WIDGET_DIR) -> bool:
    """Serve the widget on ``server`` under ``path``: the demo page at ``path + "/"``, the module
    and stylesheet beside it. Call it before mounting Gradio at ``""``, which takes every path
    left. Returns False (and serves nothing) when the widget is not built.
    """
    files = widget_files(directory)
    if files is None:
        return False

    async def add_slash(request: Request) -> RedirectResponse:
        return RedirectResponse(path.rsplit("/", 1)[-1] + "/", status_code=308)  # relative: proxies keep their prefix

    server.add_route(path, add_slash, methods=["GET", "HEAD"])
    server.mount(path, files, name="widget")
    logger.info("chat widget at {}/", path)
    return True
