"""A small OpenAI-compatible chat-completions server for tests.

Runs a starlette app under uvicorn in a background thread on a free
127.0.0.1 port. Routes (shapes as in the OpenAI API reference,
https://platform.openai.com/docs/api-reference/chat):

- ``POST /v1/chat/completions``: replies ``"You said: <last user message>"``.
  Non-stream: one ``chat.completion`` JSON object. ``"stream": true``: SSE
  events ``data: <chat.completion.chunk JSON>\\n\\n`` - a role chunk, one chunk
  per word (``"You"``, ``" said:"``, ``" hello"``...), a final chunk with
  ``finish_reason``, a usage chunk if ``stream_options.include_usage``, then
  ``data: [DONE]\\n\\n``. ``max_tokens`` caps the number of words (one word =
  one token here; ``finish_reason`` is then ``"length"``).
- ``GET /v1/models``: ``{"object": "list", "data": [{"id": model, ...}]}``.

Errors use the OpenAI error shape ``{"error": {"message", "type", "param",
"code"}}``: 400 for a malformed body, 401 when ``api_key`` is set and the
bearer token differs (the message echoes the received key, like OpenAI does
partially, so tests can check that clients redact it), and any status chosen
with `fail_next`. `delay_next` stalls the next answer (client timeouts) and
`error_mid_next_stream` ends the next stream with an in-stream error event.

Hostile modes, for tests that credentials never leak: `echo_headers_next`
answers an error whose body repeats every request header, ``Authorization``
included (as some proxies' debug pages and misconfigured servers do), either
as OpenAI error JSON (in the message, in an extra ``request_headers`` field
and as the bare key in ``received_key``) or as plain text, each also with
``received key <key>`` (no header name to recognise it by); ``error_mid_next_stream(..., echo_headers=True)``
puts them in the in-stream error event.

Usage::

    with OpenAICompatServer(model="test-model") as server:
        client = InferenceClient(base_url=server.base_url, api_key="k")
        ...
        assert server.requests[-1]["model"] == "test-model"
        assert server.auth_headers[-1] == "Bearer k"
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    503: "server_error",
}


class OpenAICompatServer:
    """OpenAI-compatible test server in a background thread.

    Attributes:
        model: model id listed by ``/v1/models`` (requests may name any model;
            the answer echoes the requested one).
        api_key: if set, requests must carry ``Authorization: Bearer <api_key>``.
        requests: JSON bodies received by ``POST /v1/chat/completions``, in order
            (malformed bodies are recorded as ``None``).
        auth_headers: the ``Authorization`` header of each of those requests
            (None when absent), parallel to `requests`.
        base_url: ``"http://127.0.0.1:PORT/v1"`` once started.
    """

    def __init__(self, *, model: str = "test-model", api_key: str | None = None) -> None:
        self.model = model
        self.api_key = api_key
        self.requests: list[dict[str, Any] | None] = []
        self.auth_headers: list[str | None] = []
        self._lock = threading.Lock()
        self._faults: list[tuple[int, str]] = []
        self._delay = 0.0
        self._break_after: int | None = None
        self._break_echoes = False
        self._port: int | None = None
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (RuntimeError before `start`; kept after `stop`, then refusing)."""
        if self._port is None:
            raise RuntimeError("OpenAICompatServer is not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, the OpenAI ``base_url`` of this server."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 10.0) -> OpenAICompatServer:
        """Bind a free port, serve in a daemon thread, return once it accepts connections.

        Raises RuntimeError if the server is not up within `timeout` seconds.
        """
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self._port = self._socket.getsockname()[1]
        config = uvicorn.Config(self._app(), log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name=f"openai-compat-{self.port}", daemon=True
        )
        self._thread.start()
        self._wait_until_up(timeout)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to exit, join the thread and close the socket (idempotent)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> OpenAICompatServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _wait_until_up(self, timeout: float) -> None:
        """Poll until uvicorn reports started and a TCP connect succeeds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._server is not None and self._server.started and _accepts(self.port):
                return
            if self._thread is not None and not self._thread.is_alive():
                break
            time.sleep(0.01)
        raise RuntimeError(f"OpenAICompatServer did not start on port {self.port} within {timeout}s")

    # --- fault switches ----------------------------------------------------

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next `times` chat requests with HTTP `status` and an OpenAI error JSON."""
        with self._lock:
            self._faults.extend([(status, "plain")] * times)

    def echo_headers_next(self, status: int = 401, times: int = 1, *, body: str = "json") -> None:
        """Answer the next `times` chat requests with HTTP `status` and a body echoing every request header.

        `body` is ``"json"`` (OpenAI error JSON whose message lists the headers, plus a
        ``request_headers`` object and the bare key in ``received_key``) or ``"text"``
        (``name: value`` lines, ``text/plain``). Both also give the bare key with no header
        name next to it: ``received key <key>``.
        """
        if body not in ("json", "text"):
            raise ValueError(f"body must be 'json' or 'text', got {body!r}")
        with self._lock:
            self._faults.extend([(status, body)] * times)

    def delay_next(self, seconds: float) -> None:
        """Sleep `seconds` before answering the next chat request (to provoke client timeouts)."""
        with self._lock:
            self._delay = seconds

    def error_mid_next_stream(self, after: int, *, echo_headers: bool = False) -> None:
        """Make the next streamed answer send `after` content chunks, then an error event.

        The event is OpenAI's in-stream error ``data: {"error": {"message", "type",
        "param", "code"}}`` (HTTP status stays 200), and no ``[DONE]`` follows. With
        `echo_headers` its message lists every request header, ``Authorization`` included.
        """
        with self._lock:
            self._break_after = after
            self._break_echoes = echo_headers

    def _take_fault(self) -> tuple[tuple[int, str] | None, float, int | None, bool]:
        """Pop the pending fault (status and body kind, or None), delay (or 0), mid-stream break
        (or None) and whether that break echoes the headers."""
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
            delay, self._delay = self._delay, 0.0
            break_after, self._break_after = self._break_after, None
            echoes, self._break_echoes = self._break_echoes, False
        return fault, delay, break_after, echoes

    # --- app ---------------------------------------------------------------

    def _app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )

    async def _models(self, request: Request) -> Response:
        """``GET /v1/models``: the OpenAI model list with `model`."""
        model = {"id": self.model, "object": "model", "created": 0, "owned_by": "openai-compat-test"}
        return JSONResponse({"object": "list", "data": [model]})

    async def _chat(self, request: Request) -> Response:
        """``POST /v1/chat/completions``: record, apply faults, validate, answer."""
        body = await _json_body(request)
        authorization = request.headers.get("authorization")
        with self._lock:
            self.requests.append(body)
            self.auth_headers.append(authorization)
        fault, delay, break_after, echoes = self._take_fault()
        if delay:
            await asyncio.sleep(delay)
        if fault is not None:
            return _fault(fault, dict(request.headers))
        if self.api_key is not None and authorization != f"Bearer {self.api_key}":
            return _error(401, f"Incorrect API key provided: {authorization}", code="invalid_api_key")
        problem = _validate(body)
        if problem:
            return _error(400, problem)
        return _answer(body, break_after=break_after, break_message=_echo(dict(request.headers)) if echoes else None)


