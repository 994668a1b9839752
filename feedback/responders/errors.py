"""Errors shared by all responders.

A responder turns every failure of its backend (HTTP error status, refused
connection, timeout, malformed stream, missing credentials) into one
`ResponderError`, so the chat UI has a single type to catch and show.

Two texts per error: the message (``str(error)``) is what a chat user sees,
anonymous visitors included, so it is short and generic, e.g. ``"HTTP 401
from the model server"``: never the server's answer (a server may echo the
request headers, the key among them), never the server's URL, never any part
of a key. ``detail`` is for the operator's log: which model, where, and what
the server said, with known secrets removed (build it with `redact`; the log
sink redacts again, see `feedback.redaction`).
"""

from __future__ import annotations

REDACTED = "***"


class ResponderError(RuntimeError):
    """A responder could not produce a reply.

    Args:
        message: for the user: what went wrong in a few words, nothing the
            backend said (e.g. ``"HTTP 500 from the model server"``).
        detail: for the log: the responder, the model, where and what the
            backend said (e.g. ``"openai responder: model 'm' at
            http://127.0.0.1:8000/v1: HTTP 500: boom"``); defaults to
            `message`. Never contains a known token.

    The original exception is chained as ``__cause__`` (it is not scrubbed,
    so do not show it raw; the log sink redacts it).
    """

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail if detail is not None else message


def redact(text: str, *secrets: str | None) -> str:
    """Return `text` with every non-empty secret in `secrets` replaced by ``***``.

    Example: ``redact("Bearer hf_abc failed", "hf_abc") == "Bearer *** failed"``.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text
