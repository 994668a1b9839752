"""How the model is doing, from the records: ratings per day, like rate per model, flags per reason,
conversation lengths and the open review queue. Tables as pandas DataFrames (what Gradio's native
plot components take) and as text for the terminal."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from feedback.review.queue import build_queue
from schemas.records import Flag, Rating, Record, Turn


@dataclass
class FeedbackStats:
    """The numbers behind the Stats view.

    Attributes:
        ratings_per_day: ``day`` (date string), ``rating`` (like/dislike), ``count``; the latest
            rating of each reply, on the day it was given.
        per_model: ``model``, ``replies``, ``likes``, ``dislikes``, ``like_rate`` (likes over
            rated replies, 0-1; NaN when none is rated).
        flags_per_reason: ``reason``, ``count`` (a flag with two reasons counts for both).
        conversation_lengths: ``turns`` (answered turns in a conversation), ``conversations``.
        open_queue: flagged replies with no review decision yet.
    """

    ratings_per_day: pd.DataFrame
    per_model: pd.DataFrame
    flags_per_reason: pd.DataFrame
    conversation_lengths: pd.DataFrame
    open_queue: int

    def table(self) -> str:
        """All the numbers as plain text tables, for ``python -m feedback stats``."""
        parts = [
            ("Ratings per day (latest rating of each reply)", self.ratings_per_day),
            ("Per model", self.per_model),
            ("Flags per reason", self.flags_per_reason),
            ("Conversation length (answered turns)", self.conversation_lengths),
        ]
        text = []
        for title, frame in parts:
            body = frame.to_string(index=False, float_format=lambda v: f"{v:.3f}") if len(frame) else "(none)"
            text.append(f"{title}\n{body}")
        text.append(f"Open review queue: {self.open_queue}")
        return "\n\n".join(text)


def compute_stats(records: Iterable[Record]) -> FeedbackStats:
    """Compute :class:`FeedbackStats` from records of any kind, in any order."""
    records = sorted(records, key=lambda r: r.timestamp)
    turns = {r.message_id: r for r in records if isinstance(r, Turn)}
    latest: dict[str, Rating] = {}
    for record in records:
        if isinstance(record, Rating):
            latest[record.message_id] = record
    rated = [r for r in latest.values() if r.rating is not None]
    return FeedbackStats(
        ratings_per_day=_ratings_per_day(rated),
        per_model=_per_model(turns, rated),
        flags_per_reason=_count_frame(
            Counter(reason for r in records if isinstance(r, Flag) for reason in r.reasons), "reason"
        ),
        conversation_lengths=_conversation_lengths(turns.values()),
        open_queue=sum(1 for item in build_queue(records) if item.status == "open"),
    )


def _ratings_per_day(rated: list[Rating]) -> pd.DataFrame:
    counts = Counter((r.timestamp.date().isoformat(), r.rating) for r in rated)
    rows = [{"day": day, "rating": rating, "count": n} for (day, rating), n in sorted(counts.items())]
    return pd.DataFrame(rows, columns=["day", "rating", "count"])


def _per_model(turns: dict[str, Turn], rated: list[Rating]) -> pd.DataFrame:
    replies = Counter(turn.model for turn in turns.values())
    likes = Counter(turns[r.message_id].model for r in rated if r.rating == "like" and r.message_id in turns)
    dislikes = Counter(turns[r.message_id].model for r in rated if r.rating == "dislike" and r.message_id in turns)
    rows = []
    for model in sorted(replies):
        total = likes[model] + dislikes[model]
        rate = likes[model] / total if total else float("nan")
        rows.append({"model": model, "replies": replies[model], "likes": likes[model],
                     "dislikes": dislikes[model], "like_rate": rate})
    return pd.DataFrame(rows, columns=["model", "replies", "likes", "dislikes", "like_rate"])


def _conversation_lengths(turns: Iterable[Turn]) -> pd.DataFrame:
    lengths: dict[str, int] = {}
    for turn in turns:
        lengths[turn.conversation_id] = max(lengths.get(turn.conversation_id, 0), turn.turn_index + 1)
    counts = Counter(lengths.values())
    rows = [{"turns": n, "conversations": counts[n]} for n in sorted(counts)]
    return pd.DataFrame(rows, columns=["turns", "conversations"])


def _count_frame(counts: Counter[str], key: str) -> pd.DataFrame:
    rows = [{key: name, "count": n} for name, n in counts.most_common()]
    return pd.DataFrame(rows, columns=[key, "count"])
