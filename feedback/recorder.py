"""Validated writes of every record, and the conversations they belong to: the one write gate.

The page, the HTTP API, the flagging callback and the review desk all write through
:class:`FeedbackRecorder` (records and uploaded files), so every rule holds everywhere: ids are
well formed, a rating or flag names a reply of *its own* conversation, values are among those
allowed, and nothing is written for a refused request. :meth:`FeedbackRecorder.write` is the one
place a record passes before it reaches a shard; its ``gate`` steps may change it (redaction) or
keep it out (no consent).

Conversations are looked up in the data dir's conversation index (:mod:`feedback.index`, a
SQLite file updated as each turn is written and caught up at start with only what is new), so an
API client continues a conversation by id after an app restart, and start-up does not depend on
the size of the history. A conversation's *current path* is its latest turn at each index: a turn
at index ``i`` replaces the turn at ``i`` and drops any later ones (a retry or an edit of an
earlier message branches the conversation; the old replies can still be rated).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from loguru import logger

from feedback.errors import FeedbackError, SaveError, clip
from feedback.index import TurnIndex, TurnRef
from feedback.store import FeedbackStore
from schemas.records import (
    RATING_VALUES,
    ChatMessage,
    Deletion,
    Flag,
    Rating,
    Record,
    Source,
    Turn,
    is_valid_id,
    new_id,
)

MAX_COMMENT_CHARS = 10_000
MAX_REASONS = 32
"""The most reasons one flag may give (before duplicates are dropped)."""
_FRESH_IDS = 100_000
"""How many conversation ids made by this process are remembered while the index catches up."""


R = TypeVar("R", bound=Record)
GateStep = Callable[[Record], Record | None]
"""A step of the write gate (:meth:`FeedbackRecorder.write`): the record to write, changed or
not, or None to keep it out of the data dir."""


@dataclass
class _PendingReply:
    """A reply being generated: its conversation, and the ratings/flags clicked on it meanwhile."""

    conversation_id: str
    records: list[Record] = field(default_factory=list)


def history_messages(path: Iterable[TurnRef]) -> list[ChatMessage]:
    """The chat so far as messages: user, assistant, user, assistant, ..."""
    messages: list[ChatMessage] = []
    for ref in path:
        messages.append(ref.user)
        messages.append(ChatMessage(role="assistant", content=ref.response))
    return messages


class FeedbackRecorder:
    """Checks and writes every record and uploaded file; knows every conversation in the data dir.

    Args:
        store: where records go.
        flag_reasons: the reasons a flag may give (and the custom options a rating may carry).
        max_message_chars: the longest user message accepted, in characters.
        max_comment_chars: the longest comment accepted, in characters.
        gate: the write gate's steps (see :meth:`write`), run on every record before it is written.
        index: the conversation index; default: a :class:`~feedback.index.TurnIndex` in the
            store's data dir, caught up on a background thread from the first lookup that needs
            it, or at once with ``recorder.index.start_catch_up()`` (see :meth:`close`).
    """

    def __init__(
        self,
        store: FeedbackStore,
        *,
        flag_reasons: Sequence[str],
        max_message_chars: int = 100_000,
        max_comment_chars: int = MAX_COMMENT_CHARS,
        gate: Sequence[GateStep] = (),
        index: TurnIndex | None = None,
    ) -> None:
        self.store = store
        self.gate = tuple(gate)
        self._pending: dict[str, _PendingReply] = {}  # message_id -> a reply still streaming
        self.flag_reasons = tuple(flag_reasons)
        self.max_message_chars = max_message_chars
        self.max_comment_chars = max_comment_chars
        self._lock = threading.Lock()
        self._fresh: OrderedDict[str, None] = OrderedDict()  # ids made here while the index catches up
        self.index = index if index is not None else TurnIndex(store)

    def close(self) -> None:
        """Stop the index's catch-up and close the index file (the store is closed by its owner)."""
        self.index.close()

    # -- checks ----------------------------------------------------------------------------

    def conversation_id_or_new(self, value: str | None) -> str:
        """A well-formed client-chosen id as is; a new id when ``value`` is missing or empty.

        Raises:
            FeedbackError: when ``value`` is not 8-64 characters of ``[A-Za-z0-9_-]``.
        """
        if value is None or value == "":
            return self.new_conversation_id()
        if not isinstance(value, str):
            raise FeedbackError(f"conversation_id must be a string, not {type(value).__name__}")
        if not is_valid_id(value):
            raise FeedbackError(
                f"conversation_id {clip(value)!r} is malformed: use 8-64 characters of A-Z, a-z, 0-9, '_' or '-'"
            )
        with self._lock:
            fresh = value in self._fresh
        if self.index.is_deleted(value, wait=not fresh):
            raise FeedbackError(f"conversation {value} was deleted: start a new conversation")
        return value

    def new_conversation_id(self) -> str:
        """A fresh conversation id. Its path is known to be empty, so looking it up never waits for
        the index's catch-up (see :meth:`path`)."""
        value = new_id()
        if not self.index.ready:
            with self._lock:
                self._fresh[value] = None
                if len(self._fresh) > _FRESH_IDS:
                    self._fresh.popitem(last=False)
        return value

    def check_message(self, text: object) -> str:
        """The user message text, if it is a string within ``max_message_chars``.

        Raises:
            FeedbackError: otherwise.
        """
        if not isinstance(text, str):
            raise FeedbackError(f"the message text must be a string, not {type(text).__name__}")
        if len(text) > self.max_message_chars:
            raise FeedbackError(
                f"the message is {len(text):,} characters long; the limit is {self.max_message_chars:,}"
            )
        return text

    def check_reply(self, conversation_id: str | None, message_id: str | None) -> tuple[str, str]:
        """``(conversation_id, message_id)`` when the reply belongs to that conversation.

        Raises:
            FeedbackError: for a malformed or missing id, or a reply of another (or no) conversation.
        """
        if conversation_id is None or conversation_id == "":
            raise FeedbackError("conversation_id is required")
        self.conversation_id_or_new(conversation_id)
        if not isinstance(message_id, str):
            raise FeedbackError(f"message_id must be a string, not {type(message_id).__name__}")
        if not is_valid_id(message_id):
            raise FeedbackError(f"message_id {clip(message_id)!r} is missing or malformed")
        if self.owner(message_id) != conversation_id:
            raise FeedbackError(f"message {message_id} is not a reply in conversation {conversation_id}")
        return conversation_id, message_id

    def _check_comment(self, comment: str | None) -> str | None:
        if comment is None or comment == "":
            return None
        if not isinstance(comment, str):
            raise FeedbackError(f"comment must be a string, not {type(comment).__name__}")
        if len(comment) > self.max_comment_chars:
            raise FeedbackError(
                f"the comment is {len(comment):,} characters long; the limit is {self.max_comment_chars:,}"
            )
        return comment

    def _check_option(self, option: str | None) -> str | None:
        if option is None or option == "":
            return None
        if not isinstance(option, str):
            raise FeedbackError(f"option must be a string, not {type(option).__name__}")
        if option not in self.flag_reasons:
            raise FeedbackError(f"option {clip(option)!r} is not one of {list(self.flag_reasons)}")
        return option

    # -- reads -----------------------------------------------------------------------------

    def path(self, conversation_id: str) -> list[TurnRef]:
        """The current path of a conversation: one :class:`TurnRef` per answered turn.

        While the index catches up at start, this waits for it, except for a conversation made
        by :meth:`new_conversation_id` (no shard can hold turns of it that the index has not seen).
        """
        with self._lock:
            fresh = conversation_id in self._fresh
        return self.index.path(conversation_id, wait=not fresh)

    def owner(self, message_id: object) -> str | None:
        """The conversation of a reply (logged, or still being generated), or None for an unknown one.

        An id the index does not know yet waits for its catch-up at start (see :meth:`path`).
        """
        if not is_valid_id(message_id):
            return None
        with self._lock:  # first the replies being generated: record_turn indexes a reply, then un-pends it
            pending = self._pending.get(message_id)  # type: ignore[arg-type]
        if pending is not None:
            return self.index.owner(message_id, wait=False) or pending.conversation_id  # type: ignore[arg-type]
        return self.index.owner(message_id)  # type: ignore[arg-type]

    def turn_ref(self, conversation_id: str, message_id: str) -> TurnRef | None:
        """The turn of ``message_id`` if it is on the conversation's current path."""
        return next((ref for ref in self.path(conversation_id) if ref.message_id == message_id), None)

    # -- writes ----------------------------------------------------------------------------

    def write(self, record: R) -> R | None:
        """The write gate: every record of every kind reaches the data dir through here.

        Each of :attr:`gate` runs in order and may return the record changed (e.g. redacted) or
        None to keep it out (e.g. no consent); then the record is appended to the store, and a
        turn is added to the conversation index. A record of a deleted conversation (a reply that
        was still streaming when it was deleted) is kept out too.

        Returns:
            The record as written, or None when a gate step kept it out.
        Raises:
            SaveError: when the store cannot write it (disk full, read-only); nothing partial is kept.
        """
        if not isinstance(record, Deletion) and self.index.is_deleted(record.conversation_id, wait=False):
            logger.bind(conversation_id=record.conversation_id).info(
                "{} record of a deleted conversation not written", record.kind
            )
            return None
        for step in self.gate:
            changed = step(record)
            if changed is None:
                logger.bind(conversation_id=record.conversation_id).debug(
                    "{} record kept out by the write gate", record.kind
                )
                return None
            record = changed
        try:
            span = self.store.append_span(record)
        except OSError as error:
            logger.bind(conversation_id=record.conversation_id).error(
                "could not write a {} record to {}: {}", record.kind, self.store.root, error.strerror or error
            )
            raise SaveError() from error
        if isinstance(record, Turn):
            self.index.add(record, span)
        return record

    def store_upload(self, path: Path) -> str:
        """Copy an uploaded file into the data dir (once per content); returns its path there.

        ``path`` must already be checked to be an upload (:func:`feedback.web.uploads.uploaded_file`).
        Raises:
            SaveError: when the copy cannot be written (no partial file is left behind).
        """
        try:
            return self.store.store_file(path)
        except OSError as error:
            logger.error("could not store an uploaded file in {}: {}", self.store.root, error.strerror or error)
            raise SaveError() from error

    def begin_reply(self, conversation_id: str, message_id: str) -> None:
        """Announce a reply that is being generated: until its turn is recorded, ratings and flags
        of ``message_id`` are accepted and kept, then written right after the turn (a user may
        click while the reply streams)."""
        with self._lock:
            self._pending[message_id] = _PendingReply(conversation_id)

    def abandon_reply(self, message_id: str) -> None:
        """The reply announced with :meth:`begin_reply` failed: its turn and the clicks kept for it
        are not written (a warning says how many clicks were dropped)."""
        with self._lock:
            pending = self._pending.pop(message_id, None)
        if pending is not None and pending.records:
            logger.bind(conversation_id=pending.conversation_id).warning(
                "{} rating(s)/flag(s) on reply {} not recorded: the reply failed", len(pending.records), message_id
            )

    def _write_or_defer(self, record: R) -> R:
        """Write ``record``, or keep it until its reply's turn is recorded (see :meth:`begin_reply`)."""
        with self._lock:
            pending = self._pending.get(record.message_id)  # type: ignore[attr-defined]
            if pending is not None and self.index.owner(record.message_id, wait=False) is None:  # type: ignore[attr-defined]
                pending.records.append(record)
                return record
        return self.write(record) or record

    def record_turn(self, turn: Turn) -> Turn:
        """Write a turn and add it to its conversation (the index row is written in the same lock
        as the shard line, see :meth:`write`). Returns ``turn``.

        Raises:
            SaveError: when the store cannot write it (the conversation is left as it was).
        """
        with self._lock:
            try:
                written = self.write(turn)
            except SaveError:
                self._pending.pop(turn.message_id, None)  # the reply is lost, and so are its clicks
                raise
            if written is None and not self.index.is_deleted(turn.conversation_id, wait=False):
                self.index.add(turn, None)  # the gate kept it out: the conversation goes on in this process only
            turn = written or turn
            pending = self._pending.pop(turn.message_id, None)
        for record in pending.records if pending else ():  # clicks made while the reply streamed
            self.write(record)
        logger.bind(conversation_id=turn.conversation_id).debug(
            "turn {} #{} ({} chars, {} ms)",
            turn.message_id,
            turn.turn_index,
            len(turn.response),
            "-" if turn.latency_ms is None else round(turn.latency_ms),
        )
        return turn

    def rate(
        self,
        conversation_id: str | None,
        message_id: str | None,
        rating: str | None,
        *,
        option: str | None = None,
        comment: str | None = None,
        source: Source = "api",
    ) -> Rating:
        """Record a like, a dislike, or an undo (``rating`` None or "") of a reply.

        Raises:
            FeedbackError: for a bad id, a reply not in the conversation, a rating not in
                like/dislike/empty, or an option not among the flag reasons. Nothing is written.
        """
        if rating is not None and not isinstance(rating, str):
            raise FeedbackError(f"rating must be 'like', 'dislike' or '' (undo), not {type(rating).__name__}")
        if rating == "":
            rating = None
        if rating is not None and rating not in RATING_VALUES:
            raise FeedbackError(f"rating {clip(rating)!r} is not 'like', 'dislike' or empty (undo)")
        conversation_id, message_id = self.check_reply(conversation_id, message_id)
        record = Rating(
            conversation_id=conversation_id,
            message_id=message_id,
            rating=rating,
            option=self._check_option(option),
            comment=self._check_comment(comment),
            source=source,
        )
        record = self._write_or_defer(record)
        logger.bind(conversation_id=conversation_id).info("rating {} on {}", rating or "undo", message_id)
        return record

    def record_click(
        self,
        conversation_id: str | None,
        message_id: str | None,
        choice: str,
        *,
        comment: str | None = None,
        source: Source = "ui",
    ) -> Rating | Flag:
        """What one click on a reply records: ``"like"`` or ``"dislike"`` (a rating), ``""`` (an
        undo) or one of the flag reasons (a flag).

        Raises:
            FeedbackError: as :meth:`rate` and :meth:`flag` do. Nothing is written.
        """
        if choice in ("", *RATING_VALUES):
            return self.rate(conversation_id, message_id, choice or None, comment=comment, source=source)
        return self.flag(conversation_id, message_id, [choice], comment=comment, source=source)

    def flag(
        self,
        conversation_id: str | None,
        message_id: str | None,
        reasons: Sequence[str] | str | None,
        *,
        comment: str | None = None,
        source: Source = "api",
        any_reason: bool = False,
    ) -> Flag:
        """Record a flag of a reply with one or more of the configured reasons.

        ``any_reason=True`` accepts reasons outside the configured ones (``gr.Interface`` flag
        options are the app author's, not the user's).

        Raises:
            FeedbackError: for a bad id, a reply not in the conversation, no reasons, or a reason
                not among the configured ones. Nothing is written.
        """
        if isinstance(reasons, str):
            reasons = [reasons]
        if reasons is not None and not isinstance(reasons, list | tuple):
            raise FeedbackError(f"reasons must be a list of strings, not {type(reasons).__name__}")
        reasons = list(reasons or [])
        if not reasons:
            raise FeedbackError(f"give at least one reason, from {list(self.flag_reasons)}")
        if len(reasons) > MAX_REASONS or not all(isinstance(r, str) and 0 < len(r) <= 200 for r in reasons):
            raise FeedbackError(
                f"reasons must be a list of at most {MAX_REASONS} strings from {list(self.flag_reasons)}"
            )
        reasons = list(dict.fromkeys(reasons))
        unknown = [] if any_reason else [r for r in reasons if r not in self.flag_reasons]
        if unknown:
            raise FeedbackError(f"reasons {unknown[:5]} are not among {list(self.flag_reasons)}")
        conversation_id, message_id = self.check_reply(conversation_id, message_id)
        record = Flag(
            conversation_id=conversation_id,
            message_id=message_id,
            reasons=tuple(reasons),
            comment=self._check_comment(comment),
            source=source,
        )
        record = self._write_or_defer(record)
        logger.bind(conversation_id=conversation_id).info("flag {} on {}", list(reasons), message_id)
        return record
