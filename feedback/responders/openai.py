"""The ``openai`` responder: any OpenAI-compatible chat-completions server.

Talks to TGI, vLLM, llama.cpp, Ollama, LM Studio, an HF Inference Endpoint or
HF Inference Providers through `huggingface_hub.InferenceClient` (2.x) and
streams the reply as text deltas.

How `base_url` and `model` combine (read from huggingface_hub 2.4
``inference/_client.py`` and ``inference/_providers/hf_inference.py``):

- With ``base_url`` the client POSTs to the chat-completions route derived from
  it: ``.../chat/completions`` is kept as is, a path ending in ``/v1`` gets
  ``/chat/completions``, anything else (including no path) gets
  ``/v1/chat/completions``. So ``http://host:8080``, ``http://host:8080/v1`` and
  ``http://host:8080/v1/chat/completions`` all reach the same route. ``model``
  is then only the ``"model"`` field of the JSON body (the served model name:
  ``"tgi"``, a vLLM ``--served-model-name``, an Ollama tag...).
- Without ``base_url`` ``model`` is a Hub model id (optionally with a
  ``:provider`` / ``:fastest`` suffix) sent to the HF router
  (``https://router.huggingface.co/v1/chat/completions``), which picks the
  Inference Provider. This needs an HF token (``hf_...``): ``token``, or the
  locally saved one / ``HF_TOKEN``.

Credentials: with ``base_url`` only the ``token`` given here is sent. By
default InferenceClient would fall back to the locally saved HF token and send
it to *any* URL (a local llama.cpp, a third-party server); this responder
suppresses that fallback. Pass the token explicitly for an HF Inference
Endpoint. The token never appears in logs, ``repr`` or `ResponderError`
messages: it is registered with `feedback.redaction.register_secret`, and the
message a user sees says only what failed (``"HTTP 401 from the model
server"``), never what the server answered nor where it is (see
`feedback.responders.errors`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

import httpx2
from huggingface_hub import InferenceClient
from huggingface_hub.errors import (
    HfHubHTTPError,
    InferenceTimeoutError,
    OfflineModeIsEnabled,
    TextGenerationError,
)
from loguru import logger

from feedback.redaction import redact_secrets, register_secret
from feedback.responders.errors import ResponderError, redact

ROLES = ("system", "user", "assistant")
ROUTER = "HF Inference Providers"
SERVER_MESSAGE_CHARS = 500
"""At most this much of a server's error message goes into the log line."""

# Failures of the request or the stream that become a ResponderError. All
# huggingface_hub HTTP errors (HfHubHTTPError, InferenceTimeoutError,
# TextGenerationError) derive from httpx2.HTTPError; OSError covers
# OfflineModeIsEnabled and socket errors; ValueError covers a missing/non-HF
# token for the router and undecodable stream lines.
_WRAPPED = (httpx2.HTTPError, OSError, ValueError)


