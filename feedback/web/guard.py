"""The first thing every request meets: size limits and file references, before Gradio parses anything.

:class:`RequestGuard` is an ASGI middleware around the whole server (chat page, reviewer page,
widget). For every request with a body it:

- refuses a body larger than its limit (``413``) from the ``Content-Length`` header, or, for a
  body sent without one, as soon as the bytes read pass the limit, so an oversized request never
  reaches Gradio and leaves nothing behind in memory;
- requires a ``Content-Length`` on uploads (``/gradio_api/upload``), whose files Gradio streams to
  disk and checks one by one against ``max_file_size``;
- reads a JSON body (page events such as ``/gradio_api/queue/join`` with any ``fn_index``, and the
  ``/gradio_api/run|call/...`` API) and refuses it (``400``) when any object in it names a file by a
  ``path`` that is not an upload to this app (see :mod:`feedback.web.uploads`): Gradio would otherwise
  copy that server file into its cache and serve it.

Refusals are JSON ``{"detail": "<short message>"}``; the message never holds a server path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

from loguru import logger

from feedback.web.uploads import UploadError, upload_folder, uploaded_file

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UPLOAD_SUFFIX = "/gradio_api/upload"
MULTIPART_OVERHEAD = 64 * 1024
"""Bytes allowed on top of the files themselves in an upload body (multipart headers and boundaries)."""
MAX_JSON_DEPTH = 64
_REMOTE_FETCH = re.compile(r"/gradio_api/(file=[a-z]+:|proxy=)", re.IGNORECASE)
"""``/file=https://...`` and ``/proxy=...``: Gradio's routes that fetch a URL on the client's behalf."""


class RequestGuard:
    """ASGI middleware enforcing body limits and upload-only file references.

    Args:
        app: the ASGI app to guard (the FastAPI server with the Gradio apps mounted).
        max_body_bytes: the largest request body accepted, except uploads (bytes).
        max_upload_bytes: the largest uploaded file (bytes); an upload body may hold
            ``max_files`` of them.
        max_files: how many files one upload request may carry.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_upload_bytes: int, max_files: int = 16) -> None:
        if max_body_bytes <= 0 or max_upload_bytes <= 0:
            raise ValueError("'max_body_bytes' and 'max_upload_bytes' must be positive numbers of bytes")
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_body = max_upload_bytes * max_files + MULTIPART_OVERHEAD
        self.folder = upload_folder()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            if _REMOTE_FETCH.search(scope["path"]):  # Gradio would fetch that URL for the client
                await _refuse(send, 400, "this app serves only its own files")
                return
            await self.app(scope, receive, send)
            return
        upload = scope["path"].endswith(UPLOAD_SUFFIX)
        limit = self.max_upload_body if upload else self.max_body_bytes
        length = _content_length(scope)
        if length is not None and length > limit:
            await _refuse(send, 413, f"the request is {length:,} bytes; the limit is {limit:,}")
            return
        if upload:
            if length is None:
                await _refuse(send, 411, "uploads must send a Content-Length")
                return
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive, limit)
        if body is None:
            await _refuse(send, 413, f"the request is larger than the limit of {limit:,} bytes")
            return
        problem = self.file_problem(body)
        if problem:
            logger.warning("refused {} {}: {}", scope["method"], scope["path"][:120], problem)
            await _refuse(send, 400, problem)
            return
        await self.app(scope, _replay(body, receive), send)

    def file_problem(self, body: bytes) -> str | None:
        """Why ``body`` must be refused for the files it names, or None when it names only uploads."""
        stripped = body.lstrip()
        if stripped[:1] not in (b"{", b"["):
            return None
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return None  # not JSON after all: the route's own parser refuses it
        try:
            for path in _file_paths(payload):
                uploaded_file(path, self.folder)
        except UploadError as error:
            return str(error)
        except RecursionError:
            return "the request is nested too deeply"
        return None


def _file_paths(value: Any, depth: int = 0) -> Iterator[object]:
    """Every ``path`` of an object in ``value`` that looks like a file reference (has a ``path`` key)."""
    if depth > MAX_JSON_DEPTH:
        raise RecursionError
    if isinstance(value, dict):
        if "path" in value and not isinstance(value.get("path"), dict | list):
            yield value["path"]
        for item in value.values():
            if isinstance(item, dict | list):
                yield from _file_paths(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list):
                yield from _file_paths(item, depth + 1)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None as soon as it passes ``limit`` bytes (the rest is not read)."""
    body = bytearray()  # one growing buffer: large ones are mmap-backed and go back to the OS when freed
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        if len(body) + len(chunk) > limit:
            return None
        body += chunk
        if not message.get("more_body", False):
            break
    return bytes(body)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the app ``body`` once, then whatever the client sends next (disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _refuse(send: Send, status: int, detail: str) -> None:
    payload = json.dumps({"detail": detail[:300]}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
