"""Recorded conversations for the ``replay`` responder (pure data logic, no UI).

The data is Anthropic hh-rlhf style JSONL (optionally gzip-compressed): one
``{"chosen": T, "rejected": T}`` object per line, where ``T`` is a transcript of
``"\\n\\nHuman: ..."`` / ``"\\n\\nAssistant: ..."`` turns.

Replay rules (see :class:`ReplayIndex`):

* The user turns and the earlier assistant replies of a conversation are those of
  ``chosen``; ``rejected`` only contributes its last reply.
* For the last user turn, the first answer is ``rejected``'s last reply and a
  regeneration gives ``chosen``'s last reply. Empty replies are still turns.
* A pair is *replayable* when the turns of ``chosen`` alternate user/assistant
  (starting with a user turn, ending with an assistant reply), ``rejected`` ends
  with an assistant reply, and no earlier replayable pair has the same
  conversation so far (up to a user turn) with a different next reply. The
  next reply of the last user turn is the (rejected, chosen) couple, which never
  equals the single reply of an intermediate turn.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

USER = "user"
ASSISTANT = "assistant"

Turn = tuple[str, str]
"""One transcript turn: ``(role, content)``, role ``"user"`` or ``"assistant"``."""

# A marker is "Human:" / "Assistant:" at the very start of the text (after
# optional whitespace) or right after a blank line ("\n\n"). Markers elsewhere
# (e.g. "... Human: ..." inside a reply) are part of the content.
_MARKER = re.compile(r"(?:\A\s*|\n\n)(Human|Assistant):")
_ROLE_OF_MARKER = {"Human": USER, "Assistant": ASSISTANT}

_ConversationKey = tuple[Turn, ...]


def parse_transcript(text: str) -> list[Turn]:
    """Split an hh-rlhf transcript into turns.

    Args:
        text: ``"\\n\\nHuman: q\\n\\nAssistant: a..."``. The first marker may also
            be preceded by nothing or by whitespace only.

    Returns:
        ``[(role, content), ...]`` with role ``"user"`` for ``Human:`` and
        ``"assistant"`` for ``Assistant:``; content is stripped of surrounding
        whitespace and may be ``""`` (an empty reply is still a turn).

    Raises:
        ValueError: ``text`` is not a string, has no marker, or has
            non-whitespace text before the first marker.
    """
    if not isinstance(text, str):
        raise ValueError(f"transcript must be a string, got {type(text).__name__}")
    markers = list(_MARKER.finditer(text))
    if not markers:
        raise ValueError(f"not a transcript: no 'Human:'/'Assistant:' turn marker in {_preview(text)}")
    if markers[0].start() != 0:
        raise ValueError(f"not a transcript: text before the first turn marker: {_preview(text)}")
    ends = [m.start() for m in markers[1:]] + [len(text)]
    return [(_ROLE_OF_MARKER[m.group(1)], text[m.end() : end].strip()) for m, end in zip(markers, ends, strict=True)]


def _preview(text: str, limit: int = 60) -> str:
    """Return ``repr`` of ``text`` cut to ``limit`` characters, for error messages."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


@dataclass(frozen=True)
class PreferencePair:
    """One line of a preference file.

    Attributes:
        index: 0-based position of the pair in the file (blank lines not counted).
        chosen: turns of the ``chosen`` transcript, as from :func:`parse_transcript`.
        rejected: turns of the ``rejected`` transcript.
    """

    index: int
    chosen: tuple[Turn, ...]
    rejected: tuple[Turn, ...]


def load_pairs(path: str | Path) -> list[PreferencePair]:
    """Read an hh-rlhf JSONL file (``.jsonl``, or gzip-compressed if the name ends in ``.gz``).

    Returns:
        The pairs in file order; blank lines are skipped.

    Raises:
        ValueError: a line is not JSON, not an object with string ``chosen`` and
            ``rejected``, or holds a text that is not a transcript; the message
            names the file and the 1-based line number.
        OSError: the file cannot be opened or decompressed.
    """
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    pairs: list[PreferencePair] = []
    with opener(path, "rt", encoding="utf-8") as lines:
        for line_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                pairs.append(_parse_pair_line(line, len(pairs)))
            except ValueError as exc:
                raise ValueError(f"{path}: line {line_number}: {exc}") from exc
    return pairs


