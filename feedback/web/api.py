"""The HTTP API for custom front ends: ``/chat``, ``/regenerate``, ``/rate``, ``/flag``, ``/forget``,
``/feedback_options``.

Plain ``gr.api`` endpoints, callable from ``@gradio/client`` (JS) and ``gradio_client`` (Python),
which cannot send the event data a ``.like`` listener needs. The client keeps the
``conversation_id`` (or lets ``/chat`` make one) and rates replies by the ``message_id`` that
``/chat`` and ``/regenerate`` return. Every refusal is a ``gr.Error`` with a message saying what
was wrong, and nothing is written for it.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
from loguru import logger

from feedback.chat import PendingTurn, TextStream, log_failure
from feedback.errors import FeedbackError, SaveError, refusal
from feedback.privacy.consent import ConsentGate, check_consent
from feedback.privacy.deletion import Eraser
from feedback.recorder import FeedbackRecorder, history_messages
from feedback.responders.errors import ResponderError
from feedback.web.inputs import ExtraInputs
from feedback.web.uploads import UploadError, uploaded_file
from schemas.records import RATING_VALUES, ChatMessage, is_valid_id

MAX_FILES = 16
_ERASER_LOCK = threading.Lock()
TRAILING = ("consent",)
"""Endpoint parameters listed after the app's additional inputs (added later: a client calling
``/chat`` positionally with additional inputs keeps working)."""


@dataclass
class ChatAPI:
    """The API endpoints of one app, bound to its recorder and its way of producing replies.

    Args:
        recorder: validates and writes records.
        stream: the reply producer for the chat function's extra input values (see
            :data:`feedback.chat.TextStream`); with no extra inputs it is called with ``[]``.
        model: the model name recorded with each turn; ``params`` its generation parameters.
        inputs: the chat function's additional inputs, taken by ``/chat`` and ``/regenerate`` as
            optional named parameters and recorded in ``params``.
        system_prompt: the system message the model is given first, logged as the prompt's first message.
        consent: the consent step of the recorder's write gate (default: the recorder's own, or a
            ``notice`` one added to it, see :meth:`ConsentGate.of`); ``/chat`` and ``/regenerate``
            take the user's answer as their ``consent`` argument.
        policy_url: the privacy policy, shown by ``/feedback_options``.
        eraser: deletes a conversation for ``/forget`` (default: one on ``recorder``, made at the
            first ``/forget``).
    """

    recorder: FeedbackRecorder
    stream: Callable[[list[Any]], TextStream]
    model: str
    params: dict[str, Any]
    inputs: ExtraInputs = field(default_factory=ExtraInputs)
    system_prompt: str | None = None
    consent: ConsentGate | None = None
    policy_url: str | None = None
    eraser: Eraser | None = None

    def __post_init__(self) -> None:
        if self.consent is None:
            self.consent = ConsentGate.of(self.recorder)

    def register(self, concurrency_limit: int | None = None) -> None:
        """Add the endpoints to the ``gr.Blocks`` being built (call inside ``with blocks:``)."""
        gr.api(self._with_inputs(self.chat), api_name="chat", concurrency_limit=concurrency_limit)
        gr.api(self._with_inputs(self.regenerate), api_name="regenerate", concurrency_limit=concurrency_limit)
        gr.api(self.rate, api_name="rate", concurrency_limit=None)
        gr.api(self.flag, api_name="flag", concurrency_limit=None)
        gr.api(self.forget, api_name="forget", concurrency_limit=None)
        gr.api(self.feedback_options, api_name="feedback_options", concurrency_limit=None)

    def chat(
        self, message: dict[str, Any] | str, conversation_id: str = "", consent: bool | None = None, **inputs: Any
    ) -> Iterator[dict[str, Any]]:
        """Send a user message; stream the reply.

        Args:
            message: ``{"text": str, "files": [file, ...]}`` (files uploaded with the client's
                ``handle_file``) or a plain string.
            conversation_id: continue this conversation (8-64 of ``[A-Za-z0-9_-]``); empty starts a new one.
            consent: the user's answer for this conversation: true (record it), false (do not:
                nothing about it is written, files included); left out, the earlier answer holds,
                else the app's mode decides (``notice``: recorded, ``required``: not).
            **inputs: the app's additional inputs by name (see :class:`ExtraInputs`); defaults for the rest.
        Yields:
            ``{"conversation_id", "message_id", "turn_index", "response", "done"}``: the reply so
            far; the last item has ``done: true`` and is sent after the turn is written.
        """
        with _refusals("chat", conversation_id):
            text, files = self._parse_message(message)
            conversation_id = self.recorder.conversation_id_or_new(conversation_id)
            path = self.recorder.path(conversation_id)
            values = self.inputs.values(inputs)
            recorded = self._answer(conversation_id, consent, has_history=bool(path))
            stored = tuple(self.recorder.store_upload(f) if recorded else str(f) for f in files)
            user = ChatMessage(role="user", content=text, files=stored)
            pending = self._pending(conversation_id, [*history_messages(path), user], len(path), values)
            yield from _progress(pending)

    def regenerate(
        self, conversation_id: str, message_id: str, consent: bool | None = None, **inputs: Any
    ) -> Iterator[dict[str, Any]]:
        """Ask for another reply to the prompt of the conversation's last reply; stream it.

        The new turn is logged with ``regenerated_from=message_id``; ``consent`` is as for
        :meth:`chat`. Yields what :meth:`chat` yields.
        """
        with _refusals("regenerate", conversation_id):
            conversation_id, message_id = self.recorder.check_reply(conversation_id, message_id)
            path = self.recorder.path(conversation_id)
            if not path or path[-1].message_id != message_id:
                raise FeedbackError(
                    f"message {message_id} is not the last reply of conversation {conversation_id}; "
                    "only the last reply can be regenerated"
                )
            values = self.inputs.values(inputs)
            self._answer(conversation_id, consent, has_history=True)
            prompt = [*history_messages(path[:-1]), path[-1].user]
            pending = self._pending(conversation_id, prompt, len(path) - 1, values, regenerated_from=message_id)
            yield from _progress(pending)

    def rate(
        self, conversation_id: str, message_id: str, rating: str = "", option: str = "", comment: str = ""
    ) -> dict[str, Any]:
        """Like (``"like"``), dislike (``"dislike"``) or undo (``""``) a reply; returns the stored record.

        ``option`` is one of the flag reasons (see ``/feedback_options``), ``comment`` free text.
        """
        with _refusals("rate", conversation_id):
            self._resume(conversation_id)
            record = self.recorder.rate(conversation_id, message_id, rating, option=option, comment=comment)
            return record.model_dump(mode="json")

    def flag(self, conversation_id: str, message_id: str, reasons: list[str], comment: str = "") -> dict[str, Any]:
        """Flag a reply for review with one or more reasons; returns the stored record."""
        with _refusals("flag", conversation_id):
            self._resume(conversation_id)
            record = self.recorder.flag(conversation_id, message_id, reasons, comment=comment)
            return record.model_dump(mode="json")

    def forget(self, conversation_id: str) -> dict[str, Any]:
        """Delete a conversation ("Forget this conversation"): its turns, ratings, flags, reviews
        and uploaded files, here and in the dataset repo; returns ``{"conversation_id": str,
        "deleted": true}``.

        From the call on, the conversation counts nowhere (exports, review queue, stats) and
        cannot be continued; its records are erased from the data dir (and the Hub) in the
        background. Refused (nothing written) for an empty or malformed id, or a conversation
        with no recorded turn here (never recorded, declined, or already deleted).
        """
        with _refusals("forget", conversation_id):
            if conversation_id is None or conversation_id == "":
                raise FeedbackError("conversation_id is required: the id of the conversation to delete")
            if not isinstance(conversation_id, str):
                raise FeedbackError(f"conversation_id must be a string, not {type(conversation_id).__name__}")
            self.eraser_or_new().forget(conversation_id, requested_by="user")
            return {"conversation_id": conversation_id, "deleted": True}

    def eraser_or_new(self) -> Eraser:
        """The eraser ``/forget`` uses: the one given, or one on the recorder made now."""
        with _ERASER_LOCK:
            if self.eraser is None:
                self.eraser = Eraser(self.recorder)
            return self.eraser

    def feedback_options(self) -> dict[str, Any]:
        """What a front end may send: ``{"ratings": ["like", "dislike"], "reasons": [...],
        "max_message_chars": int, "consent": "notice" | "required", "policy_url": str | None}``
        (with ``"required"``, ask the user and send ``consent=true`` with ``/chat``, or nothing is recorded)."""
        assert self.consent is not None
        return {
            "ratings": list(RATING_VALUES),
            "reasons": list(self.recorder.flag_reasons),
            "max_message_chars": self.recorder.max_message_chars,
            "consent": self.consent.mode,
            "policy_url": self.policy_url,
        }

    def _answer(self, conversation_id: str, consent: object, *, has_history: bool) -> bool:
        """Note a client's ``consent`` for the conversation; whether its records (and files) are written."""
        assert self.consent is not None
        return self.consent.answer(conversation_id, check_consent(consent), has_history=has_history)

    def _resume(self, conversation_id: object) -> None:
        """Before a rating or flag, with ``consent="required"``: a conversation this process has no
        answer for, but whose turns are in the data dir, was recorded with consent (see
        :meth:`ConsentGate.answer`)."""
        assert self.consent is not None
        if self.consent.mode != "required" or not is_valid_id(conversation_id):
            return
        if self.consent.status(conversation_id) is None:  # type: ignore[arg-type]
            self.consent.answer(conversation_id, None, has_history=bool(self.recorder.path(conversation_id)))  # type: ignore[arg-type]

    def _pending(
        self,
        conversation_id: str,
        messages: list[ChatMessage],
        turn_index: int,
        values: list[Any],
        regenerated_from: str | None = None,
    ) -> PendingTurn:
        system = [ChatMessage(role="system", content=self.system_prompt)] if self.system_prompt else []
        return PendingTurn(
            recorder=self.recorder,
            stream=self.stream(values),
            conversation_id=conversation_id,
            messages=[*system, *messages],
            turn_index=turn_index,
            model=self.model,
            params=self.inputs.params(values, self.params),
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
            raise FeedbackError(
                f"message has unknown keys {sorted(map(str, unknown))[:5]}; expected 'text' and 'files'"
            )
        files = message.get("files")
        files = [] if files is None else files
        if not isinstance(files, list) or len(files) > MAX_FILES:
            raise FeedbackError(f"message files must be a list of at most {MAX_FILES} uploaded files")
        text = self.recorder.check_message(message.get("text", ""))
        if not text and not files:
            raise FeedbackError("the message is empty: send text, files or both")
        return text, [uploaded_path(f) for f in files]

    def _with_inputs(self, method: Callable[..., Iterator[dict[str, Any]]]) -> Callable[..., Iterator[dict[str, Any]]]:
        """``method`` as an endpoint whose signature lists the app's additional inputs as optional
        named parameters after its own, and the :data:`TRAILING` ones last (Gradio builds the
        API's parameters from the signature and calls the endpoint with them in that order)."""
        if not self.inputs.inputs:
            return method
        own = list(inspect.signature(method).parameters.values())[:-1]  # without **inputs
        lead = [p for p in own if p.name not in TRAILING]
        trail = [p for p in own if p.name in TRAILING]
        extra = [
            inspect.Parameter(
                spec.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=spec.default, annotation=spec.hint
            )
            for spec in self.inputs.inputs
        ]
        ordered = [*lead, *extra, *trail]

        def endpoint(*args: Any) -> Iterator[dict[str, Any]]:
            yield from method(**dict(zip([p.name for p in ordered], args, strict=False)))

        endpoint.__name__ = method.__name__
        endpoint.__doc__ = method.__doc__
        endpoint.__signature__ = inspect.Signature(ordered, return_annotation=Iterator[dict[str, Any]])  # type: ignore[attr-defined]
        endpoint.__annotations__ = {**{p.name: p.annotation for p in ordered}, "return": Iterator[dict[str, Any]]}
        return endpoint


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
        self.conversation_id = (
            conversation_id if isinstance(conversation_id, str) and len(conversation_id) <= 64 else "-"
        )

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
