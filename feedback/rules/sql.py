"""The rules of :mod:`feedback.rules` as DuckDB SQL: what the review queue and the stats run on millions
of records without reading them into Python objects.

The queries read five tables (or views), one per record kind, with the columns of :data:`SQL_COLUMNS`
(``timestamp`` a UTC ``TIMESTAMP``) and two more that give the *file order* the rules break ties with:
``_file`` (the shard's path; files sort by it) and ``_line`` (the record's position in its file); the
``turns`` table also has the locator of each turn (``_pos``, ``_len``: where its record is read back),
which the ``queue`` view passes on. Any other column is ignored. :func:`create_rule_views` adds, over those
tables, one view per rule:

``deleted``
    the deleted conversations: every ``conversation_id`` a deletion record names. Every view below
    reads the turns, ratings, flags and reviews of the other conversations only (a record written
    after the deletion record too), as :func:`feedback.rules.judge` drops them before any rule runs.
``replies``
    one row per reply key (``conversation_id``, ``message_id``): its turn, the first record of the key
    in file order (a copy of a turn is a duplicate).
``latest_ratings``
    per reply, the rating record that counts: the latest by ``timestamp``, then file order; a reply
    whose latest record is an undo (``rating`` null) has none. Invalid records (no ids, no time, a
    value other than like/dislike/null) are ignored.
``flag_events``
    the flags that count: valid (ids, time, at least one reason), an identical copy of an earlier
    flag (same reply, time, reasons and comment) left out.
``flag_reasons``
    per reply and reason: how many flags name it (a reason named twice in one flag counts once), and
    where it was first named (``first_seen``, for the most-frequent-first order of ``Counter``).
``flag_summary``
    per flagged reply: ``flag_count``, ``first_flagged_at``, ``last_flagged_at``.
``latest_reviews``
    per reply, its latest valid review (by ``timestamp``, then file order).
``rated_replies``
    every reply with its turn's fields and its latest rating (:func:`rated_replies_sql`).
``queue``
    every flagged reply that has a turn, with its latest rating, latest decision and ``status``
    (``open`` until a reviewer decides).

The exports (``feedback.export.engine``) and the review index run these; the Arrow form
(:mod:`feedback.rules.tables`) judges records given as objects. The tests run both on the same records and
require the same answers (``tests/test_rules_sql.py``).

>>> con = duckdb.connect()
>>> create_rule_views(con)   # after creating or registering turns, ratings, flags, reviews
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import pyarrow as pa

from schemas.records import DECISIONS, RATING_VALUES

if TYPE_CHECKING:
    import duckdb

    from schemas.records import Record

ORDER_COLUMNS = ("_file", "_line")
"""The file order of the records: the shard's path (files sort by it), the record's position in it."""
SQL_COLUMNS: dict[str, tuple[str, ...]] = {
    "turns": ("conversation_id", "message_id", "timestamp", "model", "turn_index"),
    "ratings": ("conversation_id", "message_id", "timestamp", "rating", "option", "comment"),
    "flags": ("conversation_id", "message_id", "timestamp", "reasons", "comment"),
    "reviews": ("conversation_id", "message_id", "timestamp", "decision", "corrected_reply"),
    "deletions": ("conversation_id", "timestamp"),
}
"""The columns each kind's table needs for the rules (beside :data:`ORDER_COLUMNS`)."""
KINDS = tuple(SQL_COLUMNS)
OPEN = "open"
"""The status of a flagged reply no reviewer decided on yet."""

_KEY = "conversation_id, message_id"
_HAS_KEY = "conversation_id IS NOT NULL AND message_id IS NOT NULL AND timestamp IS NOT NULL"


def _quoted(values: Iterable[str]) -> str:
    return ", ".join("'" + value.replace("'", "''") + "'" for value in values)


def _live(kind: str) -> str:
    """The records of table ``kind`` but those of deleted conversations (a subquery; needs the ``deleted`` view)."""
    return f"(SELECT * FROM {kind} ANTI JOIN deleted USING (conversation_id))"


def rating_events_sql(ratings: str) -> str:
    """The valid rating records of ``ratings`` (a table or a subquery: ids, time, a value like/dislike/null) with
    ``copy`` (an identical copy of the record before it of the same reply: same time and values; it counts once)
    and ``last`` (the record that counts for its reply: the latest by ``timestamp``, then file order)."""
    return f"""
        SELECT {_KEY}, timestamp, rating, option, comment, _file, _line,
               (timestamp, rating, option, comment) IS NOT DISTINCT FROM
                   lag((timestamp, rating, option, comment)) OVER w AS copy,
               lead(true) OVER w IS NULL AS last
        FROM {ratings}
        WHERE {_HAS_KEY} AND (rating IS NULL OR rating IN ({_quoted(RATING_VALUES)}))
        WINDOW w AS (PARTITION BY {_KEY} ORDER BY timestamp, _file, _line)"""