class OpenAIResponder:
    """Streams replies from an OpenAI-compatible chat-completions server.

    Attributes:
        name: ``"openai"``.
        model: served model name (with ``base_url``) or Hub model id (without).
        base_url: server URL as given, or None for HF Inference Providers.
        params: generation parameters sent and recorded with every turn, only
            those set, e.g. ``{"temperature": 0.7, "max_tokens": 512}``.
        system_prompt: prepended as a system message unless the conversation
            already starts with one.
        timeout: seconds per request (connect / between stream reads), None =
            wait forever.

    Args (keyword-only):
        model: non-empty, no whitespace, not a URL (put URLs in ``base_url``).
        base_url: ``http(s)://host[:port][/path]``; see the module docstring.
        token: bearer token (API key); non-empty, no whitespace.
        temperature: 0 <= t <= 2.
        max_tokens: int >= 1.
        top_p: 0 < p <= 1 (TGI rejects exactly 1.0 on some versions).
        system_prompt: non-empty string.
        timeout: > 0 seconds, or None.
        client: a ready `InferenceClient` to use instead of building one per
            request; then ``base_url`` and ``token`` must be None, ``timeout``
            is the client's own, and the client is never closed here.

    Raises:
        TypeError / ValueError: on a bad argument; the message names the
            argument and the bad value (never the token's value).
    """

    name = "openai"

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        token: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        system_prompt: str | None = None,
        timeout: float | None = 120,
        client: InferenceClient | None = None,
    ) -> None:
        self.model = _check_model(model)
        self.base_url = _check_base_url(base_url)
        self._token = _check_token(token)
        self.system_prompt = _check_system_prompt(system_prompt)
        self.timeout = _check_timeout(timeout)
        self.params = _build_params(temperature=temperature, max_tokens=max_tokens, top_p=top_p)
        self._client = _check_client(client, base_url=base_url, token=token)
        register_secret(self._token)
        register_secret(getattr(self._client, "token", None))

    def __repr__(self) -> str:
        where = self.base_url or ROUTER
        return f"OpenAIResponder(model={self.model!r}, at={where!r}, params={self.params!r})"

    def stream(self, messages: list[dict[str, str]], *, regenerate: bool = False) -> Iterator[str]:
        """Yield the assistant reply to `messages` as text deltas.

        Args:
            messages: OpenAI chat format ``[{"role": "system"|"user"|"assistant",
                "content": str}, ...]`` ending with a user message. Validated
                now (before the first ``next``); the list is not modified.
            regenerate: True when the user asked for another answer to the same
                conversation. Nothing special is sent: the server samples anew
                (with temperature 0 a deterministic server may repeat itself).

        Returns:
            An iterator of non-empty strings whose concatenation is the reply.
            The request is sent on the first ``next``; closing the iterator
            early (user pressed stop) closes the HTTP stream.

        Raises:
            ValueError: malformed `messages` (raised immediately).
            ResponderError: while iterating, on an HTTP error status, refused
                connection, timeout, an error event in the stream or missing
                credentials; deltas already yielded stay valid.
        """
        payload = self._with_system_prompt(_check_messages(messages))
        return self._generate(payload, regenerate=regenerate)

    def _with_system_prompt(self, messages: list[dict[str, str]]) -> list[dict[str, str]]:
        """Return a copy of `messages` with the system prompt first if needed."""
        copied = [dict(message) for message in messages]
        if self.system_prompt is None or copied[0]["role"] == "system":
            return copied
        return [{"role": "system", "content": self.system_prompt}, *copied]

    def _generate(self, messages: list[dict[str, str]], *, regenerate: bool) -> Iterator[str]:
        """Send the request and yield content deltas, translating failures."""
        where = self.base_url or ROUTER
        logger.debug(
            "openai responder: request model={} at={} messages={} params={} regenerate={}",
            self.model,
            where,
            len(messages),
            self.params,
            regenerate,
        )
        started, pieces, chars = time.monotonic(), 0, 0
        try:
            with self._open_client() as client:
                chunks = client.chat_completion(messages, model=self.model, stream=True, **self.params)
                for piece in _content_deltas(chunks):
                    pieces, chars = pieces + 1, chars + len(piece)
                    yield piece
        except _WRAPPED as error:
            raise self._error(error) from error
        logger.debug(
            "openai responder: done model={} deltas={} chars={} seconds={:.2f}",
            self.model,
            pieces,
            chars,
            time.monotonic() - started,
        )

    @contextmanager
    def _open_client(self) -> Iterator[InferenceClient]:
        """Yield the injected client, or a fresh one closed on exit.

        A fresh client per request keeps concurrent streams (Gradio threads)
        apart: InferenceClient keeps every open stream in one ExitStack that is
        only emptied by ``close()``.
        """
        if self._client is not None:
            yield self._client
            return
        client = self._build_client()
        try:
            yield client
        finally:
            client.close()

    def _build_client(self) -> InferenceClient:
        """Build the InferenceClient for one request (see module docstring)."""
        if self.base_url is None:
            return InferenceClient(api_key=self._token, timeout=self.timeout)
        # An explicit None header drops the locally saved HF token that
        # huggingface_hub would otherwise send to this arbitrary server.
        headers = None if self._token is not None else {"authorization": None}
        return InferenceClient(base_url=self.base_url, api_key=self._token, timeout=self.timeout, headers=headers)

    def _error(self, error: BaseException) -> ResponderError:
        """Build the ResponderError for `error`: a generic message, and the detail (logged here) without secrets."""
        where = self.base_url or ROUTER
        message, detail = _describe(error, timeout=self.timeout)
        client_token = getattr(self._client, "token", None)
        detail = redact(f"openai responder: model {self.model!r} at {where}: {detail}", self._token, client_token)
        detail = redact_secrets(detail)  # also a key the server echoes that is not ours
        logger.warning("{}", detail)
        return ResponderError(message, detail=detail)


