"""How the model is doing, from the records: ratings per day, like rate per model, flags per reason,
conversation lengths and the open review queue. Tables as pandas DataFrames (what Gradio's native
plot components take) and as text for the terminal."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from feedback.review.queue import OPEN, queue_of
from feedback.rules import Reply, judge_records
from feedback.rules.sql import STATS_SQL
from schemas.records import Record, Turn

if TYPE_CHECKING:
    import duckdb


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
    """Compute :class:`FeedbackStats` from records of any kind, in file order.

    The rules are the exports' (``feedback.rules``): only replies with a turn record count, each
    with its latest rating; a flag counts once however often it was synced; a deleted
    conversation (a deletion record names it) does not count at all.
    """
    judged = judge_records(records)
    replies = list(judged.replies.values())
    return FeedbackStats(
        ratings_per_day=_ratings_per_day(replies),
        per_model=_per_model(replies),
        flags_per_reason=_count_frame(sum((reply.reason_counts for reply in replies), Counter()), "reason"),
        conversation_lengths=_conversation_lengths(reply.turn for reply in replies),
        open_queue=sum(1 for item in queue_of(judged) if item.status == OPEN),
    )


def index_stats(con: duckdb.DuckDBPyConnection) -> FeedbackStats:
    """:class:`FeedbackStats` from a review index (``con``, rule views created): the rules as SQL
    (:data:`feedback.rules.sql.STATS_SQL`), the same numbers as :func:`compute_stats` on the same records."""
    frames = {name: con.execute(sql).df() for name, sql in STATS_SQL.items() if name != "open_queue"}
    frames["per_model"]["like_rate"] = frames["per_model"]["like_rate"].astype(float)
    for frame in frames.values():
        for column in frame.columns:
            if frame[column].dtype.kind in "iu":
                frame[column] = frame[column].astype("int64")
    return FeedbackStats(**frames, open_queue=int(con.execute(STATS_SQL["open_queue"]).fetchall()[0][0]))


def _ratings_per_day(replies: list[Reply]) -> pd.DataFrame:
    counts = Counter((r.latest_rating.timestamp.date().isoformat(), r.rating) for r in replies if r.latest_rating)
    rows = [{"day": day, "rating": rating, "count": n} for (day, rating), n in sorted(counts.items())]
    return pd.DataFrame(rows, columns=["day", "rating", "count"])


def _per_model(replies: list[Reply]) -> pd.DataFrame:
    likes = Counter(r.turn.model for r in replies if r.rating == "like")
    dislikes = Counter(r.turn.model for r in replies if r.rating == "dislike")
    rows = []
    for model, count in sorted(Counter(r.turn.model for r in replies).items()):
        total = likes[model] + dislikes[model]
        rate = likes[model] / total if total else float("nan")
        rows.append(
            {"model": model, "replies": count, "likes": likes[model], "dislikes": dislikes[model], "like_rate": rate}
        )
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
