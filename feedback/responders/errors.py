"""Errors shared by all responders.

A responder turns every failure of its backend (HTTP error status, refused
connection, timeout, malformed stream, missing credentials) into one
`ResponderError`, so the chat UI has a single type to catch and show.
Messages never contain credentials: build them with `redact`.
"""

from __future__ import annotations

REDACTED = "***"


class ResponderError(RuntimeError):
    """A responder could not produce a reply.

    The message is meant for the user and the logs: it names the responder,
    the model and what went wrong (e.g. ``"openai responder: model 'm' at
    http://127.0.0.1:8000/v1: HTTP 500: boom"``) and never contains a token.
    The original exception is chained as ``__cause__`` (it is not scrubbed,
    so do not show it raw).
    """


def redact(text: str, *secrets: str | None) -> str:
    """Return `text` with every non-empty secret in `secrets` replaced by ``***``.

    Example: ``redact("Bearer hf_abc failed", "hf_abc") == "Bearer *** failed"``.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text