# --- request handling --------------------------------------------------------


async def _json_body(request: Request) -> dict[str, Any] | None:
    """The JSON object body, or None if it is not a JSON object."""
    try:
        body = json.loads(await request.body())
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _validate(body: dict[str, Any] | None) -> str | None:
    """Why `body` is not a valid chat request (None if it is)."""
    if body is None:
        return "We could not parse the JSON body of your request."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    if not any(isinstance(m, dict) and m.get("role") == "user" for m in messages):
        return "'messages' must contain a user message"
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (type(max_tokens) is not int or max_tokens < 1):
        return f"Invalid 'max_tokens': {max_tokens!r}"
    return None


def reply_words(messages: list[dict[str, Any]], max_tokens: int | None = None) -> tuple[list[str], str]:
    """The reply as word pieces (``["You", " said:", " hi"]``) and its finish_reason.

    The reply is ``"You said: " + <content of the last user message>``; with
    `max_tokens` it is cut to that many words and finish_reason is ``"length"``.
    """
    last = next(m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user")
    words = f"You said: {_text(last.get('content'))}".split()
    pieces = [words[0]] + [f" {word}" for word in words[1:]]
    if max_tokens is not None and len(pieces) > max_tokens:
        return pieces[:max_tokens], "length"
    return pieces, "stop"


def _text(content: Any) -> str:
    """Text of a message content: a string or a list of ``{"type": "text", "text"}`` parts."""
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content or "")


