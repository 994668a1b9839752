"""The export engine: records to rows in DuckDB, with memory bounded and no per-record Python.

One export is one DuckDB database in a temporary folder (its tables spill to disk past
:data:`MEMORY_LIMIT`). The steps, each a SQL statement over the tables of the one before:

1. **Load.** Each record kind's shards become a table (``<kind>_data``), in log order (shards by
   name, lines in order: a table's ``rowid`` is a record's place in the log). A local shard is
   parsed by DuckDB's ``read_json`` (many shards per statement); a shard it refuses (a line that is
   not JSON or not an object, a value it cannot convert) or whose last line is torn (no newline: a
   crash mid-write) is parsed by ``feedback.export.read.parse_jsonl`` instead, which skips and
   counts the bad lines. A Hub repo's files are read through ``feedback.hub.remote``.
2. **Judge.** The rules of ``feedback.rules`` as SQL (``feedback.rules.sql``: latest rating, flags,
   latest review, deleted conversations) give one verdict row per reply that has any.
3. **Statuses.** Every turn gets the first reason (``STATUSES``) it is left out, or ``kept``.
4. **Candidates.** The first copy of each kept reply (and, for a format that takes them, each reply a
   reviewer corrected), with its prompt in TRL's conversational format.
5. **Rows.** One per candidate (and per correction), or one per preference pair; each serialized by
   DuckDB (``to_json``) and digested (MD5 of its format columns' JSON); identical rows are kept once,
   the first in log order, ``count`` the distinct conversations that gave them. A one-row-per-reply
   format's rows come from a scan of ``turns_data`` in log order, each turn's candidate facts given by
   lookup functions (:func:`reply_facts`), and only their digests are stored: the kept ones are
   serialized again as they are written, so that no row's text is stored or sorted. A pair's rows are
   few: they are stored with their lines and sorted.
6. **Out.** The kept rows, in order, to their split's file (or to memory), and the counts of
   ``stats.json`` (``feedback.export.stats``), each one aggregate query.

What the steps mean (the order, the split, the removal of identical rows, pairing) is documented
in ``feedback.export.rows``; the formats give their part as SQL
(``feedback.export.formats.spec``).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa
from tqdm.auto import tqdm

from feedback.export.read import ReadCounts, read_shard, shard_paths
from feedback.export.rows import SPLITS, in_test_split
from feedback.features import record_schema
from feedback.rules import DELETION_COLUMNS, FLAG_COLUMNS, RATING_COLUMNS, REVIEW_COLUMNS
from feedback.rules.sql import RULE_VIEWS, latest_of_events, rating_events_sql

if TYPE_CHECKING:
    from feedback.export.formats import ExportFormat
    from feedback.export.options import ExportOptions

MEMORY_LIMIT = "1GB"
"""DuckDB's memory limit during an export; what does not fit spills to the export's temporary folder."""
TURN_COLUMNS = ["conversation_id", "message_id", "timestamp", "model", "messages", "response"]
COLUMNS = {
    "deletions": DELETION_COLUMNS,
    "ratings": RATING_COLUMNS,
    "flags": FLAG_COLUMNS,
    "reviews": REVIEW_COLUMNS,
    "turns": TURN_COLUMNS,
}
"""The columns an export reads of each record kind, in the order they are loaded."""
WRITE_BATCH = 2048
"""Rows fetched from DuckDB at a time when writing a split's file (a row of a long chat: tens of KB)."""
READ_BATCH = 2048
"""Shards parsed by one ``read_json`` statement (at most)."""

STATUSES = (
    "kept",
    "deleted",  # its conversation was deleted (a deletion record names it): out of every format, whatever else holds
    "incomplete",  # a required field is missing or null
    "other_model",  # --model given and the reply is of another model
    "outside_dates",  # before --since or not before --until
    "not_flagged",  # flags: the reply was never flagged
    "flagged",  # sft/dpo/kto without --keep-flagged (a flag a reviewer dismissed does not count)
    "confirmed_flag",  # a reviewer confirmed the flag: out of sft, and of kto/dpo when liked, even with --keep-flagged
    "disliked",  # sft: the latest rating is a dislike
    "unrated",  # no rating, or the latest was undone (sft without --include-unrated, dpo, kto)
    "no_opposite_rating",  # dpo: no liked and disliked reply to the same prompt
)
"""Why a reply is left out, the first reason winning. Formats name theirs (``ExportFormat.left_out``)."""
STATUS = {name: code for code, name in enumerate(STATUSES)}
UNUSABLE = (STATUS["deleted"], STATUS["incomplete"], STATUS["other_model"], STATUS["outside_dates"])
"""Statuses of a turn that is no reply at all for an export: not even a reviewer's correction pairs with it."""

REPLY_COLUMNS = (
    "rating",
    "flagged",
    "dismissed",
    "confirmed",
    "kept_reasons_only",
    "mixed",
)
"""What a format's ``left_out`` conditions may name (SQL over one reply): ``rating`` (1 like, -1 dislike,
0 unrated), ``flagged`` (any flag), ``dismissed``/``confirmed`` (flagged, and the latest review says so),
``kept_reasons_only`` (flagged only for ``options.keep_flagged_reasons``), ``mixed`` (its conversation has
a liked and a disliked reply)."""


def status_case(left_out: dict[str, str]) -> str:
    """A SQL ``CASE`` giving each reply its status code: the earliest reason in :data:`STATUSES` whose
    condition in ``left_out`` (reason -> SQL condition) holds, else ``kept`` (0).

    Raises:
        ValueError: for a reason that is not in :data:`STATUSES`.
    """
    unknown = set(left_out) - set(STATUSES[1:])
    if unknown:
        raise ValueError(f"unknown reasons to leave a reply out: {sorted(unknown)}; expected some of {STATUSES[1:]}")
    whens = [f"WHEN coalesce({left_out[name]}, false) THEN {STATUS[name]}" for name in STATUSES[1:] if name in left_out]
    return f"CASE {' '.join(whens)} ELSE 0 END" if whens else "0"