def _parse_pair_line(line: str, index: int) -> PreferencePair:
    """Parse one JSONL line into a :class:`PreferencePair`; raises ValueError."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    turns = {}
    for name in ("chosen", "rejected"):
        if name not in record:
            raise ValueError(f"missing {name!r}")
        try:
            turns[name] = tuple(parse_transcript(record[name]))
        except ValueError as exc:
            raise ValueError(f"{name!r}: {exc}") from None
    return PreferencePair(index=index, chosen=turns["chosen"], rejected=turns["rejected"])


@dataclass(frozen=True)
class ReplayScript:
    """One replayable conversation.

    Attributes:
        pair_index: index of the source :class:`PreferencePair` in its file.
        user_turns: the user messages ``(u0, ..., un)``, n >= 0.
        replies: the recorded replies (from ``chosen``) to ``u0 .. u(n-1)``;
            ``len(replies) == len(user_turns) - 1``.
        rejected: ``rejected``'s last reply, the first answer to ``un``.
        chosen: ``chosen``'s last reply, the answer to ``un`` on regeneration.

    Raises:
        ValueError: on construction, if there is no user turn or the lengths
            do not match.
    """

    pair_index: int
    user_turns: tuple[str, ...]
    replies: tuple[str, ...]
    rejected: str
    chosen: str

    def __post_init__(self) -> None:
        if not self.user_turns:
            raise ValueError("a replay script needs at least one user turn")
        if len(self.replies) != len(self.user_turns) - 1:
            raise ValueError(
                f"{len(self.user_turns)} user turns need {len(self.user_turns) - 1} "
                f"earlier replies, got {len(self.replies)}"
            )

    def messages_until(self, turn: int) -> list[dict[str, str]]:
        """OpenAI-format conversation up to and including user turn ``turn`` (0-based).

        Returns:
            ``[{"role": "user", "content": u0}, {"role": "assistant", "content": r0},
            ..., {"role": "user", "content": u<turn>}]``.

        Raises:
            IndexError: ``turn`` is not in ``range(len(user_turns))``.
        """
        if not 0 <= turn < len(self.user_turns):
            raise IndexError(f"turn {turn} out of range for {len(self.user_turns)} user turns")
        messages = []
        for user, reply in zip(self.user_turns[:turn], self.replies, strict=False):  # replies may run past ``turn``
            messages += [{"role": USER, "content": user}, {"role": ASSISTANT, "content": reply}]
        return messages + [{"role": USER, "content": self.user_turns[turn]}]


class SkipReason(StrEnum):
    """Why a pair is not replayable (the first reason found, in this order)."""

    NOT_ALTERNATING = "chosen turns do not alternate user/assistant ending with a reply"
    REJECTED_NO_REPLY = "rejected does not end with an assistant reply"
    DIFFERENT_REPLY = "an earlier pair has a different reply at an intermediate turn"
    DIFFERENT_LAST_REPLIES = "an earlier pair has a different rejected/chosen couple at the last turn"
    EARLIER_ENDS_HERE = "an earlier pair ends at a turn where this pair continues"
    EARLIER_CONTINUES = "an earlier pair continues past this pair's last turn"


class NoRecordedReply(LookupError):
    """The conversation so far is not a recorded (replayable) conversation."""


@dataclass(frozen=True)
class _Recorded:
    """What the file says to answer after one conversation-so-far key.

    ``first`` is the answer, ``regenerated`` the answer on regeneration (equal
    to ``first`` for intermediate turns). ``pair_index`` is not compared.
    """

    first: str
    regenerated: str
    is_last_turn: bool
    pair_index: int = field(compare=False)


def _script_of(pair: PreferencePair) -> ReplayScript | SkipReason:
    """Build the script of ``pair``, or return why its structure is not replayable."""
    roles = [role for role, _ in pair.chosen]
    expected = [USER, ASSISTANT] * (len(roles) // 2)
    if not roles or roles != expected:
        return SkipReason.NOT_ALTERNATING
    if pair.rejected[-1][0] != ASSISTANT:
        return SkipReason.REJECTED_NO_REPLY
    contents = [content for _, content in pair.chosen]
    return ReplayScript(
        pair_index=pair.index,
        user_turns=tuple(contents[0::2]),
        replies=tuple(contents[1:-1:2]),
        rejected=pair.rejected[-1][1],
        chosen=contents[-1],
    )


def _entries_of(script: ReplayScript) -> list[tuple[_ConversationKey, _Recorded]]:
    """Return ``[(conversation-so-far key, recorded next reply)]``, one per user turn, in order."""
    entries = []
    prefix: _ConversationKey = ()
    last = len(script.user_turns) - 1
    for turn, user in enumerate(script.user_turns):
        prefix += ((USER, user),)
        if turn == last:
            recorded = _Recorded(script.rejected, script.chosen, True, script.pair_index)
        else:
            reply = script.replies[turn]
            recorded = _Recorded(reply, reply, False, script.pair_index)
        entries.append((prefix, recorded))
        if turn != last:
            prefix += ((ASSISTANT, script.replies[turn]),)
    return entries


def _conflict(earlier: _Recorded, new: _Recorded) -> SkipReason | None:
    """Return the reason ``new`` cannot join a key already holding ``earlier``, or None."""
    if earlier == new:
        return None
    if earlier.is_last_turn == new.is_last_turn:
        return SkipReason.DIFFERENT_LAST_REPLIES if new.is_last_turn else SkipReason.DIFFERENT_REPLY
    return SkipReason.EARLIER_ENDS_HERE if earlier.is_last_turn else SkipReason.EARLIER_CONTINUES


def _message_key(messages: Sequence[Mapping[str, Any]]) -> _ConversationKey:
    """Turn OpenAI-format messages into a lookup key; raises ValueError if malformed."""
    if not messages:
        raise ValueError("messages is empty: the conversation must end with a user message")
    key = []
    for position, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if role not in (USER, ASSISTANT) or not isinstance(content, str):
            raise ValueError(
                f"message {position}: expected role 'user'/'assistant' and string content, "
                f"got role={role!r}, content of type {type(content).__name__}"
            )
        key.append((role, content.strip()))
    if key[-1][0] != USER:
        raise ValueError("the conversation must end with a user message")
    return tuple(key)


class ReplayIndex:
    """The replayable conversations of a preference file and a reply lookup.

    Pairs are considered in file order; a pair is replayable when its structure
    is (see module docstring) and each of its conversation-so-far keys is either
    new or already holds an equal recorded reply. Only replayable pairs register
    keys.

    Attributes:
        scripts: the :class:`ReplayScript` of each replayable pair, in file order.
        skip_reasons: ``Counter`` of :class:`SkipReason` over skipped pairs.
        skipped_pairs: ``{pair_index: SkipReason}`` of the skipped pairs.
        n_pairs: number of pairs considered.
    """

    def __init__(self, pairs: Iterable[PreferencePair]) -> None:
        """Build the index from ``pairs`` (O(total turns squared per pair); ~0.1 s for 2,312 pairs)."""
        self.scripts: tuple[ReplayScript, ...] = ()
        self.skipped_pairs: dict[int, SkipReason] = {}
        self.n_pairs = 0
        self._replies: dict[_ConversationKey, _Recorded] = {}
        scripts = []
        for pair in pairs:
            self.n_pairs += 1
            script_or_reason = self._admit(pair)
            if isinstance(script_or_reason, SkipReason):
                self.skipped_pairs[pair.index] = script_or_reason
            else:
                scripts.append(script_or_reason)
        self.scripts = tuple(scripts)

    @classmethod
    def from_pairs(cls, pairs: Iterable[PreferencePair]) -> ReplayIndex:
        """Build the index from already loaded pairs (in file order)."""
        return cls(pairs)

    @classmethod
    def from_file(cls, path: str | Path) -> ReplayIndex:
        """Load ``path`` with :func:`load_pairs` and build the index (same errors)."""
        return cls(load_pairs(path))

    @property
    def skipped(self) -> int:
        """Number of pairs that are not replayable."""
        return len(self.skipped_pairs)

    @property
    def skip_reasons(self) -> Counter[SkipReason]:
        """How many pairs were skipped for each :class:`SkipReason`."""
        return Counter(self.skipped_pairs.values())

    def _admit(self, pair: PreferencePair) -> ReplayScript | SkipReason:
        """Register ``pair``'s keys if it is replayable; return its script or the skip reason."""
        script = _script_of(pair)
        if isinstance(script, SkipReason):
            return script
        entries = _entries_of(script)
        for key, recorded in entries:
            earlier = self._replies.get(key)
            reason = _conflict(earlier, recorded) if earlier is not None else None
            if reason is not None:
                return reason
        for key, recorded in entries:
            self._replies.setdefault(key, recorded)
        return script

    def reply_for(self, messages: Sequence[Mapping[str, Any]], regenerate: bool = False) -> str:
        """Return the recorded reply to the conversation so far.

        Args:
            messages: ``[{"role": "user"|"assistant", "content": str}, ...]`` ending
                with a user message; contents are compared stripped, extra keys ignored.
            regenerate: for the last user turn of a pair, return ``chosen``'s last
                reply instead of ``rejected``'s; intermediate turns have a single
                recorded reply, returned either way.

        Raises:
            ValueError: ``messages`` is empty, does not end with a user message,
                or has a message with another role or non-string content.
            NoRecordedReply: the conversation is not recorded in a replayable pair.
        """
        key = _message_key(messages)
        recorded = self._replies.get(key)
        if recorded is None:
            raise NoRecordedReply(
                f"no recorded reply for this {len(key)}-message conversation (last user message {_preview(key[-1][1])})"
            )
        return recorded.regenerated if regenerate else recorded.first

    def __len__(self) -> int:
        """Number of replayable conversations."""
        return len(self.scripts)
