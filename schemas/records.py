"""The records the app writes: one JSON object per line, appended, never rewritten.

Records are *events*. A turn is logged once; a rating is a new record each time a user clicks
(the latest rating of a message wins, ``rating=None`` is an undo); a flag is a new record each
time. Every record carries ``schema_version`` (so a format change is detectable), a UTC
``timestamp`` and the ``conversation_id`` it belongs to. Identity and storage live elsewhere
(``feedback.store``); this module holds values only: no I/O, no gradio.

Chat messages follow the OpenAI / TRL conversational format (``role`` + string ``content``),
with uploaded files kept beside the text as paths relative to the data dir (``files/<sha256>.<ext>``).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal, get_args

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

SCHEMA_VERSION = 1
"""Bumped whenever a stored field changes meaning or shape."""

ID_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"
_ID_RE = re.compile(ID_PATTERN)

Identifier = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
"""A conversation or message id: 8-64 characters of ``[A-Za-z0-9_-]`` (safe in file names and URLs)."""

RatingValue = Literal["like", "dislike"]
"""A rating of a reply (``None`` in a record is an undo)."""
RATING_VALUES: tuple[RatingValue, ...] = get_args(RatingValue)
Source = Literal["ui", "api", "interface"]
"""Where a record came from: the Gradio page, the HTTP API, or a ``gr.Interface`` flag button."""


REPO_ID_PATTERN = r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$"
"""A Hugging Face repo id, ``owner/name``."""


def is_valid_id(value: object) -> bool:
    """True when ``value`` is a string of 8-64 characters of ``[A-Za-z0-9_-]``."""
    return (
        isinstance(value, str) and _ID_RE.fullmatch(value) is not None
    )  # fullmatch: "$" alone accepts a trailing "\n"


def new_id() -> str:
    """A fresh random id (32 hex characters of a uuid4), valid as a conversation or message id."""
    return uuid.uuid4().hex


def utc_now() -> datetime:
    """The current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UTCDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


class ChatMessage(BaseModel):
    """One chat message in OpenAI/TRL conversational format, plus the files it carried.

    ``files`` are paths relative to the data dir of content-addressed copies
    (``files/<sha256 hex>.<ext>``), never the uploader's original path.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str
    files: tuple[str, ...] = ()

    def to_openai(self) -> dict[str, str]:
        """``{"role", "content"}`` for a chat-completions request; files are named in the text."""
        content = self.content
        if self.files:
            names = "\n".join(f"[attached file: {path}]" for path in self.files)
            content = f"{content}\n\n{names}" if content else names
        return {"role": self.role, "content": content}


class InputValue(BaseModel):
    """The value of one of the chat function's additional inputs (a slider, a dropdown, ...)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    """The input's label (or its API parameter name when it has none)."""
    value: str
    """The value as JSON text (``1.3``, ``"concise"``, ``true``), so every input types alike."""


class GenerationParams(BaseModel):
    """Generation parameters a reply was sampled with; ``None`` where the responder did not set one.

    ``inputs`` holds the chat function's additional inputs by label; an input labelled like one
    of the typed fields (``Temperature``, ``top_p``, ``Max tokens``, ``Seed``) also sets it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    inputs: tuple[InputValue, ...] = ()


class Record(BaseModel):
    """Fields shared by every record. Subclasses set ``kind``, the data-dir folder they go to."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: ClassVar[str]

    schema_version: int = SCHEMA_VERSION
    timestamp: UTCDatetime = Field(default_factory=utc_now)
    conversation_id: Identifier


class Turn(Record):
    """One user message and the assistant reply to it.

    ``messages`` is the whole prompt the model saw, ending with the user message of this turn;
    ``turn_index`` counts the assistant replies before this one in the conversation (0-based).
    A retry keeps the ``turn_index`` and sets ``regenerated_from`` to the reply it replaces; a
    changed user message at an index already answered sets ``edited_from`` instead.
    ``latency_ms`` is wall time from the request to the last token, in milliseconds (None where
    it was not measured, e.g. a ``gr.Interface`` example flagged after the fact).
    """

    kind: ClassVar[str] = "turns"

    message_id: Identifier = Field(default_factory=new_id)
    turn_index: int = Field(ge=0)
    messages: tuple[ChatMessage, ...] = Field(min_length=1)
    response: str
    model: str
    params: GenerationParams = GenerationParams()
    latency_ms: float | None = Field(ge=0)
    regenerated_from: Identifier | None = None
    edited_from: Identifier | None = None
    source: Source = "ui"


class Rating(Record):
    """A like, a dislike, or an undo (``rating=None``) of one assistant reply.

    ``option`` is the custom feedback option picked with it, if any (e.g. "Inaccurate").
    The latest rating record of a message is the one that counts.
    """

    kind: ClassVar[str] = "ratings"

    message_id: Identifier
    rating: RatingValue | None
    option: str | None = None
    comment: str | None = None
    source: Source = "ui"


class Flag(Record):
    """A report that a reply needs review, with one or more ``reasons`` (e.g. "Harmful")."""

    kind: ClassVar[str] = "flags"

    message_id: Identifier
    reasons: tuple[Annotated[str, StringConstraints(min_length=1, max_length=200)], ...] = Field(min_length=1)
    comment: str | None = None
    source: Source = "ui"


Decision = Literal["confirmed", "dismissed", "needs-fix"]
"""A reviewer's verdict on a flagged reply: the flag is right, wrong, or the reply needs a fix.
What each one does to exports is in ``feedback.rules``."""
DECISIONS: tuple[Decision, ...] = get_args(Decision)


class Review(Record):
    """A reviewer's decision on a flagged reply; the latest review of a reply is the one that counts.

    ``corrected_reply`` is a better reply written by the reviewer (a ``chosen`` candidate for
    DPO/SFT exports); ``reviewer`` is the signed-in user name.
    """

    kind: ClassVar[str] = "reviews"

    message_id: Identifier
    decision: Decision
    corrected_reply: str | None = None
    note: str | None = None
    reviewer: Annotated[str, StringConstraints(min_length=1, max_length=200)]


Requester = Literal["user", "reviewer", "operator"]
"""Who asked for a deletion: the chat's own user (the page's button, ``/forget``), a signed-in
reviewer, or an operator (``python -m feedback delete``)."""


class Deletion(Record):
    """A conversation deleted: every record of ``conversation_id`` is ignored from this record on, by
    every reader (``feedback.rules``), and erased from the data dir and the dataset repo
    (``feedback.privacy.deletion``, ``feedback.hub.erase``). It carries no text of the conversation.

    ``reviewer`` is the signed-in user name when ``requested_by`` is ``"reviewer"``.
    """

    kind: ClassVar[str] = "deletions"

    requested_by: Requester
    reviewer: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


RECORD_TYPES: dict[str, type[Record]] = {cls.kind: cls for cls in (Turn, Rating, Flag, Review, Deletion)}
"""Record class by data-dir folder name."""