def duckdb_type(kind: pa.DataType) -> str:
    """The DuckDB type of an Arrow type of the record schemas (strings, UTC timestamps, lists, structs).

    Raises:
        TypeError: for another type.
    """
    if pa.types.is_string(kind):
        return "VARCHAR"
    if pa.types.is_timestamp(kind):
        return "TIMESTAMPTZ" if kind.tz else "TIMESTAMP"
    if pa.types.is_integer(kind):
        return "BIGINT"
    if pa.types.is_list(kind):
        return f"{duckdb_type(kind.value_type)}[]"
    if pa.types.is_struct(kind):
        return "STRUCT(" + ", ".join(f'"{f.name}" {duckdb_type(f.type)}' for f in kind) + ")"
    raise TypeError(f"no DuckDB type for {kind}")


def quoted(values: Any) -> str:
    """SQL string literals, comma-separated."""
    return ", ".join("'" + str(value).replace("'", "''") + "'" for value in values)


def iso_time(column: str) -> str:
    """SQL: a UTC timestamp as ISO 8601 with ``Z``, as ``orjson`` writes a datetime (microseconds only when
    there are some)."""
    return (
        f"CASE WHEN {column} IS NULL THEN NULL WHEN epoch_us({column}) % 1000000 = 0 "
        f"THEN strftime({column}::TIMESTAMP, '%Y-%m-%dT%H:%M:%SZ') "
        f"ELSE strftime({column}::TIMESTAMP, '%Y-%m-%dT%H:%M:%S.%fZ') END"
    )


def assistant(response: str) -> str:
    """SQL: a response as a completion, TRL's list of one assistant message."""
    return f"[{{'role': 'assistant', 'content': {response}}}]"


TRL_PROMPT = """list_transform(messages, lambda m: {'role': m.role, 'content': CASE
    WHEN coalesce(len(m.files), 0) = 0 THEN m.content
    WHEN m.content = '' THEN array_to_string(list_transform(m.files, lambda f: '[attached file: ' || f || ']'), chr(10))
    ELSE m.content || chr(10) || chr(10)
         || array_to_string(list_transform(m.files, lambda f: '[attached file: ' || f || ']'), chr(10)) END})"""
"""SQL: a turn's stored ``messages`` as TRL messages (role and content); a message with files gets the text the
model saw (``ChatMessage.to_openai``): its content, a blank line, one ``[attached file: ...]`` line per file."""


@dataclass
class Result:
    """What :func:`run` gives: the stats' parts and, when no files were asked for, the rows.

    Attributes:
        reads: per record kind, what reading met.
        counts: the named counts of ``stats.json`` (see :func:`run`).
        lines: ``(split, JSON line)`` of every kept row in order (None when written to files).
    """

    reads: dict[str, ReadCounts]
    counts: dict[str, Any]
    lines: list[tuple[str, bytes]] | None


HAS_FILES = "coalesce(list_bool_or(list_transform(messages, lambda m: coalesce(len(m.files), 0) > 0)), false)"
"""SQL: a message of the turn had files."""
INCOMPLETE = """(conversation_id IS NULL OR message_id IS NULL OR timestamp IS NULL OR response IS NULL
    OR messages IS NULL OR len(messages) = 0
    OR coalesce(list_bool_or(list_transform(messages, lambda m: m.role IS NULL OR m.content IS NULL)), false))"""
"""SQL: the turn lacks a required field (ids, time, response, messages), has no message, or a message without
role or content."""
TURNS_STORED = {
    "conversation_id": "VARCHAR",
    "message_id": "VARCHAR",
    "timestamp": "TIMESTAMPTZ",
    "model": "VARCHAR",
    "has_files": "BOOLEAN",
    "incomplete": "BOOLEAN",
    "prompt": "STRUCT(role VARCHAR, content VARCHAR)[]",
    "response": "VARCHAR",
}
"""The ``turns_data`` table: a turn's ids, time, model, :data:`HAS_FILES`, :data:`INCOMPLETE` and, for a turn
that may make a row (:func:`text_wanted`), its prompt in TRL's format (:data:`TRL_PROMPT`) and response (null
for the others: an export holds the text it may write, not the whole log)."""


def record_filters(options: ExportOptions) -> dict[str, str]:
    """SQL conditions over a turn's columns for the record-level reasons: ``other_model`` and ``outside_dates``."""
    other_model = f"model IS NULL OR model NOT IN ({quoted(options.models)})" if options.models else "false"
    outside = ["false"]
    if options.since is not None:
        outside.append(f"timestamp < '{options.since.isoformat()}'::TIMESTAMPTZ")
    if options.until is not None:
        outside.append(f"timestamp >= '{options.until.isoformat()}'::TIMESTAMPTZ")
    return {"other_model": other_model, "outside_dates": " OR ".join(outside)}


def text_wanted(con: duckdb.DuckDBPyConnection, spec: ExportFormat, options: ExportOptions) -> str:
    """SQL over a turn record's columns: true when the turn may make a row of ``spec`` (it is complete, of a
    model and dates asked for, and its reply's verdicts make it ``kept`` or, for a format that takes corrections,
    corrected). ``judge`` must have run. A superset is harmless: the statuses decide; this only keeps text out.

    The replies looked up are a sorted array of 64-bit hashes of their keys, behind a scalar function
    (``wanted_reply``) rather than a join: a join in the statement that loads the turns would not keep their log
    order. Two keys of one hash keep one text too many."""
    verdict_columns = """SELECT v.*, coalesce(v.decision = 'dismissed', false) AS dismissed,
                                coalesce(v.decision = 'confirmed', false) AS confirmed,
                                x.conversation_id IS NOT NULL AS mixed
                         FROM verdicts v LEFT JOIN mixed x USING (conversation_id)"""
    status = status_case(spec.left_out(options))
    fixed = "correction IS NOT NULL" if spec.takes_corrections else "false"
    (default,) = _one(
        con,
        f"""SELECT bool_or(({status}) = 0)
            FROM (VALUES (0, false, false, false, false, true), (0, false, false, false, false, false))
                 t(rating, flagged, dismissed, confirmed, kept_reasons_only, mixed)""",
    )
    filters = record_filters(options)
    record = f"NOT {INCOMPLETE} AND NOT ({filters['other_model']}) AND NOT ({filters['outside_dates']})"
    if default:  # a reply nobody rated or flagged makes a row: every turn's text is kept
        return record
    keys = con.sql(
        f"SELECT DISTINCT hash(conversation_id, message_id) FROM ({verdict_columns}) WHERE ({status}) = 0 OR {fixed}"
    ).to_arrow_table()
    wanted = np.sort(keys.column(0).to_numpy()) if keys.num_rows else np.zeros(0, dtype=np.uint64)

    con.create_function("wanted_reply", _member_of(wanted), ["UBIGINT"], "BOOLEAN", type="arrow")
    return f"{record} AND wanted_reply(hash(conversation_id, message_id))"


