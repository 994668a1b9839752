"""The one factory of test records: a turn, rating, flag, review or deletion with every field a test does
not care about filled in. Tests give what they assert on (ids, texts, times) and nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

from schemas.records import RECORD_TYPES, ChatMessage, Deletion, Flag, Rating, Record, Review, Turn


def make_turn(
    conversation_id: str = "conversation-1",
    message_id: str | None = None,
    *,
    index: int = 0,
    text: str = "hi",
    response: str | None = None,
    model: str = "m",
    timestamp: datetime | str | None = None,
    history: tuple[str, ...] | list[str] = (),
    files: tuple[str, ...] = (),
    prompt: Sequence[tuple[str, str]] | Sequence[ChatMessage] | None = None,
    **fields: Any,
) -> Turn:
    """A turn whose prompt is ``history`` (earlier user messages, oldest first) then ``text`` (with
    ``files``), or ``prompt`` as given (``(role, text)`` pairs or messages; ``files`` go to the last),
    answered ``response`` (default ``"re: {text}"``); ``message_id`` and ``timestamp`` default to a new id
    and now. ``fields`` go to :class:`~schemas.records.Turn` as they are."""
    if prompt is not None:
        messages = [m if isinstance(m, ChatMessage) else ChatMessage(role=m[0], content=m[1]) for m in prompt]
        if files:
            messages[-1] = messages[-1].model_copy(update={"files": tuple(files)})
    else:
        messages = [ChatMessage(role="user", content=earlier) for earlier in history]
        messages.append(ChatMessage(role="user", content=text, files=tuple(files)))
    values: dict[str, Any] = {"latency_ms": 1.0, **fields}
    if message_id is not None:
        values["message_id"] = message_id
    if timestamp is not None:
        values["timestamp"] = timestamp
    return Turn(
        conversation_id=conversation_id,
        turn_index=index,
        messages=messages,
        response=f"re: {text}" if response is None else response,
        model=model,
        **values,
    )


def _at(timestamp: datetime | str | None, fields: dict[str, Any]) -> dict[str, Any]:
    return fields if timestamp is None else {**fields, "timestamp": timestamp}


def make_rating(
    conversation_id: str,
    message_id: str,
    rating: str | None = "like",
    *,
    timestamp: datetime | str | None = None,
    **fields: Any,
) -> Rating:
    """A rating (``None``: an undo) of a reply."""
    return Rating(conversation_id=conversation_id, message_id=message_id, rating=rating, **_at(timestamp, fields))


def make_flag(
    conversation_id: str, message_id: str, *reasons: str, timestamp: datetime | str | None = None, **fields: Any
) -> Flag:
    """A flag of a reply with ``reasons`` (default ``Harmful``)."""
    return Flag(
        conversation_id=conversation_id,
        message_id=message_id,
        reasons=reasons or ("Harmful",),
        **_at(timestamp, fields),
    )


def make_review(
    conversation_id: str,
    message_id: str,
    decision: str = "confirmed",
    *,
    reviewer: str = "ann",
    timestamp: datetime | str | None = None,
    **fields: Any,
) -> Review:
    """A reviewer's decision on a reply."""
    return Review(
        conversation_id=conversation_id,
        message_id=message_id,
        decision=decision,
        reviewer=reviewer,
        **_at(timestamp, fields),
    )


def make_deletion(
    conversation_id: str, requested_by: str = "user", *, timestamp: datetime | str | None = None, **fields: Any
) -> Deletion:
    """A deletion of a conversation."""
    return Deletion(conversation_id=conversation_id, requested_by=requested_by, **_at(timestamp, fields))


def write_day(data_dir: Path, day: date, shards: int, per_shard: int = 2, writer: str = "aaaaaaaaaaaa") -> list[Record]:
    """``shards`` JSONL shards per record kind started on ``day``, named as ``FeedbackStore`` names them,
    written straight to ``data_dir``: in each, ``per_shard`` turns (models m1/m2), a rating of each, a flag
    of the first (reasons and a comment) and, every fourth shard, a review of it. Returns the records."""
    from feedback.export.read import records_to_jsonl

    records: list[Record] = []
    for number in range(shards):
        stamp = f"{day:%Y%m%d}T{number // 3600 % 24:02d}{number // 60 % 60:02d}{number % 60:02d}000000Z"
        batch: dict[str, list[Record]] = {kind: [] for kind in RECORD_TYPES}
        for i in range(per_shard):
            n = f"{day:%m%d}{number:04d}{i}"
            when = f"{day.isoformat()}T{number // 3600 % 24:02d}:{number // 60 % 60:02d}:{number % 60:02d}.{i:06d}Z"
            turn = make_turn(
                f"conv-{n}",
                f"msg-{n}",
                text=f"question {n}",
                response=f"answer {n}",
                model="m1" if i % 2 else "m2",
                timestamp=when,
            )
            batch["turns"].append(turn)
            batch["ratings"].append(
                make_rating(turn.conversation_id, turn.message_id, "like" if number % 3 else "dislike", timestamp=when)
            )
            if i == 0:
                batch["flags"].append(
                    make_flag(
                        turn.conversation_id,
                        turn.message_id,
                        *["Inaccurate", "Harmful"][: 1 + number % 2],
                        comment=f"c{n}",
                        timestamp=when,
                    )
                )
            if i == 0 and number % 4 == 0:
                batch["reviews"].append(make_review(turn.conversation_id, turn.message_id, timestamp=when))
        for kind, group in batch.items():
            if group:
                folder = data_dir / kind
                folder.mkdir(parents=True, exist_ok=True)
                (folder / f"{stamp}-{writer}-{number:04d}.jsonl").write_bytes(records_to_jsonl(group))
                records.extend(group)
    return records
