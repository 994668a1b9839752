"""The review queue: every flagged reply with its conversation, ratings, flags and latest review.

Newest flag first, filtered by reason, model, date and status, a page at a time. What counts (reply
keys, the latest rating, identical records once, the latest review) is ``feedback.rules``, as for the
exports: :func:`queue_page` runs its SQL form (:mod:`feedback.rules.sql`) over a review index
(:mod:`feedback.review.index`) and reads back whole only the records of the page's replies;
:func:`build_queue` judges records given as objects with the Arrow engine (the reference the SQL is
tested against). The status of a reply is ``open`` until a reviewer decides, then the latest decision
(``confirmed``, ``dismissed``, ``needs-fix``). A conversation a deletion record names is in no page, from
the moment that record is in the source.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from loguru import logger

from feedback.review.index import registered
from feedback.rules import JudgedRecords, Reply, judge_records
from feedback.rules.sql import OPEN, queue_conditions, queue_page_sql
from schemas.records import DECISIONS, RATING_VALUES, Record

if TYPE_CHECKING:
    import duckdb

    from feedback.review.sources import RecordSource

_RATING_LIST = ", ".join(f"'{value}'" for value in RATING_VALUES)
"""The rating values as a SQL list (``'like', 'dislike'``)."""


STATUSES = (OPEN, *DECISIONS)
PAGE_SIZE = 50
"""Flagged replies per page of the queue."""


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

    def sql(self) -> tuple[list[str], list[object]]:
        """The filter as SQL conditions on the ``queue`` view and their parameters."""
        return queue_conditions(
            reason=self.reason, model=self.model, since=self.since, until=self.until, status=self.status
        )

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
    id) are left out, and so is every reply of a conversation a deletion record names.
    """
    return queue_of(judge_records(records))


def queue_of(judged: JudgedRecords) -> list[QueueItem]:
    """The queue (as :func:`build_queue`) of records already judged."""
    items = [QueueItem.of(reply) for reply in judged.replies.values() if reply.flags]
    return sorted(items, key=lambda item: item.last_flagged, reverse=True)


def filter_queue(items: Iterable[QueueItem], queue_filter: QueueFilter) -> list[QueueItem]:
    """The items ``queue_filter`` matches, order kept."""
    return [item for item in items if queue_filter.matches(item)]


@dataclass(frozen=True)
class QueuePage:
    """One page of the queue: its items, the number of flagged replies the filter matches, and where
    the page starts among them (0-based)."""

    items: list[QueueItem]
    total: int
    offset: int = 0


_KEY = "conversation_id, message_id"
_DETAILS = {
    "ratings": f"""
        SELECT n, _file, _pos, _len FROM (
            SELECT p.n, r.*, lag(r.timestamp) OVER w = r.timestamp
                AND lag(r.rating) OVER w IS NOT DISTINCT FROM r.rating
                AND lag(r.option) OVER w IS NOT DISTINCT FROM r.option
                AND lag(r.comment) OVER w IS NOT DISTINCT FROM r.comment AS copy
            FROM ratings r JOIN _page p USING ({_KEY})
            WHERE r.timestamp IS NOT NULL AND (r.rating IS NULL OR r.rating IN ({_RATING_LIST}))
            WINDOW w AS (PARTITION BY {_KEY} ORDER BY r.timestamp, r._file, r._line))
        WHERE copy IS NOT TRUE ORDER BY n, timestamp, _file, _line""",
    "flags": f"""
        SELECT p.n, f._file, f._pos, f._len FROM flag_events e JOIN _page p USING ({_KEY})
        JOIN flags f ON f._file = e._file AND f._line = e._line
        ORDER BY p.n, e.timestamp, e._file, e._line""",
    "reviews": f"""
        SELECT n, _file, _pos, _len FROM (
            SELECT p.n, r.*, lag(r.timestamp) OVER w = r.timestamp
                AND lag(r.decision) OVER w IS NOT DISTINCT FROM r.decision
                AND lag(r.corrected_reply) OVER w IS NOT DISTINCT FROM r.corrected_reply AS copy
            FROM reviews r JOIN _page p USING ({_KEY})
            WHERE r.timestamp IS NOT NULL AND r.decision IN ({", ".join(f"'{d}'" for d in DECISIONS)})
            WINDOW w AS (PARTITION BY {_KEY} ORDER BY r.timestamp, r._file, r._line))
        WHERE copy IS NOT TRUE ORDER BY n, timestamp, _file, _line""",
}
"""Per kind, the records of the page's replies as the rules count them (copies out, in time order)."""