def turn_values(wanted: str) -> str:
    """SQL: the select list of :data:`TURNS_STORED` over a turn record's columns, text kept where ``wanted``."""
    return f"""conversation_id, message_id, timestamp, model, {HAS_FILES}, {INCOMPLETE},
               CASE WHEN {wanted} THEN {TRL_PROMPT} END, CASE WHEN {wanted} THEN response END"""


class Loader:
    """Loads the shards of a data dir (or of the Hub repo a folder stands for) into ``<kind>_data`` tables."""

    def __init__(self, con: duckdb.DuckDBPyConnection, root: Path) -> None:
        from feedback.hub.remote import record_files_for

        self.con = con
        self.root = root
        self.remote = record_files_for(root)

    def load(self, kind: str, progress: bool, stored: dict[str, str] | None = None, values: str = "*") -> ReadCounts:
        """Create ``<kind>_data`` and fill it in log order: with the record's columns (:data:`COLUMNS`), or with
        ``stored`` (column -> DuckDB type) computed by ``values`` (a SQL select list over the record's columns)."""
        schema = record_schema(kind, COLUMNS[kind])
        table = f"{kind}_data"
        stored = stored or {f.name: duckdb_type(f.type) for f in schema}
        self.con.execute(f"CREATE TABLE {table} ({', '.join(f'{name} {type_}' for name, type_ in stored.items())})")
        self.values = values
        total = ReadCounts()
        if self.remote is not None:
            paths = self.remote.paths(kind)
            for path in tqdm(paths, unit="file", desc=f"reading {kind}", disable=not progress):
                table_read, counts = self.remote.read(path, schema)
                self._insert(table, table_read)
                total.add(counts)
            return total
        paths = shard_paths(self.root, kind)
        with tqdm(total=len(paths), unit="shard", desc=f"reading {kind}", disable=not progress) as bar:
            for start in range(0, len(paths), READ_BATCH):
                batch = paths[start : start + READ_BATCH]
                total.add(self._load_paths(table, schema, batch))
                bar.update(len(batch))
        return total

    def _insert(self, table: str, rows: pa.Table) -> None:
        self.con.register("_incoming", rows)
        try:
            self.con.execute(f"INSERT INTO {table} SELECT {self.values} FROM _incoming")
        finally:
            self.con.unregister("_incoming")

    def _load_paths(self, table: str, schema: pa.Schema, paths: list[Path]) -> ReadCounts:
        """Load ``paths`` in order: runs of whole shards through ``read_json``, the others one by one."""
        total = ReadCounts()
        run: list[Path] = []
        for path in paths:
            if _ends_with_newline(path):
                run.append(path)
                continue
            total.add(self._read_json(table, schema, run))
            run = []
            total.add(self._parse(table, schema, path))
        total.add(self._read_json(table, schema, run))
        return total

    def _read_json(self, table: str, schema: pa.Schema, paths: list[Path]) -> ReadCounts:
        if not paths:
            return ReadCounts()
        columns = ", ".join(f"'{f.name}': '{duckdb_type(f.type)}'" for f in schema)
        files = "[" + quoted(str(p) for p in paths) + "]"
        try:
            (rows,) = self.con.execute(
                f"INSERT INTO {table} SELECT {self.values} FROM read_json({files}, "
                f"format = 'newline_delimited', columns = {{{columns}}})"
            ).fetchall()[0]
        except (duckdb.InvalidInputException, duckdb.ConversionException) as error:
            # a shard DuckDB refuses: that one parsed by read_shard (bad lines skipped), the others again
            bad = next((i for i, p in enumerate(paths) if f'"{p}"' in str(error)), None)
            if bad is None:
                total = ReadCounts()
                for path in paths:
                    total.add(self._parse(table, schema, path))
                return total
            total = self._read_json(table, schema, paths[:bad])
            total.add(self._parse(table, schema, paths[bad]))
            total.add(self._read_json(table, schema, paths[bad + 1 :]))
            return total
        return ReadCounts(files=len(paths), bytes=sum(p.stat().st_size for p in paths), records=rows)

    def _parse(self, table: str, schema: pa.Schema, path: Path) -> ReadCounts:
        rows, counts = read_shard(path, schema)
        self._insert(table, rows)
        return counts


def _ends_with_newline(path: Path) -> bool:
    """True for an empty shard or one whose last byte is a newline (no torn last line)."""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        if handle.tell() == 0:
            return True
        handle.seek(-1, 2)
        return handle.read(1) == b"\n"