def _answer(body: dict[str, Any], *, break_after: int | None = None, break_message: str | None = None) -> Response:
    """The non-stream JSON or the SSE stream (broken after `break_after` chunks if set, with
    `break_message` as the error's message if given) for a valid request."""
    pieces, finish_reason = reply_words(body["messages"], body.get("max_tokens"))
    meta = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "created": int(time.time()),
        "model": body["model"],
        "system_fingerprint": "fp_openai_compat_test",
    }
    usage = {"prompt_tokens": _prompt_tokens(body["messages"]), "completion_tokens": len(pieces)}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = (
            _sse(meta, pieces, finish_reason, usage if include_usage else None)
            if break_after is None
            else _broken_sse(meta, pieces[:break_after], break_message)
        )
        return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
    return JSONResponse(_completion(meta, "".join(pieces), finish_reason, usage))


def _prompt_tokens(messages: list[Any]) -> int:
    """Word count of all message contents (the test server's 'tokens')."""
    return sum(len(_text(m.get("content")).split()) for m in messages if isinstance(m, dict))


def _completion(meta: dict[str, Any], content: str, finish_reason: str, usage: dict[str, int]) -> dict[str, Any]:
    """A ``chat.completion`` object."""
    message = {"role": "assistant", "content": content, "refusal": None}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
    return {**meta, "object": "chat.completion", "choices": [choice], "usage": usage}


def _chunk(meta: dict[str, Any], delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
    """A ``chat.completion.chunk`` object with one choice."""
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
    return {**meta, "object": "chat.completion.chunk", "choices": [choice]}


async def _sse(
    meta: dict[str, Any], pieces: list[str], finish_reason: str, usage: dict[str, int] | None
) -> AsyncIterator[str]:
    """SSE events: role chunk, one chunk per piece, finish chunk, optional usage chunk, [DONE]."""
    yield _event(_chunk(meta, {"role": "assistant", "content": ""}, None))
    for piece in pieces:
        await asyncio.sleep(0)
        yield _event(_chunk(meta, {"content": piece}, None))
    yield _event(_chunk(meta, {}, finish_reason))
    if usage is not None:
        yield _event({**meta, "object": "chat.completion.chunk", "choices": [], "usage": usage})
    yield "data: [DONE]\n\n"


async def _broken_sse(meta: dict[str, Any], pieces: list[str], message: str | None = None) -> AsyncIterator[str]:
    """SSE events: role chunk, `pieces` chunks, then an OpenAI in-stream error event (no [DONE])."""
    yield _event(_chunk(meta, {"role": "assistant", "content": ""}, None))
    for piece in pieces:
        await asyncio.sleep(0)
        yield _event(_chunk(meta, {"content": piece}, None))
    error = {
        "message": message or "Injected error in the middle of the stream",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    yield _event({"error": error})


def _event(payload: dict[str, Any]) -> str:
    """One SSE ``data:`` event."""
    return f"data: {json.dumps(payload)}\n\n"


def _fault(fault: tuple[int, str], headers: dict[str, str]) -> Response:
    """The injected error answer: plain, or echoing `headers` as JSON or as text."""
    status, kind = fault
    key = headers.get("authorization", "").partition(" ")[2]
    if kind == "text":
        lines = "".join(f"{name}: {value}\n" for name, value in headers.items())
        text = f"Request rejected. Your request headers were:\n{lines}received key {key}\n"
        return PlainTextResponse(text, status_code=status)
    if kind == "json":
        response = _error(status, f"{_echo(headers)}; received key {key}")
        payload = json.loads(response.body)
        return JSONResponse({**payload, "request_headers": headers, "received_key": key}, status_code=status)
    return _error(status, f"Injected failure with status {status}")


def _echo(headers: dict[str, str]) -> str:
    """An error message that repeats every request header (``Authorization: Bearer ...`` among them)."""
    return "Request rejected; received headers: " + "; ".join(f"{name}: {value}" for name, value in headers.items())


def _error(status: int, message: str, *, code: str | int | None = None) -> JSONResponse:
    """An OpenAI-style error answer."""
    error = {
        "message": message,
        "type": ERROR_TYPES.get(status, "api_error"),
        "param": None,
        "code": code if code is not None else status,
    }
    return JSONResponse({"error": error}, status_code=status)


def _accepts(port: int) -> bool:
    """True if a TCP connection to 127.0.0.1:`port` succeeds."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
