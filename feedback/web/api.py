"""The HTTP API for custom front ends: ``/chat``, ``/regenerate``, ``/rate``, ``/flag``, ``/feedback_options``.

Plain ``gr.api`` endpoints, callable from ``@gradio/client`` (JS) and ``gradio_client`` (Python),
which cannot send the event data a ``.like`` listener needs. The client keeps the
``conversation_id`` (or lets ``/chat`` make one) and rates replies by the ``message_id`` that
``/chat`` and ``/regenerate`` return. Every refusal is a ``gr.Error`` with a message saying what
was wrong, and nothing is written for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
from loguru import logger

from feedback.chat import PendingTurn, TextStream, log_failure
from feedback.errors import FeedbackError, SaveError, refusal
from feedback.recorder import FeedbackRecorder, history_messages
from feedback.responders.errors import ResponderError
from feedback.web.uploads import UploadError, uploaded_file
from schemas.records import ChatMessage

MAX_FILES = 16


@dataclass
class ChatAPI:
    """The API endpoints of one app, bound to its recorder and its way of producing replies.

    Args:
        recorder: validates and writes records.
        stream: produces a reply (see :data:`feedback.chat.TextStream`).
        model: the model name recorded with each turn; ``params`` its generation parameters.
    """

    recorder: FeedbackRecorder
    stream: TextStream
    model: str
    params: dict[str, Any]

    def register(self, concurrency_limit: int | None = None) -> None:
        """Add the endpoints to the ``gr.Blocks`` being built (call inside ``with blocks:``)."""
        gr.api(self.chat, api_name="chat", concurrency_limit=concurrency_limit)
        gr.api(self.regenerate, api_name="regenerate", concurrency_limit=concurrency_limit)
        gr.api(self.rate, api_name="rate", concurrency_limit=None)
        gr.api(self.flag, api_name="flag", concurrency_limit=None)
        gr.api(self.feedback_options, api_name="feedback_options", concurrency_limit=None)

    def chat(self, message: dict[str, Any] | str, conversation_id: str = "") -> Iterator[dict[str, Any]]:
        """Send a user message; stream the reply.

        Args:
            message: ``{"text": str, "files": [file, ...]}`` (files uploaded with the client's
                ``handle_file``) or a plain string.
            conversation_id: continue this conversation (8-64 of ``[A-Za-z0-9_-]``); empty starts a new one.
        Yields:
            ``{"conversation_id", "message_id", "turn_index", "response", "done"}``: the reply so
            far; the last item has ``done: true`` and is sent after the turn is written.
        """
        with _refusals("chat", conversation_id):
            text, files = self._parse_message(message)
            conversation_id = self.recorder.conversation_id_or_new(conversation_id)
            path = self.recorder.path(conversation_id)
            user = ChatMessage(role="user", content=text, files=tuple(self.recorder.store_upload(f) for f in files))
            pending = self._pending(conversation_id, [*history_messages(path), user], len(path))
            yield from _progress(pending)

    def regenerate(self, conversation_id: str, message_id: str) -> Iterator[dict[str, Any]]:
        """Ask for another reply to the prompt of the conversation's last reply; stream it.

        The new turn is logged with ``regenerated_from=message_id``. Yields what :meth:`chat` yields.
        """
        with _refusals("regenerate", conversation_id):
            conversation_id, message_id = self.recorder.check_reply(conversation_id, message_id)
            path = self.recorder.path(conversation_id)
            if not path or path[-1].message_id != message_id:
                raise FeedbackError(
                    f"message {message_id} is not the last reply of conversation {conversation_id}; "
                    "only the last reply can be regenerated"
                )
            prompt = [*history_messages(path[:-1]), path[-1].user]
            pending = self._pending(conversation_id, prompt, len(path) - 1, regenerated_from=message_id)
            yield from _progress(pending)

    def rate(
        self, conversation_id: str, message_id: str, rating: str = "", option: str = "", comment: str = ""
    ) -> dict[str, Any]:
        """Like (``"like"``), dislike (``"dislike"``) or undo (``""``) a reply; returns the stored record.

        ``option`` is one of the flag reasons (see ``/feedback_options``), ``comment`` free text.
        """
        with _refusals("rate", conversation_id):
            record = self.recorder.rate(conversation_id, message_id, rating, option=option, comment=comment)
            return record.model_dump(mode="json")

    def flag(self, conversation_id: str, message_id: str, reasons: list[str], comment: str = "") -> dict[str, Any]:
        """Flag a reply for review with one or more reasons; returns the stored record."""
        with _refusals("flag", conversation_id):
            record = self.recorder.flag(conversation_id, message_id, reasons, comment=comment)
            return record.model_dump(mode="json")

    def feedback_options(self) -> dict[str, Any]:
        """What a front end may send: ``{"ratings": ["like", "dislike"], "reasons": [...], "max_message_chars": int}``."""
        return {
            "ratings": ["like", "dislike"],
            "reasons": list(self.recorder.flag_reasons),
            "max_message_chars": self.recorder.max_message_chars,
        }

    def _pending(
        self, conversation_id: str, messages: list[ChatMessage], turn_index: int, regenerated_from: str | None = None
    ) -> PendingTurn:
        return PendingTurn(
            recorder=self.recorder,
            stream=self.stream,
            conversation_id=conversation_id,
            messages=messages,
            turn_index=turn_index,
            model=self.model,
            params=self.params,
            source="api",
            regenerated_from=regenerated_from,
        )

    def _parse_message(self, message: object) -> tuple[str, list[Path]]:
        if isinstance(message, str):
            message = {"text": message}
        if not isinstance(message, dict):
            raise FeedbackError('message must be {"text": str, "files": [...]} or a string')
        unknown = set(message) - {"text", "files"}
        if unknown:
            raise FeedbackError(f"message has unknown keys {sorted(map(str, unknown))[:5]}; expected 'text' and 'files'")
        files = message.get("files")
        files = [] if files is None else files
        if not isinstance(files, list) or len(files) > MAX_FILES:
            raise FeedbackError(f"message files must be a list of at most {MAX_FILES} uploaded files")
        text = self.recorder.check_message(message.get("text", ""))
        if not text and not files:
            raise FeedbackError("the message is empty: send text, files or both")
        return text, [uploaded_path(f) for f in files]


def uploaded_path(file: object) -> Path:
    """The local path of a file the client uploaded to this app (see :mod:`feedback.web.uploads`).

    ``file`` is a ``FileData`` dict (what ``handle_file`` sends) or a path string.
    Raises:
        FeedbackError: for anything else (a path elsewhere on the server is never read).
    """
    path = file.get("path") if isinstance(file, dict) else file
    try:
        return uploaded_file(path)
    except UploadError as error:
        raise FeedbackError(str(error)) from error


def _progress(pending: PendingTurn) -> Iterator[dict[str, Any]]:
    def item(text: str, done: bool) -> dict[str, Any]:
        return {
            "conversation_id": pending.conversation_id,
            "message_id": pending.message_id,
            "turn_index": pending.turn_index,
            "response": text,
            "done": done,
        }

    text = ""
    for text in pending:
        yield item(text, False)
    yield item(text, True)


class _refusals:
    """Turn refusals into ``gr.Error`` with their message, and anything unexpected into a logged, generic one."""

    def __init__(self, endpoint: str, conversation_id: object) -> None:
        self.endpoint = endpoint
        self.conversation_id = conversation_id if isinstance(conversation_id, str) and len(conversation_id) <= 64 else "-"

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> bool:
        if error is None or isinstance(error, gr.Error | GeneratorExit):
            return False
        if isinstance(error, FeedbackError):
            logger.bind(conversation_id=self.conversation_id).warning("/{} refused: {}", self.endpoint, error)
            raise refusal(error) from error
        if isinstance(error, SaveError):
            raise refusal(error) from error
        if isinstance(error, ResponderError):
            log_failure(self.conversation_id, f"/{self.endpoint}")
            raise gr.Error(f"The model could not answer: {error}", print_exception=False) from error  # logged above
        log_failure(self.conversation_id, f"/{self.endpoint}")
        raise gr.Error(f"/{self.endpoint} failed on the server; the error is logged", print_exception=False) from error