def connect(folder: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB database set up for an export: insertion order kept, UTC, memory bounded (what does not
    fit is written to ``folder``)."""
    con = duckdb.connect(
        ":memory:",
        config={
            "preserve_insertion_order": True,
            "memory_limit": MEMORY_LIMIT,
            "temp_directory": str(folder / "spill"),
        },
    )
    con.execute("SET enable_progress_bar = false")
    con.execute("SET TimeZone = 'UTC'")
    return con


RULES_USED = ("deleted", "flag_events", "flag_reasons", "flag_summary", "latest_reviews")


def judge(con: duckdb.DuckDBPyConnection, options: ExportOptions) -> None:
    """Create ``verdicts`` (one row per reply with a rating, flag or review) and ``mixed`` (conversations with a
    liked and a disliked reply) from the record tables, by the rules of ``feedback.rules.sql``."""
    for kind in ("ratings", "flags", "reviews", "deletions"):
        con.execute(f"CREATE TEMP VIEW {kind} AS SELECT *, '' AS _file, rowid AS _line FROM {kind}_data")
    for name in RULES_USED:  # each computed once (a view would be again at each use)
        con.execute(f"CREATE TEMP TABLE {name} AS {RULE_VIEWS[name]}")
    con.execute(
        "CREATE TEMP TABLE rating_events AS "
        + rating_events_sql("(SELECT * FROM ratings ANTI JOIN deleted USING (conversation_id))")
    )
    con.execute(f"CREATE TEMP TABLE latest_ratings AS {latest_of_events('rating_events')}")
    kept = f"reason IN ({quoted(options.keep_flagged_reasons)})" if options.keep_flagged_reasons else "false"
    con.execute(f"""
        CREATE TEMP TABLE verdicts AS
        WITH reasons AS (
            SELECT conversation_id, message_id,
                   list({{'reason': reason, 'count': n}} ORDER BY n DESC, first_seen) AS reasons,
                   bool_and({kept}) AS kept_reasons_only
            FROM flag_reasons GROUP BY ALL),
        comments AS (
            SELECT conversation_id, message_id,
                   list(comment ORDER BY timestamp, _line) FILTER (WHERE comment <> '') AS comments
            FROM flag_events GROUP BY ALL)
        SELECT conversation_id, message_id,
               CASE r.rating WHEN 'like' THEN 1 WHEN 'dislike' THEN -1 ELSE 0 END::TINYINT AS rating,
               r.rating AS rating_name, r.option AS rating_option, r.comment AS rating_comment,
               s.flag_count IS NOT NULL AS flagged, s.flag_count,
               coalesce(reasons.reasons, []) AS reasons, coalesce(comments.comments, []) AS comments,
               s.first_flagged_at, s.last_flagged_at,
               s.flag_count IS NOT NULL AND coalesce(reasons.kept_reasons_only, false) AS kept_reasons_only,
               CASE WHEN s.flag_count IS NOT NULL THEN v.decision END AS decision,
               CASE WHEN s.flag_count IS NOT NULL THEN nullif(v.corrected_reply, '') END AS correction
        FROM latest_ratings r FULL JOIN flag_summary s USING (conversation_id, message_id)
        LEFT JOIN latest_reviews v USING (conversation_id, message_id)
        LEFT JOIN reasons USING (conversation_id, message_id)
        LEFT JOIN comments USING (conversation_id, message_id)""")
    con.execute("""
        CREATE TEMP TABLE mixed AS
        SELECT conversation_id FROM latest_ratings GROUP BY ALL
        HAVING bool_or(rating = 'like') AND bool_or(rating = 'dislike')""")


def statuses(con: duckdb.DuckDBPyConnection, spec: ExportFormat, options: ExportOptions) -> None:
    """Create ``statuses``: one row per turn record (``seq`` its place in the log) with its reply's verdicts,
    ``status``, ``first`` (the first record of its reply key; a record without ids is its own), ``fixed`` (a
    format that takes corrections: a usable reply with a reviewer's correction) and ``first_candidate`` (the
    first record of its reply key that is kept or ``fixed``: the one that makes rows)."""
    left_out = {**spec.left_out(options), "deleted": "deleted", "incomplete": "incomplete", **record_filters(options)}
    fixed = (
        f"correction IS NOT NULL AND status NOT IN ({', '.join(map(str, UNUSABLE))})"
        if spec.takes_corrections
        else "false"
    )
    con.execute(f"""
        CREATE TEMP TABLE statuses AS
        WITH facts AS (
            SELECT rowid AS seq, conversation_id, message_id, timestamp, model, has_files, incomplete FROM turns_data),
        judged AS (
            SELECT f.*,
                   coalesce(v.rating, 0)::TINYINT AS rating, coalesce(v.flagged, false) AS flagged,
                   coalesce(v.decision = 'dismissed', false) AS dismissed,
                   coalesce(v.decision = 'confirmed', false) AS confirmed,
                   coalesce(v.kept_reasons_only, false) AS kept_reasons_only, v.correction,
                   d.conversation_id IS NOT NULL AS deleted, x.conversation_id IS NOT NULL AS mixed
            FROM facts f LEFT JOIN verdicts v USING (conversation_id, message_id)
            LEFT JOIN deleted d USING (conversation_id) LEFT JOIN mixed x USING (conversation_id)),
        statused AS (SELECT *, ({status_case(left_out)})::TINYINT AS status FROM judged),
        marked AS (SELECT *, coalesce({fixed}, false) AS fixed FROM statused)
        SELECT seq, conversation_id, message_id, has_files, rating, flagged, dismissed, correction, status, fixed,
               CASE WHEN conversation_id IS NULL OR message_id IS NULL THEN true
                    ELSE row_number() OVER w = 1 END AS first,
               (status = 0 OR fixed) AND seq = min(seq) FILTER (WHERE status = 0 OR fixed) OVER w AS first_candidate
        FROM marked
        WINDOW w AS (PARTITION BY conversation_id, message_id ORDER BY seq)""")


def candidates(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``candidates``: the first copy of each kept reply (``pairable``) and of each reply a reviewer
    corrected (``correction``, a format that takes corrections); their time, model and text stay in
    ``turns_data`` (row ``seq``)."""
    con.execute("""
        CREATE TEMP TABLE candidates AS
        SELECT seq, conversation_id, message_id, rating, has_files, status = 0 AS pairable,
               CASE WHEN fixed THEN correction END AS correction
        FROM statuses WHERE first_candidate""")


def splits(con: duckdb.DuckDBPyConnection, options: ExportOptions, conversations: str) -> None:
    """Create ``splits`` (``conversation_id``, ``test``) for the distinct conversations of the query
    ``conversations`` (``feedback.export.rows.in_test_split``: a keyed BLAKE2b hash, computed in Python)."""
    ids = con.sql(f"SELECT DISTINCT conversation_id FROM ({conversations})").to_arrow_table()[0].to_pylist()
    if options.test_size == 0:
        test = [False] * len(ids)
    else:
        test = [in_test_split(c, test_size=options.test_size, seed=options.seed) for c in ids]
    con.register("_splits", pa.table({"conversation_id": pa.array(ids, pa.string()), "test": pa.array(test)}))
    con.execute("CREATE TEMP TABLE splits AS SELECT * FROM _splits")
    con.unregister("_splits")


def _json(columns: dict[str, str]) -> str:
    """SQL: a JSON object of ``columns`` (name -> SQL expression), in that order."""
    return "to_json(struct_pack(" + ", ".join(f'"{name}" := {sql}' for name, sql in columns.items()) + "))"


def _row_sql(spec: ExportFormat, options: ExportOptions) -> tuple[str, str]:
    """SQL of a row's JSON line (without ``count``, with its newline) and of its digest (MD5 of its format columns'
    JSON); the digest's SQL may name the line as ``line`` (it is computed over the line's query)."""
    columns = spec.columns
    built = spec.built_columns(include_ids=options.include_ids)
    line = _json({name: columns[name] for name in built}) + " || chr(10)"
    if built == list(spec.features):
        return line, "md5_number(line)"
    return line, f"md5_number({_json({name: columns[name] for name in spec.features})})"


def reply_facts(con: duckdb.DuckDBPyConnection) -> None:
    """Register the scalar functions that give a turn record (by ``seq``, its place in the log) its candidate's
    facts: ``candidate_index(seq)`` (null for a record that is no candidate), and over that index
    ``fact_rating`` (1, -1, 0), ``fact_pairable``, ``fact_correction`` (null: none) and ``fact_test`` (its
    conversation's split). Behind them: the candidates' facts as arrays sorted by ``seq``.

    Functions rather than a join: a scan of ``turns_data`` that calls them runs on every core and keeps the log
    order (a join's output order is not the log's), so rows can be written as they are made, never sorted."""
    table = con.sql(
        "SELECT c.seq, c.rating, c.pairable, c.correction, s.test "
        "FROM candidates c JOIN splits s USING (conversation_id) ORDER BY c.seq"
    ).to_arrow_table()
    seqs = table.column("seq").to_numpy()

    def candidate_index(seq: pa.Array) -> pa.Array:
        at, found = _find(seqs, seq)
        return pa.array(at, mask=~found)

    con.create_function("candidate_index", candidate_index, ["BIGINT"], "BIGINT", type="arrow", null_handling="special")
    for name, type_ in (("rating", "TINYINT"), ("pairable", "BOOLEAN"), ("correction", "VARCHAR"), ("test", "BOOLEAN")):
        take = _taking(table.column(name).combine_chunks())
        con.create_function(f"fact_{name}", take, ["BIGINT"], type_, type="arrow", null_handling="special")


def _find(keys: np.ndarray, given: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Where each of ``given`` is in the sorted array ``keys``: ``(index, found)``, the index meaningful only
    where found."""
    values = given.to_numpy(zero_copy_only=False)
    if len(keys) == 0:
        return np.zeros(len(values), dtype=np.int64), np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(keys, values), len(keys) - 1)
    return at, keys[at] == values


def _taking(values: pa.Array) -> Callable[[pa.Array], pa.Array]:
    """An Arrow scalar function: the items of ``values`` at the given indexes (a null index: null)."""
    return lambda index: values.take(index)


def _member_of(keys: np.ndarray) -> Callable[[pa.Array], pa.Array]:
    """An Arrow scalar function: whether each given number is in ``keys`` (sorted)."""
    return lambda given: pa.array(_find(keys, given)[1])


def reply_source(spec: ExportFormat) -> str:
    """SQL of a one-row-per-reply format's rows before serialization (:func:`reply_rows`): ``pos``, the ids, text,
    facts and (a format ``with_verdicts``) verdict columns, in log order unless ``spec.with_verdicts`` (a join:
    sort by ``pos``). Needs :func:`reply_facts`."""
    verdicts = ""
    if spec.with_verdicts:
        verdicts = """LEFT JOIN (SELECT conversation_id, message_id AS reply_id, rating_name, rating_option,
                                     rating_comment, flag_count, reasons, comments, first_flagged_at, last_flagged_at
                              FROM verdicts SEMI JOIN candidates USING (conversation_id, message_id))
                      USING (conversation_id, reply_id)"""  # the candidates' verdicts only: a small join
    return f"""
        WITH base AS (
            SELECT seq, conversation_id, message_id, timestamp, model, prompt, response, has_files,
                   fact_rating(i) AS rating, fact_pairable(i) AS pairable, fact_correction(i) AS correction,
                   fact_test(i) AS test
            FROM (SELECT rowid AS seq, *, candidate_index(rowid) AS i FROM turns_data) WHERE i IS NOT NULL),
        replies AS (
            SELECT seq, conversation_id, message_id AS reply_id, timestamp, model, prompt, rating, has_files, test,
                   unnest(list_filter([
                       {{'sub': 0, 'message_id': message_id, 'corrected_id': NULL::VARCHAR, 'response': response,
                         'made': pairable}},
                       {{'sub': 1, 'message_id': NULL::VARCHAR, 'corrected_id': message_id, 'response': correction,
                         'made': correction IS NOT NULL}}], lambda x: x.made), recursive := true)
            FROM base)
        SELECT *, seq * 2 + sub AS pos, sub = 1 AS correction FROM replies {verdicts}"""


def reply_rows(con: duckdb.DuckDBPyConnection, spec: ExportFormat, options: ExportOptions) -> str:
    """Create ``rows`` of a one-row-per-reply format: each ``pairable`` candidate, then (a format that takes
    corrections) each correction right after the reply it corrects; ``pos`` their order. ``rows`` holds their
    digests, not their lines: the kept ones are serialized again when written (cheaper than storing every
    line). Returns the SQL of the kept rows' ``pos``, ``test`` and ``line`` (:func:`write_lines`).

    The format's columns (``ReplyFormat.columns``) name ``conversation_id``, ``message_id`` (null for a
    correction), ``corrected_id`` (the corrected reply, for a correction), ``prompt``, ``response``, ``model``,
    ``timestamp``, ``rating`` and, for a format ``with_verdicts``, ``rating_name``, ``rating_option``,
    ``rating_comment``, ``flag_count``, ``reasons``, ``comments``, ``first_flagged_at``, ``last_flagged_at``."""
    line, digest = _row_sql(spec, options)
    reply_facts(con)
    source = reply_source(spec)
    con.execute(f"""
        CREATE TEMP TABLE rows AS
        SELECT pos, conversation_id, test, correction, rating = 1 AS liked, has_files, {digest} AS digest
        FROM (SELECT *, {line} AS line FROM ({source}))""")
    order = " ORDER BY pos" if spec.with_verdicts else ""
    return f"""SELECT pos, test, {_with_count(spec, options, line)} AS line
               FROM (SELECT *, kept_count(pos) AS n FROM ({source})) WHERE n > 0{order}"""


def pair_rows(con: duckdb.DuckDBPyConnection, spec: ExportFormat, options: ExportOptions) -> tuple[dict[str, int], str]:
    """Create ``rows`` of a paired format: the preference pairs (``feedback.export.rows``), ordered by their
    later reply, then their chosen one, then their rejected one; then one row per reviewer's correction
    (chosen: the correction, rejected: the flagged reply), in log order. ``rows`` holds their lines (pairs are
    few). Returns the pairing counts of ``stats.json`` (``identical_chosen_rejected``, ``no_opposite_rating``,
    ``pair_straddles_split``, ``not_latest_pair`` with ``pairs="latest"``, ``review_corrections`` when there
    are corrections) and the SQL of the kept rows' ``pos``, ``test`` and ``line``, sorted (:func:`write_lines`).

    The format's columns (``PairFormat.columns``) name ``chosen_<x>`` and ``rejected_<x>`` for ``x`` in
    ``conversation_id``, ``message_id`` (null for a correction), ``prompt``, ``response``."""
    group = "prompt_hash" + ("" if options.cross_conversation else ", conversation_id")
    same_group = "g.prompt_hash = b.prompt_hash" + (
        "" if options.cross_conversation else " AND g.conversation_id = b.conversation_id"
    )
    reply_facts(con)
    # Only a rated reply whose prompt has a reply of the opposite rating can pair. DuckDB's 64-bit hash of the
    # prompt finds them (equal prompts, equal hashes): the exact digests (MD5 of the JSON) are computed for these.
    quick_group = "quick_hash" + ("" if options.cross_conversation else ", conversation_id")
    con.execute(f"""
        CREATE TEMP TABLE rated AS
        WITH quick AS (
            SELECT seq, conversation_id, timestamp, fact_rating(i) AS rating, hash(prompt) AS quick_hash
            FROM (SELECT rowid AS seq, *, candidate_index(rowid) AS i FROM turns_data)
            WHERE i IS NOT NULL AND fact_pairable(i)),
        opposite AS (
            SELECT {quick_group} FROM quick GROUP BY ALL HAVING bool_or(rating = 1) AND bool_or(rating = -1)),
        maybe AS (SELECT seq, conversation_id, timestamp, rating FROM quick SEMI JOIN opposite USING ({quick_group}))
        SELECT m.*, md5_number(to_json(t.prompt)) AS prompt_hash, md5_number(t.response) AS response_hash
        FROM turns_data t JOIN maybe m ON t.rowid = m.seq""")
    con.execute(f"""
        CREATE TEMP TABLE all_pairs AS
        SELECT g.seq AS chosen, b.seq AS rejected, g.response_hash = b.response_hash AS same,
               g.conversation_id AS chosen_conversation, b.conversation_id AS rejected_conversation
        FROM rated g JOIN rated b ON {same_group}
        WHERE g.rating = 1 AND b.rating = -1""")
    (pairable,) = _one(con, "SELECT count(*) FROM candidates WHERE pairable")
    (in_pairs,) = _one(
        con,
        "SELECT count(*) FROM (SELECT chosen FROM all_pairs WHERE NOT same UNION "
        "SELECT rejected FROM all_pairs WHERE NOT same)",
    )
    counts = {"no_opposite_rating": pairable - in_pairs}
    source = "all_pairs"
    if options.pairs == "latest":
        con.execute(f"""
            CREATE TEMP TABLE latest_pairs AS
            WITH latest AS (
                SELECT arg_max(seq, (timestamp, seq)) FILTER (WHERE rating = 1) AS chosen,
                       arg_max(seq, (timestamp, seq)) FILTER (WHERE rating = -1) AS rejected
                FROM rated GROUP BY {group} HAVING bool_or(rating = 1) AND bool_or(rating = -1))
            SELECT p.* FROM all_pairs p JOIN latest l USING (chosen, rejected)""")
        groups, same = _one(con, "SELECT count(*), count(*) FILTER (WHERE same) FROM latest_pairs")
        (different,) = _one(con, "SELECT count(*) FROM all_pairs WHERE NOT same")
        if same:
            counts["identical_chosen_rejected"] = same
        counts["not_latest_pair"] = different - (groups - same)
        source = "latest_pairs"
    else:
        (same,) = _one(con, "SELECT count(*) FROM all_pairs WHERE same")
        if same:  # (a count stats.json names only when there is one)
            counts["identical_chosen_rejected"] = same
    con.execute(f"""
        CREATE TEMP TABLE pairs AS
        SELECT p.chosen, p.rejected, a.test = b.test AS same_split FROM {source} p
        JOIN splits a ON a.conversation_id = p.chosen_conversation
        JOIN splits b ON b.conversation_id = p.rejected_conversation
        WHERE NOT p.same""")
    (counts["pair_straddles_split"],) = _one(con, "SELECT count(*) FROM pairs WHERE NOT same_split")
    line, digest = _row_sql(spec, options)
    side = "seq, conversation_id, message_id, prompt, response, correction, has_files"
    con.execute("""
        CREATE TEMP TABLE sides_text AS
        WITH wanted AS (
            SELECT chosen AS seq FROM pairs WHERE same_split UNION SELECT rejected FROM pairs WHERE same_split
            UNION SELECT seq FROM candidates WHERE correction IS NOT NULL)
        SELECT c.*, t.prompt, t.response
        FROM turns_data t JOIN wanted w ON t.rowid = w.seq
        JOIN candidates c USING (seq)""")
    con.execute(f"""
        CREATE TEMP TABLE rows AS
        WITH sides AS (
            SELECT 0 AS part, greatest(chosen, rejected) AS later, chosen, rejected FROM pairs WHERE same_split
            UNION ALL
            SELECT 1, seq, seq, seq FROM candidates WHERE correction IS NOT NULL),
        ordered AS (SELECT *, row_number() OVER (ORDER BY part, later, chosen, rejected) AS pos FROM sides),
        flat AS (
            SELECT o.pos, o.part = 1 AS correction, c.has_files,
                   c.conversation_id AS chosen_conversation_id,
                   CASE WHEN o.part = 1 THEN NULL ELSE c.message_id END AS chosen_message_id,
                   c.prompt AS chosen_prompt,
                   CASE WHEN o.part = 1 THEN c.correction ELSE c.response END AS chosen_response,
                   r.conversation_id AS rejected_conversation_id, r.message_id AS rejected_message_id,
                   r.prompt AS rejected_prompt, r.response AS rejected_response
            FROM ordered o JOIN (SELECT {side} FROM sides_text) c ON c.seq = o.chosen
            JOIN (SELECT {side} FROM sides_text) r ON r.seq = o.rejected)
        SELECT pos, chosen_conversation_id AS conversation_id, s.test, correction, true AS liked, has_files, line,
               {digest} AS digest
        FROM (SELECT *, {line} AS line FROM flat) JOIN splits s ON s.conversation_id = chosen_conversation_id""")
    (corrections,) = _one(con, "SELECT count(*) FROM candidates WHERE correction IS NOT NULL")
    if corrections:
        counts["review_corrections"] = corrections
    kept = _with_count(spec, options, "line")
    return (
        counts,
        f"SELECT pos, test, {kept} AS line FROM (SELECT *, kept_count(pos) AS n FROM rows) WHERE n > 0 ORDER BY pos",
    )


def keep_rows(con: duckdb.DuckDBPyConnection) -> None:
    """Create ``kept``: of each set of identical rows (one digest) the first by ``pos``, with ``count`` (the
    distinct conversations that gave it) and its split (``test``, of its own conversation); and the scalar
    function ``kept_count(pos)``: a row's ``count`` when it is kept, else 0 (a sorted array of the kept
    positions behind it: filtering rows with it keeps their order, where a join might not)."""
    con.execute("""
        CREATE TEMP TABLE kept AS
        WITH groups AS (
            SELECT digest, min(pos) AS pos, count(DISTINCT conversation_id) AS count FROM rows GROUP BY digest)
        SELECT r.pos, r.conversation_id, r.liked, r.has_files, g.count, r.test
        FROM rows r JOIN groups g USING (pos)""")
    table = con.sql("SELECT pos, count FROM kept ORDER BY pos").to_arrow_table()
    positions = table.column("pos").to_numpy()
    row_counts = table.column("count").to_numpy()

    def kept_count(pos: pa.Array) -> pa.Array:
        at, found = _find(positions, pos)
        return pa.array(np.where(found, row_counts[at] if len(row_counts) else 0, 0).astype(np.int64))

    con.create_function("kept_count", kept_count, ["BIGINT"], "BIGINT", type="arrow")


def _with_count(spec: ExportFormat, options: ExportOptions, line: str) -> str:
    """SQL: a row's JSON ``line`` with ``count`` (``n``) added last, when the format asks for it."""
    if options.include_ids and spec.counts_agreement:
        return f"""left({line}, -2) || ',"count":' || n || '}}' || chr(10)"""
    return line


