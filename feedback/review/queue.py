"""The review queue: every flagged reply with its conversation, ratings, flags and latest review.

Built from records (any source: the live data dir, or a dataset pulled from the Hub), newest flag
first, and filtered by reason, model, date and status. The status of a reply is ``open`` until a
reviewer decides, then the latest decision (``confirmed``, ``dismissed``, ``needs-fix``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from schemas.records import Flag, Rating, Record, Review, Turn

STATUSES = ("open", "confirmed", "dismissed", "needs-fix")


@dataclass
class QueueItem:
    """One flagged reply and everything a reviewer needs to judge it.

    ``prompt`` is the conversation up to the reply (the turn's ``messages``), ``ratings`` every
    rating of the reply in time order (the last one counts), ``flags`` every flag.
    """

    turn: Turn
    flags: list[Flag] = field(default_factory=list)
    ratings: list[Rating] = field(default_factory=list)
    reviews: list[Review] = field(default_factory=list)

    @property
    def message_id(self) -> str:
        return self.turn.message_id

    @property
    def last_flagged(self) -> datetime:
        return max(f.timestamp for f in self.flags)

    @property
    def reason_counts(self) -> Counter[str]:
        return Counter(reason for f in self.flags for reason in f.reasons)

    @property
    def rating(self) -> str | None:
        """The latest rating (``like``, ``dislike``), None when unrated or undone."""
        return self.ratings[-1].rating if self.ratings else None

    @property
    def review(self) -> Review | None:
        return self.reviews[-1] if self.reviews else None

    @property
    def status(self) -> str:
        return self.review.decision if self.review else "open"

    def comments(self) -> list[str]:
        """Every comment left on the reply, with where it came from."""
        out = [f"flag ({', '.join(f.reasons)}): {f.comment}" for f in self.flags if f.comment]
        out += [f"rating ({r.rating or 'undo'}): {r.comment}" for r in self.ratings if r.comment]
        return out


@dataclass(frozen=True)
class QueueFilter:
    """What to show: ``None`` fields match everything; dates are inclusive (UTC, by last flag)."""

    reason: str | None = None
    model: str | None = None
    since: date | None = None
    until: date | None = None
    status: str | None = "open"

    def matches(self, item: QueueItem) -> bool:
        """True when ``item`` passes every set field."""
        day = item.last_flagged.date()
        return (
            (self.reason is None or self.reason in item.reason_counts)
            and (self.model is None or item.turn.model == self.model)
            and (self.since is None or day >= self.since)
            and (self.until is None or day <= self.until)
            and (self.status is None or item.status == self.status)
        )


def build_queue(records: Iterable[Record]) -> list[QueueItem]:
    """Every flagged reply whose turn is known, newest flag first.

    Records of any kind in any order; ratings, flags and reviews are attached to their reply in
    time order. Flags on replies with no turn record (e.g. a partial sync) are left out.
    """
    turns: dict[str, Turn] = {}
    by_message: dict[str, dict[str, list]] = {}
    for record in sorted(records, key=lambda r: r.timestamp):
        if isinstance(record, Turn):
            turns[record.message_id] = record
        elif isinstance(record, Flag | Rating | Review):
            by_message.setdefault(record.message_id, {"flags": [], "ratings": [], "reviews": []})[
                record.kind
            ].append(record)
    items = [
        QueueItem(turn=turns[mid], flags=attached["flags"], ratings=attached["ratings"], reviews=attached["reviews"])
        for mid, attached in by_message.items()
        if attached["flags"] and mid in turns
    ]
    return sorted(items, key=lambda item: item.last_flagged, reverse=True)


def filter_queue(items: Iterable[QueueItem], queue_filter: QueueFilter) -> list[QueueItem]:
    """The items ``queue_filter`` matches, order kept."""
    return [item for item in items if queue_filter.matches(item)]
