"""Consent: a write-gate step that keeps a conversation out of the data dir unless its user agreed.

``FEEDBACK_CONSENT`` chooses the mode:

- ``notice`` (the default): the page shows a notice that the chat is recorded; a conversation is
  recorded unless its user declined (an API client sends ``consent=false``).
- ``required``: the page asks before the first message; a conversation is recorded only once its
  user agreed (``consent=true`` over the API). No answer means nothing is recorded.

Users who decline chat as usual: the gate keeps every record of their conversation (turns,
ratings, flags) out, and the page and the API do not store their uploads (see
:meth:`ConsentGate.records`). Nothing about the conversation reaches the data dir, so nothing
reaches the Hub.

The answers are kept per ``conversation_id``, in memory, for as long as the app runs (one small
entry per conversation, beside the recorder's own per-turn index). After a restart a conversation
whose turns are in the data dir was recorded with consent, so in ``required`` mode it goes on
being recorded (see ``has_history`` in :meth:`ConsentGate.answer`). A user who agreed and later
declines in the same conversation withdraws consent for what was already written:
:meth:`ConsentGate.withdrawn` names those conversations (with the records written for them in
this process) so that a deletion can find and remove them; the gate logs a warning naming each.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from loguru import logger

from feedback.errors import FeedbackError
from schemas.records import Record

if TYPE_CHECKING:
    from feedback.recorder import FeedbackRecorder

ConsentMode = Literal["notice", "required"]
CONSENT_MODES: tuple[ConsentMode, ...] = get_args(ConsentMode)
USER_KINDS = ("turns", "ratings", "flags")
"""Records made by the chat's user. In ``required`` mode these need an agreement; records made by
others about a conversation (a reviewer's decision) are kept out only when its user declined
(a reviewer can only review a flag that was recorded, so with consent)."""


def check_consent(value: object) -> bool | None:
    """An API client's ``consent`` argument: True (record), False (do not), None (left out).

    Raises:
        FeedbackError: for anything but true, false or null (``"no"`` is refused, not taken as yes).
    """
    if value is None or isinstance(value, bool):
        return value
    raise FeedbackError(
        f"consent must be true (record this conversation), false (do not record it) or left out, "
        f"not {type(value).__name__}"
    )


@dataclass
class _Answer:
    """What the gate knows of one conversation: its user's answer and the records written for it."""

    agreed: bool | None = None
    written: int = 0
    earlier: bool = False  # records from before this process (loaded from the data dir)


class ConsentGate:
    """The consent step of the write gate, keyed by ``conversation_id``.

    Args:
        mode: ``"notice"`` (record unless declined) or ``"required"`` (record only if agreed).
    Raises:
        ValueError: for another mode.
    """

    def __init__(self, mode: ConsentMode = "notice") -> None:
        if mode not in CONSENT_MODES:
            raise ValueError(f"consent mode must be one of {list(CONSENT_MODES)}, not {mode!r}")
        self.mode: ConsentMode = mode
        self._answers: dict[str, _Answer] = {}
        self._withdrawn: dict[str, int] = {}
        self._lock = threading.Lock()

    @classmethod
    def of(cls, recorder: FeedbackRecorder, mode: ConsentMode | None = None) -> ConsentGate:
        """The recorder's consent step. A recorder without one gets one (``mode``, default
        ``notice``), first in its gate, so that a user's "do not record" is honoured whoever
        built the recorder.

        Raises:
            ValueError: when ``mode`` differs from the mode of the recorder's consent step.
        """
        for step in recorder.gate:
            if isinstance(step, ConsentGate):
                if mode is not None and mode != step.mode:
                    raise ValueError(f"consent {mode!r} differs from the recorder's consent step ({step.mode!r})")
                return step
        gate = cls(mode or "notice")
        recorder.gate = (gate, *recorder.gate)
        return gate

    def answer(self, conversation_id: str, agreed: bool | None, *, has_history: bool = False) -> bool:
        """Note the user's answer for a conversation; returns whether its records will be written.

        ``agreed=None`` (no answer given now) keeps an earlier answer. ``has_history``: the
        conversation already has turns the recorder knows of; when the gate has never seen it,
        those come from the data dir, written before this process started (so with consent).
        """
        with self._lock:
            entry = self._answers.get(conversation_id)
            if entry is None and agreed is None and not has_history:
                return self._keeps(_Answer(), "turns")  # nothing to note (and no entry for an id sent at random)
            if entry is None:
                entry = self._answers[conversation_id] = _Answer(earlier=has_history)
                if has_history and agreed is None and self.mode == "required":
                    entry.agreed = True  # it was recorded before the restart, so its user agreed
            if agreed is not None:
                if agreed is False and entry.agreed is not False and (entry.written or entry.earlier):
                    self._withdrawn[conversation_id] = entry.written
                    logger.bind(conversation_id=conversation_id).warning(
                        "consent withdrawn: records of this conversation were written before ({} in this process); "
                        "nothing more is recorded, and what was written stays until the conversation is deleted",
                        entry.written,
                    )
                entry.agreed = agreed
            return self._keeps(entry, "turns")

    def records(self, conversation_id: str) -> bool:
        """Whether the chat user's records of this conversation are written (and its uploads stored)."""
        with self._lock:
            return self._keeps(self._answers.get(conversation_id) or _Answer(), "turns")

    def status(self, conversation_id: str) -> bool | None:
        """The user's answer: True (agreed), False (declined), None (none given)."""
        with self._lock:
            entry = self._answers.get(conversation_id)
            return entry.agreed if entry else None

    def withdrawn(self) -> dict[str, int]:
        """Conversations whose user declined after records of them were written, with how many
        were written in this process: what a deletion has to remove."""
        with self._lock:
            return dict(self._withdrawn)

    def __call__(self, record: Record) -> Record | None:
        """The gate step: ``record``, or None when its conversation may not be recorded."""
        with self._lock:
            entry = self._answers.get(record.conversation_id)
            if entry is None:
                entry = self._answers[record.conversation_id] = _Answer()
            if not self._keeps(entry, record.kind):
                return None
            entry.written += 1
            return record

    def _keeps(self, entry: _Answer, kind: str) -> bool:
        if entry.agreed is not None:
            return entry.agreed
        return self.mode == "notice" or kind not in USER_KINDS