def write_lines(con: duckdb.DuckDBPyConnection, query: str, files: dict[str, Path] | None) -> list[tuple[str, bytes]]:
    """Write the kept rows that ``query`` gives (``pos``, ``test``, ``line``), in ``pos`` order, each to its
    split's file in ``files`` (split -> path; a split with no rows: an empty file), or (``files`` None) return
    them as ``(split, line)``. Each batch's string data is written as DuckDB gives it (no Python per row); a
    batch holds :data:`WRITE_BATCH` rows.

    The rows are checked to come in ``pos`` order; should they not, the files are written again from the query
    sorted."""
    for sort in (False, True):
        collected: list[tuple[str, bytes]] = []
        last = -1
        in_order = True
        with ExitStack() as stack:
            outs = {split: stack.enter_context(open(path, "wb")) for split, path in (files or {}).items()}
            for batch in con.sql(f"SELECT * FROM ({query})" + (" ORDER BY pos" if sort else "")).to_arrow_reader(
                WRITE_BATCH
            ):
                if len(batch) == 0:
                    continue
                pos = batch.column(0).to_numpy()
                if pos[0] <= last or (len(pos) > 1 and not np.all(pos[1:] > pos[:-1])):
                    in_order = False
                    break
                last = int(pos[-1])
                tests = batch.column(1).to_numpy(zero_copy_only=False)
                column = batch.column(2)
                if files is None:
                    collected.extend(
                        (SPLITS[int(t)], line[:-1].encode()) for t, line in zip(tests, column.to_pylist(), strict=True)
                    )
                    continue
                for test, split in ((False, "train"), (True, "test")):
                    if split in outs:
                        _write_strings(outs[split], column.filter(pa.array(tests == test)))
        if in_order:
            return collected
    raise RuntimeError("the sorted rows of an export came out of order")  # DuckDB broke ORDER BY