def queue_page(
    con: duckdb.DuckDBPyConnection,
    source: RecordSource,
    queue_filter: QueueFilter = QueueFilter(),
    *,
    offset: int = 0,
    limit: int | None = PAGE_SIZE,
    message_id: str | None = None,
) -> QueuePage:
    """A page of the queue from a review index (``con``, rule views created), the records of its items
    read from ``source``. ``limit`` None: every item from ``offset``; ``message_id``: that reply only."""
    where, params = queue_filter.sql()
    if message_id is not None:
        where.append("message_id = ?")
        params.append(message_id)
    result = con.execute(queue_page_sql(where), [*params, limit if limit is not None else 2**62, offset])
    names = [column[0] for column in result.description]
    rows = [dict(zip(names, row, strict=True)) for row in result.fetchall()]
    if not rows:
        total = (
            0
            if offset == 0
            else con.execute(f"SELECT count(*) FROM queue WHERE {' AND '.join(where) or 'TRUE'}", params).fetchall()[0][
                0
            ]
        )
        return QueuePage([], total, offset)
    return QueuePage(_items(con, source, rows), rows[0]["total"], offset)


def _items(con: duckdb.DuckDBPyConnection, source: RecordSource, rows: list[dict[str, Any]]) -> list[QueueItem]:
    page = pa.table(
        {
            "n": list(range(len(rows))),
            **{c: [r[c] for r in rows] for c in ("conversation_id", "message_id", "_file", "_line")},
        }
    )
    with registered(con, "_page", page):
        return _assemble(con, source, rows)


def _assemble(con: duckdb.DuckDBPyConnection, source: RecordSource, rows: list[dict[str, Any]]) -> list[QueueItem]:
    records: dict[str, list[list[Record]]] = {}
    turns = source.fetch("turns", [(r["_file"], r["_pos"], r["_len"]) for r in rows])
    records["turns"] = [[turn] if turn is not None else [] for turn in turns]
    for kind, sql in _DETAILS.items():
        found = con.execute(sql).fetchall()
        fetched = source.fetch(kind, [(f, p, n) for _, f, p, n in found])
        grouped: list[list[Record]] = [[] for _ in rows]
        for (number, *_), record in zip(found, fetched, strict=True):
            if record is not None:
                grouped[number].append(record)
        records[kind] = grouped
    reasons: list[Counter[str]] = [Counter() for _ in rows]
    for number, reason, count in con.execute(
        f"SELECT p.n, f.reason, f.n FROM flag_reasons f JOIN _page p USING ({_KEY}) "
        "ORDER BY p.n, f.n DESC, f.first_seen"
    ).fetchall():
        reasons[number][reason] = count
    items = []
    for number, row in enumerate(rows):
        (turn, *_) = records["turns"][number] or [None]
        if turn is None:
            logger.warning("the turn of flagged reply {} cannot be read; left out of the page", row["message_id"])
            continue
        ratings, reviews = records["ratings"][number], records["reviews"][number]
        latest = ratings[-1] if ratings and ratings[-1].rating is not None else None
        items.append(
            QueueItem(
                key=f"{row['conversation_id']}\x1f{row['message_id']}",
                turn=turn,
                ratings=tuple(ratings),
                flags=tuple(records["flags"][number]),
                reviews=tuple(reviews),
                latest_rating=latest,
                review=reviews[-1] if reviews else None,
                reason_counts=reasons[number],
            )
        )
    return items


def queue_choices(con: duckdb.DuckDBPyConnection) -> tuple[list[str], list[str]]:
    """The reasons and the models of every flagged reply (for the filter menus), sorted."""
    reasons = [
        r
        for (r,) in con.execute(
            f"SELECT DISTINCT reason FROM flag_reasons SEMI JOIN queue USING ({_KEY}) ORDER BY reason"
        ).fetchall()
    ]
    models = [
        m for (m,) in con.execute("SELECT DISTINCT model FROM queue WHERE model IS NOT NULL ORDER BY model").fetchall()
    ]
    return reasons, models
