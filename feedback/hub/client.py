"""How this app talks to the Hub: the token, the endpoint, repo ids, and a timeout on every call.

Every Hub call of the app (the sync, ``push``, ``pull``, an export's source and ``--push-to-hub``,
``stats``/``review --source``) goes through these:

- :func:`hub_token`: the one token look-up (an explicit token, else ``huggingface_hub.get_token()``),
  registered for log redaction (:mod:`feedback.redaction`) as it is found.
- :func:`hub_api`: an ``HfApi`` for ``$HF_ENDPOINT`` read now (not when ``huggingface_hub`` was
  imported), so a test can point it at a local Hub-compatible server.
- :func:`use_hub_timeout`: a network timeout on every ``huggingface_hub`` call of the process
  (``FEEDBACK_HUB_TIMEOUT`` by default, see :func:`hub_timeout`); in a thread that called
  :func:`fail_fast_here` (the sync's), a network failure is final (:class:`HubUnreachable`)
  instead of being retried with ``huggingface_hub``'s back-off sleeps.
- :func:`is_repo_id`: the one check of an ``owner/name`` repo id.

``huggingface_hub`` makes every call through one process-wide ``httpx2.Client`` (``HfApi`` takes
no client of its own), so the timeout is set with its documented hook, ``set_client_factory``.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import httpx2
from huggingface_hub import HfApi, get_session, get_token, set_client_factory
from huggingface_hub.errors import HfHubHTTPError
from pydantic import TypeAdapter, ValidationError

from feedback.redaction import redact_secrets, register_secret
from schemas.records import REPO_ID_PATTERN
from schemas.settings import Settings

_TIMEOUT_FIELD = Settings.model_fields["hub_timeout"]
_TIMEOUT = TypeAdapter(Annotated[float, *_TIMEOUT_FIELD.metadata])
DEFAULT_HUB_TIMEOUT: float = _TIMEOUT_FIELD.default
"""Seconds a Hub call may wait on the network (connect, each read, each write) by default (30)."""
TIMEOUT_VARIABLE = "FEEDBACK_HUB_TIMEOUT"
_REPO_ID = re.compile(REPO_ID_PATTERN)
_TIMEOUT_KEYS = ("connect", "read", "write", "pool")
_NETWORK_ERRORS = (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)
_fail_fast_thread = threading.local()
_installed = {"timeout": None}
_install_lock = threading.Lock()


class HubUnreachable(Exception):
    """A push met a network failure (timeout, refused or reset connection); the message says which.

    Raised instead of ``httpx2``'s own errors in a thread that called :func:`fail_fast_here`, so
    ``huggingface_hub`` does not retry them with its back-off sleeps: the scheduler's next tick is
    the retry.
    """


def is_repo_id(value: object) -> bool:
    """True when ``value`` is a Hugging Face repo id, ``owner/name`` (:data:`REPO_ID_PATTERN`, whole
    string: a trailing newline is refused).

    >>> is_repo_id("alice/chat-logs"), is_repo_id("./data"), is_repo_id("alice/logs\\n")
    (True, False, False)
    """
    return isinstance(value, str) and _REPO_ID.fullmatch(value) is not None


def hub_token(explicit: str | None = None) -> str | None:
    """The Hugging Face token to send, or None (anonymous); a token found is registered for redaction.

    The order: ``explicit`` (a ``--token`` option, or ``Settings.hf_token`` which is ``$HF_TOKEN``),
    then ``huggingface_hub.get_token()``: a Trusted Publishers token when ``$HF_OIDC_RESOURCE`` is set,
    ``$HF_TOKEN`` (or ``$HUGGING_FACE_HUB_TOKEN``), then the token saved by ``hf auth login``.
    Every value returned is registered with :func:`feedback.redaction.register_secret`, so no log
    line or printed error shows it.

    Raises:
        huggingface_hub.errors.OIDCError: (from ``get_token``) when ``$HF_OIDC_RESOURCE`` is set and
            the token exchange fails.
    """
    token = explicit or get_token() or None
    register_secret(token)
    return token


def hub_endpoint() -> str | None:
    """``$HF_ENDPOINT`` now (None: ``huggingface_hub``'s default, read when it was imported)."""
    return os.environ.get("HF_ENDPOINT") or None


def hub_api(token: str | None) -> HfApi:
    """An ``HfApi`` for :func:`hub_endpoint` sending ``token`` (see :func:`hub_token`)."""
    return HfApi(endpoint=hub_endpoint(), token=token)


def refused_by_concurrent_change(error: HfHubHTTPError) -> bool:
    """True when the Hub refused a commit because the repo changed meanwhile (its files or parent commit:
    404, 409, 412); compaction and erasure then start again from the new head."""
    return error.response is not None and error.response.status_code in (404, 409, 412)


def failure_reason(error: BaseException) -> str:
    """Why a Hub call failed, on one line, with every registered secret and credential redacted;
    never empty (the error's class name when it has no message)."""
    return " ".join(redact_secrets(str(error)).split()) or type(error).__name__


def hub_timeout(value: float | str | None = None) -> float:
    """The Hub timeout in seconds: ``value`` if given, else ``$FEEDBACK_HUB_TIMEOUT``, else 30.

    Validated as ``Settings.hub_timeout`` is (0.1 to 600 seconds).

    Raises:
        ValueError: for a value that is not a number of seconds in that range (naming it).
    """
    source = "the timeout"
    if value is None:
        value, source = os.environ.get(TIMEOUT_VARIABLE), TIMEOUT_VARIABLE
        if value is None or not str(value).strip():
            return DEFAULT_HUB_TIMEOUT
    try:
        return _TIMEOUT.validate_python(value)
    except ValidationError as error:
        raise ValueError(
            f"{source} must be seconds from 0.1 to 600, not {value!r}: {error.errors()[0]['msg']}"
        ) from None


def fail_fast_here() -> None:
    """Make a network failure of a Hub call in the calling thread final (:class:`HubUnreachable`),
    instead of ``huggingface_hub``'s retries; for the sync's push and connect threads."""
    _fail_fast_thread.active = True


@contextmanager
def _fail_fast(timeout: float) -> Iterator[None]:
    try:
        yield
    except _NETWORK_ERRORS as error:
        if not getattr(_fail_fast_thread, "active", False):
            raise
        kind = type(error).__name__
        if isinstance(error, httpx2.TimeoutException):
            raise HubUnreachable(f"no answer from the Hub within {timeout:g} s ({kind})") from error
        raise HubUnreachable(f"cannot reach the Hub: {kind}: {error or 'no detail'}") from error


class _FailFastStream(httpx2.SyncByteStream):
    def __init__(self, stream: httpx2.SyncByteStream, timeout: float) -> None:
        self._stream, self._timeout = stream, timeout

    def __iter__(self) -> Iterator[bytes]:
        with _fail_fast(self._timeout):
            yield from self._stream

    def close(self) -> None:
        self._stream.close()


class _FailFastTransport(httpx2.BaseTransport):
    """The default transport, with ``timeout`` wherever a request has none, and in a fail-fast
    thread network errors turned into :class:`HubUnreachable`.

    A client's timeout is only a default: ``huggingface_hub`` passes ``timeout=None`` (no timeout at
    all) on some calls, e.g. ``HfApi.repo_info``, which ``push`` and ``snapshot_download`` make first.
    A timeout the library sets explicitly (downloads, etag checks) is kept.
    """

    def __init__(self, timeout: float) -> None:
        self._transport = httpx2.HTTPTransport()
        self._timeout = timeout

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        given = request.extensions.get("timeout") or {}
        timeouts = {key: self._timeout if given.get(key) is None else given[key] for key in _TIMEOUT_KEYS}
        request.extensions = {**request.extensions, "timeout": timeouts}
        with _fail_fast(self._timeout):
            response = self._transport.handle_request(request)
        response.stream = _FailFastStream(response.stream, self._timeout)  # a body stalling mid-way too
        return response

    def close(self) -> None:
        self._transport.close()


def use_hub_timeout(timeout: float | None = None) -> float:
    """Give every ``huggingface_hub`` call of this process a network timeout; returns it (seconds).

    ``timeout`` defaults to :func:`hub_timeout` (``$FEEDBACK_HUB_TIMEOUT``, else 30 s). Installs a
    client factory with ``huggingface_hub.set_client_factory`` (the library's one hook: ``HfApi``
    has no client of its own), which closes the current client; calling again with the timeout
    already installed changes nothing. The client keeps the library's request hooks (offline mode,
    request ids, debug log) and redirects; its transport applies ``timeout`` to every request that
    has none (even where ``huggingface_hub`` passes ``timeout=None``) and makes a network error
    final in a thread that called :func:`fail_fast_here`; elsewhere errors are unchanged.

    Raises:
        ValueError: when ``timeout`` is not a number of seconds from 0.1 to 600.
    """
    timeout = hub_timeout(timeout)
    with _install_lock:
        if _installed["timeout"] == timeout:
            return timeout
        hooks = get_session().event_hooks  # huggingface_hub's own (or an earlier factory's) hooks

        def factory() -> httpx2.Client:
            return httpx2.Client(
                event_hooks=hooks,
                follow_redirects=True,
                timeout=httpx2.Timeout(timeout),
                transport=_FailFastTransport(timeout),
            )

        set_client_factory(factory)
        _installed["timeout"] = timeout
    return timeout