def latest_of_events(events: str) -> str:
    """Per reply, the rating that counts, from :func:`rating_events_sql` rows (``events``): its ``last`` record,
    none when that is an undo (``rating`` null)."""
    return f"""
        SELECT {_KEY}, timestamp, rating, option, comment, _file, _line FROM {events}
        WHERE last AND rating IS NOT NULL"""


def _latest_ratings(ratings: str) -> str:
    """The latest valid rating record of each reply of ``ratings`` (a table or a subquery), undone ones out."""
    return latest_of_events(f"({rating_events_sql(ratings)})")


def _first_turns(turns: str) -> str:
    """The first record of each reply key of ``turns`` in file order (its turn; a later copy is a duplicate)."""
    return f"""
        SELECT {_KEY}, timestamp, model, turn_index, _file, _line, _pos, _len FROM {turns}
        WHERE conversation_id IS NOT NULL AND message_id IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY {_KEY} ORDER BY _file, _line) = 1"""


def rated_replies_sql(turns: str = "turns", ratings: str = "ratings") -> str:
    """Every reply (a key with a turn) with its turn's fields and its latest rating (``rating``,
    ``rated_at``; null when unrated or undone), from ``turns`` and ``ratings`` (tables or subqueries).

    Deleted conversations are *not* left out here (it reads no deletion record): a review index keeps
    this as a table, recomputed only for the reply keys its new turns and ratings name
    (``feedback.review.index``), and the ``rated_replies`` view of :func:`create_rule_views` leaves the
    deleted conversations out of it (a reply key holds its conversation id: dropping a conversation's
    rows before or after the rules is the same)."""
    return f"""
        SELECT t.conversation_id, t.message_id, t.timestamp, t.model, t.turn_index, t._file, t._line, t._pos,
               t._len, r.rating, r.timestamp AS rated_at
        FROM ({_first_turns(turns)}) t LEFT JOIN ({_latest_ratings(ratings)}) r USING ({_KEY})"""


RULE_VIEWS: dict[str, str] = {
    "deleted": """
        SELECT DISTINCT conversation_id FROM deletions WHERE conversation_id IS NOT NULL""",
    "replies": f"""
        SELECT {_KEY}, timestamp, model, turn_index, _file, _line FROM {_live("turns")}
        WHERE conversation_id IS NOT NULL AND message_id IS NOT NULL
        QUALIFY row_number() OVER (PARTITION BY {_KEY} ORDER BY _file, _line) = 1""",
    "latest_ratings": _latest_ratings(_live("ratings")),
    "flag_events": f"""
        SELECT {_KEY}, timestamp, reasons, comment, _file, _line FROM {_live("flags")}
        WHERE {_HAS_KEY} AND coalesce(len(reasons), 0) > 0
        QUALIFY row_number() OVER (PARTITION BY {_KEY}, timestamp, reasons, comment ORDER BY _file, _line) = 1""",
    "flag_reasons": f"""
        SELECT {_KEY}, reason, count(*) AS n, min((timestamp, _file, _line, pos)) AS first_seen
        FROM (SELECT {_KEY}, timestamp, _file, _line, reason, min(pos) AS pos
              FROM (SELECT {_KEY}, timestamp, _file, _line, unnest(reasons) AS reason,
                           generate_subscripts(reasons, 1) AS pos FROM flag_events)
              WHERE reason IS NOT NULL GROUP BY ALL)
        GROUP BY ALL""",
    "flag_summary": f"""
        SELECT {_KEY}, count(*) AS flag_count, min(timestamp) AS first_flagged_at,
               max(timestamp) AS last_flagged_at
        FROM flag_events GROUP BY ALL""",
    "latest_reviews": f"""
        SELECT {_KEY}, timestamp, decision, corrected_reply, _file, _line FROM {_live("reviews")}
        WHERE {_HAS_KEY} AND decision IN ({_quoted(DECISIONS)})
        QUALIFY row_number() OVER (PARTITION BY {_KEY} ORDER BY timestamp DESC, _file DESC, _line DESC) = 1""",
    "rated_replies": f"SELECT * FROM ({rated_replies_sql()}) ANTI JOIN deleted USING (conversation_id)",
    "queue": f"""
        SELECT {_KEY}, t.model, t.turn_index, t._file, t._line, t._pos, t._len, s.flag_count, s.first_flagged_at,
               s.last_flagged_at, t.rating, v.decision, coalesce(v.decision, '{OPEN}') AS status
        FROM flag_summary s JOIN rated_replies t USING ({_KEY})
        LEFT JOIN latest_reviews v USING ({_KEY})""",
}
"""The rules, one view each (see the module docstring); later views read earlier ones."""


