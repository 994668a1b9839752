"""The review queue: every flagged reply with its conversation, ratings, flags and latest review.

Built from records (any source: the live data dir, or a dataset pulled from the Hub), newest flag
first, and filtered by reason, model, date and status. What counts (reply keys, the latest
rating, identical records once, the latest review) is ``feedback.rules``, as for the exports. The
status of a reply is ``open`` until a reviewer decides, then the latest decision (``confirmed``,
``dismissed``, ``needs-fix``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from feedback.rules import JudgedRecords, Reply, judge_records
from schemas.records import DECISIONS, Record

OPEN = "open"
"""The status of a flagged reply no reviewer decided on yet."""
STATUSES = (OPEN, *DECISIONS)


@dataclass(frozen=True)
class QueueItem(Reply):
    """One flagged reply and everything a reviewer needs to judge it: a :class:`feedback.rules.Reply`
    (``turn.messages`` is the conversation up to the reply; ``rating`` the latest rating, ``review``
    the latest review; ``flags``, ``ratings``, ``reviews`` every record, identical ones once) and its
    review status."""

    @classmethod
    def of(cls, reply: Reply) -> QueueItem:
        """The queue item of a flagged reply judged by ``feedback.rules``."""
        return cls(**vars(reply))

    @property
    def message_id(self) -> str:
        return self.turn.message_id

    @property
    def last_flagged(self) -> datetime:
        return self.flags[-1].timestamp

    @property
    def status(self) -> str:
        """``open``, or the latest review's decision."""
        return self.review.decision if self.review else OPEN

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
    status: str | None = OPEN

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

    Records of any kind, in file order (it breaks ties between equal times). Flags on replies
    with no turn record (e.g. a partial sync, or a message id given with another conversation's
    id) are left out.
    """
    return queue_of(judge_records(records))


def queue_of(judged: JudgedRecords) -> list[QueueItem]:
    """The queue (as :func:`build_queue`) of records already judged."""
    items = [QueueItem.of(reply) for reply in judged.replies.values() if reply.flags]
    return sorted(items, key=lambda item: item.last_flagged, reverse=True)


def filter_queue(items: Iterable[QueueItem], queue_filter: QueueFilter) -> list[QueueItem]:
    """The items ``queue_filter`` matches, order kept."""
    return [item for item in items if queue_filter.matches(item)]