def _content_deltas(chunks: Any) -> Iterator[str]:
    """Yield ``chunk.choices[0].delta.content`` of each stream chunk, skipping empty ones.

    Chunks without choices (usage-only chunks, Azure's prompt-filter chunk) and
    deltas carrying only a role, reasoning or tool calls are skipped.
    """
    for chunk in chunks:
        choices = getattr(chunk, "choices", None) or []
        delta = getattr(choices[0], "delta", None) if choices else None
        content = getattr(delta, "content", None)
        if isinstance(content, str) and content:
            yield content


def _describe(error: BaseException, *, timeout: float | None) -> tuple[str, str]:
    """What failed, for the user (nothing the server said, no URL) and for the log (one line, clipped)."""
    if isinstance(error, HfHubHTTPError):
        status = error.response.status_code if error.response is not None else None
        reason = f"HTTP {status} from the model server" if status else "an HTTP error from the model server"
        return reason, _describe_http(error)
    if isinstance(error, (InferenceTimeoutError, httpx2.TimeoutException, TimeoutError)):
        return (
            "the model server did not answer in time (timed out)",
            f"no answer within the {timeout}s timeout ({type(error).__name__})",
        )
    if isinstance(error, httpx2.ConnectError):
        return "cannot connect to the model server", f"cannot connect to the server ({_clip(str(error))})"
    if isinstance(error, TextGenerationError):
        return (
            "the model server reported an error in the middle of the reply",
            f"the server reported an error in the stream: {type(error).__name__}: {_clip(str(error))}",
        )
    if isinstance(error, OfflineModeIsEnabled):
        return (
            "the app cannot reach the model (offline mode)",
            "HF_HUB_OFFLINE is set, huggingface_hub refuses every request (even to local servers)",
        )
    return f"unexpected {type(error).__name__} in the model client", f"{type(error).__name__}: {_clip(str(error))}"


def _describe_http(error: HfHubHTTPError) -> str:
    """``HTTP <status>: <server message>`` for an error status answer (the message clipped)."""
    status = error.response.status_code if error.response is not None else "?"
    server = _server_error_message(error) or error.server_message or _first_line(str(error))
    return f"HTTP {status}: {_clip(server)}"


def _clip(text: str) -> str:
    """``text`` cut to `SERVER_MESSAGE_CHARS` characters, saying so when cut."""
    if len(text) <= SERVER_MESSAGE_CHARS:
        return text
    return f"{text[:SERVER_MESSAGE_CHARS]}... ({len(text)} characters)"


def _server_error_message(error: HfHubHTTPError) -> str | None:
    """The message of an error body: OpenAI ``{"error": {"message": ...}}`` or TGI ``{"error": "..."}``."""
    try:
        body = error.response.json()
    except (AttributeError, ValueError, httpx2.StreamError):
        return None
    detail = body.get("error") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        detail = detail.get("message")
    return detail if isinstance(detail, str) and detail else None