def _write_strings(out: Any, column: pa.Array) -> None:
    """Write a string array's data (its strings back to back) to the binary file ``out``."""
    if len(column) == 0:
        return
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = column.cast(pa.large_string())
    width = np.int32 if pa.types.is_string(column.type) else np.int64
    offsets, data = column.buffers()[1], column.buffers()[2]
    bounds = np.frombuffer(offsets, dtype=width)[column.offset : column.offset + len(column) + 1]
    out.write(memoryview(data)[bounds[0] : bounds[-1]])


def run(
    spec: ExportFormat,
    options: ExportOptions,
    root: Path,
    *,
    files: dict[str, Path] | None = None,
    progress: bool = False,
) -> Result:
    """Export the records of ``root`` (a data dir, or a folder standing for a Hub repo) as ``spec``.

    Args:
        spec: the format (resolved for ``options``).
        options: what to export.
        root: the data dir.
        files: per split, the file to write its rows to (a split with no rows: an empty file); None: the
            rows are returned (:attr:`Result.lines`).
        progress: show progress bars.

    Returns:
        The reads, counts and (without ``files``) lines. ``counts`` has ``statuses`` (status name ->
        replies, first copies), ``turns`` (``duplicates``, ``incomplete``, ``deleted``), ``ratings`` and
        ``flags`` (``duplicates``, ``incomplete``, ``deleted``, ``unknown_reply``; ratings ``undone``),
        ``deleted_conversations``, ``replies`` (``total``, ``liked``, ``disliked``, ``unrated``,
        ``flagged``, ``with_files``), ``reviews`` (decision -> flagged replies), ``pairing``,
        ``correction_rows``, ``duplicate`` (rows removed as identical), and per split ``rows``, ``liked``,
        ``conversations``, ``rows_by_count``; ``with_files`` (kept rows whose prompt had files).
    """
    folder = Path(tempfile.mkdtemp(prefix="feedback-export-"))
    con = connect(folder)
    try:
        loader = Loader(con, root)
        reads = {kind: loader.load(kind, progress) for kind in COLUMNS if kind != "turns"}
        judge(con, options)
        reads["turns"] = loader.load("turns", progress, TURNS_STORED, turn_values(text_wanted(con, spec, options)))
        steps = tqdm(total=4, unit="step", desc=f"building {spec.name} rows", disable=not progress)
        with steps:
            statuses(con, spec, options)
            steps.update()
            candidates(con)
            steps.update()
            pairing: dict[str, int] = {}
            splits(con, options, "SELECT conversation_id FROM candidates")  # each gives a row or a pair's side
            if spec.paired:
                pairing, query = pair_rows(con, spec, options)
            else:
                query = reply_rows(con, spec, options)
            keep_rows(con)
            steps.update()
            counts = _counts(con, spec, pairing)
            collected = write_lines(con, query, files)
            steps.update()
        return Result(reads=reads, counts=counts, lines=None if files is not None else collected)
    finally:
        con.close()
        shutil.rmtree(folder, ignore_errors=True)


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    return con.execute(sql).fetchall()[0]