def create_rule_views(con: duckdb.DuckDBPyConnection, *, rated_replies: str | None = None) -> None:
    """Create (or replace) the temporary views of :data:`RULE_VIEWS` on ``con``, over its ``turns``,
    ``ratings``, ``flags``, ``reviews`` and ``deletions`` tables or views; ``rated_replies``: a table
    holding :func:`rated_replies_sql` already (kept up to date by its owner), read instead of computing
    it (its deleted conversations left out all the same)."""
    for name, sql in RULE_VIEWS.items():
        if name == "rated_replies" and rated_replies is not None:
            sql = f"SELECT * FROM {rated_replies} ANTI JOIN deleted USING (conversation_id)"
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")


def queue_page_sql(where: Sequence[str] = ()) -> str:
    """A page of the queue, newest flag first (equal times: turn order), with ``total`` (rows matching
    ``where``, before the page is cut) on each row; parameters ``limit``, ``offset`` come last.

    ``where`` are SQL conditions on the ``queue`` view's columns (see :func:`queue_conditions`).
    """
    condition = " AND ".join(f"({c})" for c in where) or "TRUE"
    return (
        f"SELECT *, count(*) OVER () AS total FROM queue WHERE {condition} "
        "ORDER BY last_flagged_at DESC, _file, _line LIMIT ? OFFSET ?"
    )


def queue_conditions(
    *,
    reason: str | None = None,
    model: str | None = None,
    since: object = None,
    until: object = None,
    status: str | None = None,
) -> tuple[list[str], list[object]]:
    """SQL conditions on the ``queue`` view and their parameters for a filter: ``None`` matches
    everything; ``since``/``until`` are inclusive dates (UTC) of the last flag."""
    where: list[str] = []
    params: list[object] = []
    if reason is not None:
        where.append(
            "EXISTS (SELECT 1 FROM flag_reasons f WHERE f.conversation_id = queue.conversation_id "
            "AND f.message_id = queue.message_id AND f.reason = ?)"
        )
        params.append(reason)
    for condition, value in (
        ("model = ?", model),
        ("CAST(last_flagged_at AS DATE) >= ?", since),
        ("CAST(last_flagged_at AS DATE) <= ?", until),
        ("status = ?", status),
    ):
        if value is not None:
            where.append(condition)
            params.append(value)
    return where, params


STATS_SQL: dict[str, str] = {
    "ratings_per_day": """
        SELECT strftime(CAST(rated_at AS DATE), '%Y-%m-%d') AS day, rating, count(*) AS count
        FROM rated_replies WHERE rating IS NOT NULL GROUP BY ALL ORDER BY day, rating""",
    "per_model": """
        SELECT model, count(*) AS replies, count(*) FILTER (rating = 'like') AS likes,
               count(*) FILTER (rating = 'dislike') AS dislikes,
               CASE WHEN count(rating) > 0 THEN count(*) FILTER (rating = 'like') / count(rating)
                    ELSE 'NaN'::DOUBLE END AS like_rate
        FROM rated_replies GROUP BY ALL ORDER BY model""",
    "flags_per_reason": f"""
        SELECT reason, sum(n)::BIGINT AS count FROM flag_reasons SEMI JOIN rated_replies USING ({_KEY})
        GROUP BY ALL ORDER BY count DESC, min(first_seen), reason""",
    "conversation_lengths": """
        SELECT turns, count(*) AS conversations
        FROM (SELECT conversation_id, max(turn_index) + 1 AS turns FROM rated_replies GROUP BY ALL)
        GROUP BY ALL ORDER BY turns""",
    "open_queue": f"SELECT count(*) FROM queue WHERE status = '{OPEN}'",
}
"""The numbers of the Stats view (``feedback.review.stats.FeedbackStats``), one query each."""


def records_tables(records: Iterable[Record], file: str = "") -> dict[str, pa.Table]:
    """Records given as objects, as the five tables the views read (``_file`` = ``file``, ``_line`` =
    the position among the records of its kind), typed like the data dir's shards."""
    from feedback.features import record_schema

    given: dict[str, list] = {kind: [] for kind in KINDS}
    for record in records:
        if record.kind in given:
            given[record.kind].append(record)
    tables = {}
    for kind, columns in SQL_COLUMNS.items():
        schema = record_schema(kind, list(columns))
        rows = given[kind]
        arrays = [pa.array([getattr(r, name) for r in rows], schema.field(name).type) for name in columns]
        table = pa.Table.from_arrays(arrays, schema=schema)
        tables[kind] = with_order(table, file, range(len(rows)))
    return tables


def with_order(table: pa.Table, files: str | pa.Array, lines: Iterable[int]) -> pa.Table:
    """``table`` with naive UTC ``timestamp`` (what the views compare) and the order columns."""
    if "timestamp" in table.column_names:
        index = table.column_names.index("timestamp")
        table = table.set_column(index, "timestamp", table["timestamp"].cast(pa.timestamp("us")))
    if isinstance(files, str):
        files = pa.array([files] * table.num_rows, pa.string())
    return table.append_column("_file", files).append_column("_line", pa.array(list(lines), pa.int64()))