def _first_line(text: str) -> str:
    """First non-empty line of `text` (huggingface_hub messages span several lines)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), text)


# --- argument validation -------------------------------------------------


def _check_model(model: Any) -> str:
    """Return `model` if it is a non-empty id without whitespace and not a URL."""
    if not isinstance(model, str):
        raise TypeError(f"model must be a str, got {type(model).__name__}: {model!r}")
    if not model or model != model.strip() or any(char.isspace() for char in model):
        raise ValueError(f"model must be a non-empty name without whitespace, got {model!r}")
    if model.startswith(("http://", "https://")):
        raise ValueError(f"model must be a model name, not a URL (pass the URL as base_url), got {model!r}")
    return model


def _check_base_url(base_url: Any) -> str | None:
    """Return `base_url` if None or an ``http(s)://host...`` URL."""
    if base_url is None:
        return None
    if not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str or None, got {type(base_url).__name__}: {base_url!r}")
    parsed = urlparse(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname or base_url != base_url.strip():
        raise ValueError(f"base_url must be an http(s)://host[:port][/path] URL, got {base_url!r}")
    return base_url


def _check_token(token: Any) -> str | None:
    """Return `token` if None or a non-empty string without whitespace (never echoed)."""
    if token is None:
        return None
    if not isinstance(token, str):
        raise TypeError(f"token must be a str or None, got {type(token).__name__}")
    if not token or any(char.isspace() for char in token):
        raise ValueError(f"token must be a non-empty string without whitespace (got a str of length {len(token)})")
    return token


def _check_system_prompt(system_prompt: Any) -> str | None:
    """Return `system_prompt` if None or a non-blank string."""
    if system_prompt is None:
        return None
    if not isinstance(system_prompt, str) or not system_prompt.strip():
        raise ValueError(f"system_prompt must be a non-empty string or None, got {system_prompt!r}")
    return system_prompt


def _check_timeout(timeout: Any) -> float | None:
    """Return `timeout` if None or a finite number of seconds > 0."""
    if timeout is None:
        return None
    if not _is_number(timeout) or not timeout > 0:
        raise ValueError(f"timeout must be a number of seconds > 0 or None, got {timeout!r}")
    return float(timeout)


def _build_params(*, temperature: Any, max_tokens: Any, top_p: Any) -> dict[str, Any]:
    """Validate the generation parameters and return those set, in a fixed order."""
    if temperature is not None and not (_is_number(temperature) and 0 <= temperature <= 2):
        raise ValueError(f"temperature must be a number in [0, 2] or None, got {temperature!r}")
    if max_tokens is not None and not (type(max_tokens) is int and max_tokens >= 1):
        raise ValueError(f"max_tokens must be an int >= 1 or None, got {max_tokens!r}")
    if top_p is not None and not (_is_number(top_p) and 0 < top_p <= 1):
        raise ValueError(f"top_p must be a number in (0, 1] or None, got {top_p!r}")
    params = {"temperature": temperature, "max_tokens": max_tokens, "top_p": top_p}
    return {key: value for key, value in params.items() if value is not None}


def _check_client(client: Any, *, base_url: str | None, token: str | None) -> InferenceClient | None:
    """Return `client` if None or usable alone (no base_url/token beside it)."""
    if client is None:
        return None
    if not callable(getattr(client, "chat_completion", None)):
        raise TypeError(f"client must be an InferenceClient or None, got {type(client).__name__}")
    if base_url is not None or token is not None:
        raise ValueError("pass either client or base_url/token, not both (the client carries its own URL and token)")
    return client


def _check_messages(messages: Any) -> list[dict[str, str]]:
    """Return `messages` if it is a non-empty OpenAI chat list ending with a user message."""
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"messages must be a non-empty list of {{'role', 'content'}} dicts, got {messages!r}")
    for index, message in enumerate(messages):
        _check_message(index, message)
    if messages[-1]["role"] != "user":
        raise ValueError(f"messages must end with a user message, last role is {messages[-1]['role']!r}")
    return messages


def _check_message(index: int, message: Any) -> None:
    """Raise ValueError unless `message` is ``{"role": one of ROLES, "content": str}``."""
    if not isinstance(message, dict):
        raise ValueError(f"messages[{index}] must be a dict, got {type(message).__name__}: {message!r}")
    if message.get("role") not in ROLES:
        raise ValueError(f"messages[{index}]['role'] must be one of {ROLES}, got {message.get('role')!r}")
    if not isinstance(message.get("content"), str):
        raise ValueError(f"messages[{index}]['content'] must be a str, got {message.get('content')!r}")


def _is_number(value: Any) -> bool:
    """True for a finite int/float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