def _counts(con: duckdb.DuckDBPyConnection, spec: ExportFormat, pairing: dict[str, int]) -> dict[str, Any]:
    """The counts of ``stats.json`` (see :func:`run`), each from one aggregate query."""
    unusable = f"status NOT IN ({STATUS['incomplete']}, {STATUS['deleted']})"
    flagged = "flagged" if spec.lists_every_flag else "flagged AND NOT dismissed"
    counts: dict[str, Any] = {"pairing": pairing}
    by_status = dict(con.execute("SELECT status, count(*) FROM statuses WHERE first GROUP BY ALL").fetchall())
    counts["statuses"] = {name: int(by_status.get(code, 0)) for code, name in enumerate(STATUSES)}
    duplicates, deleted = _one(
        con,
        f"SELECT count(*) FILTER (WHERE NOT first AND status <> {STATUS['deleted']}), "
        f"count(*) FILTER (WHERE status = {STATUS['deleted']}) FROM statuses",
    )
    counts["turns"] = {"duplicates": duplicates, "incomplete": counts["statuses"]["incomplete"], "deleted": deleted}
    total, liked, disliked, unrated, flagged_n, files = _one(
        con,
        f"""SELECT count(*), count(*) FILTER (WHERE rating = 1), count(*) FILTER (WHERE rating = -1),
                   count(*) FILTER (WHERE rating = 0), count(*) FILTER (WHERE {flagged}),
                   count(*) FILTER (WHERE has_files)
            FROM statuses WHERE first AND {unusable}""",
    )
    counts["replies"] = {
        "total": total,
        "liked": liked,
        "disliked": disliked,
        "unrated": unrated,
        "flagged": flagged_n,
        "with_files": files,
    }
    counts["ratings"] = _rating_counts(con)
    counts["flags"] = _flag_counts(con)
    counts["deleted_conversations"] = _one(con, "SELECT count(*) FROM deleted")[0]
    counts["reviews"] = dict(
        con.execute("SELECT decision, count(*) FROM verdicts WHERE decision IS NOT NULL GROUP BY ALL").fetchall()
    )
    counts["correction_rows"] = _one(con, "SELECT count(*) FROM rows WHERE correction")[0]
    (rows,) = _one(con, "SELECT count(*) FROM rows")
    (kept,) = _one(con, "SELECT count(*) FROM kept")
    counts["duplicate"] = rows - kept
    counts["with_files"] = _one(con, "SELECT count(*) FROM kept WHERE has_files")[0]
    for test, split in ((False, "train"), (True, "test")):
        where = f"WHERE test = {str(test).lower()}"
        n, n_liked, conversations = _one(
            con, f"SELECT count(*), count(*) FILTER (WHERE liked), count(DISTINCT conversation_id) FROM kept {where}"
        )
        by_count = con.execute(f"SELECT count, count(*) FROM kept {where} GROUP BY ALL ORDER BY count").fetchall()
        counts[split] = {
            "rows": n,
            "liked": n_liked,
            "conversations": conversations,
            "rows_by_count": {str(c): r for c, r in by_count},
        }
    return counts


def _rating_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """``duplicates`` (a valid rating equal to the one before it: same reply, time and values), ``incomplete``,
    ``undone``, ``deleted``, ``unknown_reply`` (rated replies with no turn)."""
    deleted, live = _one(
        con,
        "SELECT count(*) FILTER (WHERE d.conversation_id IS NOT NULL), count(*) FILTER (WHERE d.conversation_id "
        "IS NULL) FROM ratings LEFT JOIN deleted d USING (conversation_id)",
    )
    valid, duplicates, undone = _one(
        con,
        "SELECT count(*), count(*) FILTER (WHERE copy), count(*) FILTER (WHERE last AND rating IS NULL) "
        "FROM rating_events",
    )
    (unknown,) = _one(con, "SELECT count(*) FROM latest_ratings ANTI JOIN statuses USING (conversation_id, message_id)")
    return {
        "duplicates": duplicates,
        "incomplete": live - valid,
        "undone": undone,
        "deleted": deleted,
        "unknown_reply": unknown,
    }


def _flag_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """``duplicates`` (a valid flag equal to an earlier one), ``incomplete``, ``deleted``, ``unknown_reply``."""
    (deleted,) = _one(con, "SELECT count(*) FROM flags SEMI JOIN deleted USING (conversation_id)")
    (valid,) = _one(
        con,
        """SELECT count(*) FROM flags ANTI JOIN deleted USING (conversation_id)
           WHERE conversation_id IS NOT NULL AND message_id IS NOT NULL AND timestamp IS NOT NULL
                 AND coalesce(len(reasons), 0) > 0""",
    )
    (live,) = _one(con, "SELECT count(*) FROM flags ANTI JOIN deleted USING (conversation_id)")
    (events,) = _one(con, "SELECT count(*) FROM flag_events")
    (unknown,) = _one(con, "SELECT count(*) FROM flag_summary ANTI JOIN statuses USING (conversation_id, message_id)")
    return {"duplicates": valid - events, "incomplete": live - valid, "deleted": deleted, "unknown_reply": unknown}
