"""Benchmark of ``python -m feedback export``: a synthetic log, then each format timed.

Run::

    .venv/bin/python bench/bench_export.py --turns 1000000            # data in a temp dir
    .venv/bin/python bench/bench_export.py --turns 20000 --data /tmp/d  # keep the data

It writes a data dir of JSONL shards the way ``FeedbackStore`` does (two replicas, 8 MiB
shards): ``--turns`` turns in conversations of 1-6 turns (15% of replies regenerated), the same
number of rating events (80% of replies rated, then changes and undos), ``--flags`` flags
(default 5% of turns). User messages are ~50 tokens (~200 characters) and replies ~200 tokens
(~800 characters); each turn's prompt holds the conversation so far. Then it prints, each in a
fresh process: the time ``python -m feedback export --help`` takes (median of 5, what the CLI costs
before any work), the time ``datasets.load_dataset("json")`` takes to read the same files (the
three kinds, with explicit features and an empty cache), and for each format the time of the real
command (``python -m feedback export FORMAT ...``) and of the export module called directly (no CLI
start-up), their ratios to that read and to DuckDB's (wall time, and CPU time: user + system of the
process, which a busy machine inflates less), and peak RSS (``ru_maxrss`` of the process).

**The DuckDB baseline.** Each format's time is also divided by the time DuckDB (``duckdb`` in a fresh
process, default threads and memory limit) takes to read the same files: for each record kind the
export reads (``turns``, ``ratings``, ``flags``, ``reviews``, ``deletions``: those with shards), one
query over ``read_json`` of that kind's shards with exactly the columns the export reads and the
types it gives them (``feedback.features.record_schema``; ``messages`` is
``STRUCT(role VARCHAR, content VARCHAR, files VARCHAR[])[]``, ``timestamp`` ``TIMESTAMPTZ``) and
``format = 'newline_delimited'``, aggregating every value of every row, so that no column or
field can be skipped::

    SELECT count(*), sum(length(conversation_id)), sum(length(message_id)), max(timestamp),
           sum(length(model)), sum(list_sum(list_transform(messages, lambda m: length(m.role) +
               length(m.content) + coalesce(list_sum(list_transform(m.files, lambda f: length(f))), 0)))),
           sum(length(response))
    FROM read_json('DATA/turns/*.jsonl', format = 'newline_delimited', columns = {...})

(and likewise for the other kinds: a string column ``sum(length(c))``, a list of strings the
lengths of its items summed, a timestamp ``max(c)``). ``--show-query`` prints the exact SQL. This is
"read these files and look at every value the export needs": a lower bound of what an export must do
(it also judges ratings, builds and serializes rows, deduplicates them and writes them). It runs twice and
the ratios are to the second run: the first may read the files from disk, and the exports that follow find
them in the page cache.

**The floor** (``--floor``, after the formats). The least a DuckDB statement can do to write the ``sft``
export's rows: read the turns' shards and write, as JSON lines, the rows of the replies that export kept (their
ids given, from ``export sft --with-ids``), with the export's own SQL for a row's columns and DuckDB's JSON
writer: no rules, no other record kind, no splits, no removal of identical rows. It prints its time, its ratio
to the baseline, and whether it wrote the same lines as ``export sft --test-size 0`` (in any order). Its ratio
bounds from below what any plan of the ``sft`` export can reach against the baseline.

Every figure is printed with the 1-minute load average and the core count at its end (the machine
may be shared: run it under ``flock /tmp/bench.lock``). ``--text-scale 0.15 --shard-bytes 2400000``
makes every text 0.15 times as long in shards of 2.4 MB (a 10M-turn dir of ~10 GB in about as many
shards as a real ~33 GB one), for when the disk cannot hold the real one; ``--runs command`` skips the
module runs and ``--no-load-dataset`` the ``datasets`` read (its cache is a second copy of the data).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
WORDS = (  # noqa: SIM905 - a sentence is easier to read than a list of 150 words
    "the a of to and in is it you that he was for on are with as I his they be at one have this from "
    "or had by hot word but what some we can out other were all there when up use your how said an "
    "each she which do their time if will way about many then them write would like so these her long "
    "make thing see him two has look more day could go come did number sound no most people my over "
    "know water than call first who may down side been now find any new work part take get place made "
    "live where after back little only round man year came show every good me give our under name very"
).split()
REASONS = ("Harmful", "Inaccurate", "Off-topic", "Other")
SHARD_BYTES = 8 * 1024 * 1024


class TextPool:
    """Random-word text, cut from one long string: unique slices, fast to make (``scale``: every text
    that many times as long)."""

    def __init__(self, rng: random.Random, chars: int = 20_000_000, scale: float = 1.0) -> None:
        words = rng.choices(WORDS, k=chars // 4)
        self.text = " ".join(words)
        self.rng = rng
        self.scale = scale

    def take(self, mean_chars: int) -> str:
        mean_chars = max(1, int(mean_chars * self.scale))
        length = max(1, int(self.rng.gauss(mean_chars, mean_chars / 3)))
        start = self.rng.randrange(0, len(self.text) - length)
        return self.text[start : start + length].strip()


class ShardWriter:
    """Appends JSON lines to rotating shards of one kind for two replicas, like ``FeedbackStore``."""

    def __init__(self, folder: Path, replicas: int = 2) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.handles: list = [None] * replicas
        self.sizes = [0] * replicas
        self.sequence = 0

    def write(self, replica: int, record: dict) -> None:
        line = orjson.dumps(record) + b"\n"
        if self.handles[replica] is None or self.sizes[replica] + len(line) > SHARD_BYTES:
            if self.handles[replica] is not None:
                self.handles[replica].close()
            self.sequence += 1
            path = self.folder / f"20260101T000000Z-replica{replica:04d}-{self.sequence:06d}.jsonl"
            self.handles[replica] = open(path, "wb")  # noqa: SIM115 - closed on rotation / close()
            self.sizes[replica] = 0
        self.handles[replica].write(line)
        self.sizes[replica] += len(line)

    def close(self) -> None:
        for handle in self.handles:
            if handle is not None:
                handle.close()


def _stamp(start: datetime, seconds: float) -> str:
    return (start + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _message(role: str, content: str, files: tuple[str, ...] = ()) -> dict:
    return {"role": role, "content": content, "files": list(files)}


def _turn(cid: str, index: int, messages: list[dict], response: str, when: str, regenerated_from: str | None) -> dict:
    return {
        "schema_version": 1,
        "timestamp": when,
        "conversation_id": cid,
        "message_id": os.urandom(16).hex(),
        "turn_index": index,
        "messages": messages,
        "response": response,
        "model": "bench-model-a" if index % 2 else "bench-model-b",
        "params": {"temperature": 0.7, "top_p": None, "max_tokens": 512, "seed": None},
        "latency_ms": 812.5,
        "regenerated_from": regenerated_from,
        "edited_from": None,
        "source": "ui",
    }


def generate_turns(root: Path, turns: int, rng: random.Random, pool: TextPool) -> list[tuple[str, str, float]]:
    """Write ``turns`` turns; return ``(conversation_id, message_id, seconds)`` of each."""
    writer, made, clock = ShardWriter(root / "turns"), [], 0.0
    start = datetime(2026, 1, 1, tzinfo=UTC)
    while len(made) < turns:
        cid, replica, history = os.urandom(16).hex(), rng.randrange(2), []
        if rng.random() < 0.3:
            history.append(_message("system", pool.take(120)))
        for index in range(rng.randint(1, 6)):
            files = (f"files/{os.urandom(32).hex()}.png",) if rng.random() < 0.01 else ()
            messages = [*history, _message("user", pool.take(200), files)]
            previous = None
            for _ in range(2 if rng.random() < 0.15 else 1):
                clock += rng.uniform(0.5, 3.0)
                record = _turn(cid, index, messages, pool.take(800), _stamp(start, clock), previous)
                writer.write(replica if rng.random() < 0.9 else 1 - replica, record)
                made.append((cid, record["message_id"], clock))
                previous = record["message_id"]
            history = [*messages, _message("assistant", record["response"])]
            if len(made) >= turns:
                break
    writer.close()
    return made


def generate_ratings(root: Path, made: list, events: int, rng: random.Random, pool: TextPool) -> None:
    """Write ``events`` ratings: 80% of replies rated once, the rest changes (60%) and undos (40%)."""
    writer, start = ShardWriter(root / "ratings"), datetime(2026, 1, 1, tzinfo=UTC)
    rated = rng.sample(range(len(made)), min(len(made), int(events * 0.8)))
    last: dict[int, str | None] = {}
    plan = rated + [rng.choice(rated) for _ in range(events - len(rated))] if rated else []
    for n, position in enumerate(plan):
        cid, mid, clock = made[position]
        previous = last.get(position, "missing")
        if previous == "missing":
            value = "like" if rng.random() < 0.55 else "dislike"
        else:
            value = None if rng.random() < 0.4 else ("dislike" if previous == "like" else "like")
        last[position] = value
        record = {
            "schema_version": 1,
            "timestamp": _stamp(start, clock + 5 + n * 1e-3),
            "conversation_id": cid,
            "message_id": mid,
            "rating": value,
            "option": "Inaccurate" if value == "dislike" and rng.random() < 0.1 else None,
            "comment": pool.take(60) if rng.random() < 0.05 else None,
            "source": "ui",
        }
        writer.write(rng.randrange(2), record)
    writer.close()


def generate_flags(root: Path, made: list, flags: int, rng: random.Random, pool: TextPool) -> None:
    """Write ``flags`` flags on random replies, 1-2 reasons each, a comment on a third."""
    writer, start = ShardWriter(root / "flags"), datetime(2026, 1, 1, tzinfo=UTC)
    for _ in range(flags):
        cid, mid, clock = made[rng.randrange(len(made))]
        record = {
            "schema_version": 1,
            "timestamp": _stamp(start, clock + 7),
            "conversation_id": cid,
            "message_id": mid,
            "reasons": rng.sample(REASONS, rng.randint(1, 2)),
            "comment": pool.take(80) if rng.random() < 0.33 else None,
            "source": "ui",
        }
        writer.write(rng.randrange(2), record)
    writer.close()


def generate(root: Path, *, turns: int, ratings: int, flags: int, seed: int = 0, text_scale: float = 1.0) -> None:
    """Write a synthetic data dir at ``root`` (see the module docstring)."""
    rng = random.Random(seed)
    pool = TextPool(rng, scale=text_scale)
    made = generate_turns(root, turns, rng, pool)
    generate_ratings(root, made, ratings, rng, pool)
    generate_flags(root, made, flags, rng, pool)
    (root / "flags").mkdir(exist_ok=True)


_READ_SNIPPET = """
import importlib.util, sys, datasets
spec = importlib.util.spec_from_file_location("features", "feedback/features.py")  # not the feedback package
features = importlib.util.module_from_spec(spec)
spec.loader.exec_module(features)
RECORD_FEATURES = features.RECORD_FEATURES
datasets.disable_progress_bars()
root, cache = sys.argv[1], sys.argv[2]
for kind in ("turns", "ratings", "flags"):
    datasets.load_dataset("json", data_files=f"{root}/{kind}/*.jsonl", features=RECORD_FEATURES[kind],
                          cache_dir=cache, split="train")
"""
_EXPORT_SNIPPET = """
import argparse, sys
from feedback.cli import export
from feedback.logs import setup_logging
parser = argparse.ArgumentParser()
export.register(parser.add_subparsers())
args = parser.parse_args(["export", sys.argv[1], "--source", sys.argv[2], "--out", sys.argv[3], "--no-progress"])
setup_logging("WARNING")
sys.exit(args.func(args))
"""


_DUCKDB_SNIPPET = """
import sys, duckdb
connection = duckdb.connect()
connection.execute("SET enable_progress_bar = false")
for query in sys.argv[1:]:
    connection.sql(query).fetchall()
"""
# kept_reply is feedback.export.engine._member_of, written out: the timed process imports no more than it needs
_FLOOR_SNIPPET = """
import sys, duckdb, numpy as np, pyarrow as pa
connection = duckdb.connect(config={"preserve_insertion_order": False})
connection.execute("SET enable_progress_bar = false")
keys = np.sort(connection.sql(sys.argv[1]).to_arrow_table().column(0).to_numpy())
def kept_reply(given):
    values = given.to_numpy()
    return pa.array(keys[np.minimum(np.searchsorted(keys, values), len(keys) - 1)] == values)
connection.create_function("kept_reply", kept_reply, ["UBIGINT"], "BOOLEAN", type="arrow")
connection.execute(sys.argv[2])
connection.close()
"""
_IDS_SNIPPET = """
import sys, duckdb
duckdb.execute(
    f"COPY (SELECT conversation_id, message_id FROM read_json('{sys.argv[1]}', format = 'newline_delimited', "
    "columns = {'conversation_id': 'VARCHAR', 'message_id': 'VARCHAR'}) WHERE message_id IS NOT NULL) "
    f"TO '{sys.argv[2]}' (HEADER)"
)
"""
EXPORT_KINDS = ("turns", "ratings", "flags", "reviews", "deletions")
"""The record kinds an export reads."""


def export_columns() -> dict[str, object]:
    """Per record kind, the Arrow schema of the columns an export reads (``feedback.export.engine.COLUMNS``)."""
    sys.path.insert(0, str(ROOT))
    from feedback.export.engine import COLUMNS
    from feedback.features import record_schema

    return {kind: record_schema(kind, COLUMNS[kind]) for kind in EXPORT_KINDS}


def duckdb_type(kind) -> str:  # noqa: ANN001 - a pyarrow DataType
    """The DuckDB type of an Arrow type of the record schemas (``feedback.export.engine.duckdb_type``)."""
    from feedback.export.engine import duckdb_type as engine_type

    return engine_type(kind)


def _touch(expression: str, kind, depth: int = 0) -> str:  # noqa: ANN001 - a pyarrow DataType
    """A number computed from every value of ``expression`` (so DuckDB must parse all of it)."""
    import pyarrow as pa

    if pa.types.is_string(kind):
        return f"length({expression})"
    if pa.types.is_list(kind):
        item = f"x{depth}"
        return (
            f"coalesce(list_sum(list_transform({expression}, lambda {item}: "
            f"{_touch(item, kind.value_type, depth + 1)})), 0)"
        )
    if pa.types.is_struct(kind):
        return " + ".join(f"coalesce({_touch(f'{expression}.{f.name}', f.type, depth)}, 0)" for f in kind)
    return f"epoch({expression})" if pa.types.is_timestamp(kind) else f"({expression})"


def duckdb_queries(data: Path) -> list[str]:
    """One aggregate query per record kind with shards in ``data``: ``read_json`` of the export's
    columns and types, every value of every row looked at (see the module docstring)."""
    queries = []
    for kind, schema in export_columns().items():
        if not any((data / kind).glob("*.jsonl")):
            continue
        columns = ", ".join(f"'{f.name}': '{duckdb_type(f.type)}'" for f in schema)
        aggregates = ", ".join(
            f"max({f.name})" if str(f.type).startswith("timestamp") else f"sum({_touch(f.name, f.type)})"
            for f in schema
        )
        queries.append(
            f"SELECT count(*), {aggregates} FROM read_json('{data / kind}/*.jsonl', "
            f"format = 'newline_delimited', columns = {{{columns}}})"
        )
    return queries


def floor_query(data: Path, kept: Path, out: Path) -> list[str]:
    """The ``--floor`` statements: the 64-bit hashes of the ids of the replies in the CSV file ``kept``
    (``conversation_id``, ``message_id``), then a ``COPY`` that reads the turns' shards (the export's columns
    and types, as the baseline) and writes the ``sft`` rows of those replies as JSON lines to ``out``, with
    DuckDB's JSON writer and the export's own SQL for a row's columns (``feedback.export.engine.TRL_PROMPT``,
    ``assistant``). No rules, no splits, no removal of identical rows, no other record kind: the least an
    ``sft`` export that writes these rows must do beside reading the rest.

    The replies are picked by ``kept_reply(hash)``, a lookup in the sorted hashes (as the export picks the
    turns whose text it keeps), before their text is converted. A join would not do: DuckDB, underestimating
    ``read_json``'s rows, builds its hash table of every turn's text (3 GB, 6-9 s at 1M turns). A reply of other
    ids with the same hash would be written too, and the printed comparison would say so."""
    schema = export_columns()["turns"]  # (puts the repo on sys.path)
    from feedback.export.engine import TRL_PROMPT, assistant

    columns = ", ".join(f"'{f.name}': '{duckdb_type(f.type)}'" for f in schema)
    return [
        f"SELECT hash(conversation_id, message_id) FROM read_csv('{kept}', header = true, all_varchar = true)",
        f"""COPY (
            SELECT {TRL_PROMPT} AS prompt, {assistant("response")} AS completion
            FROM read_json('{data / "turns"}/*.jsonl', format = 'newline_delimited', columns = {{{columns}}})
            WHERE kept_reply(hash(conversation_id, message_id))
        ) TO '{out}' (FORMAT json)""",
    ]


def _line_digests(path: Path) -> list[bytes]:
    """The sorted BLAKE2b digests of a file's lines (equal lists: the same lines, in any order)."""
    import hashlib

    with path.open("rb") as lines:
        return sorted(hashlib.blake2b(line, digest_size=16).digest() for line in lines)


def run_floor(data: Path, work: Path, base: float) -> None:
    """``--floor``: run ``export sft --with-ids`` for the ids of its rows, then time :func:`floor_query` for them
    in a fresh process, and print its time, its ratio to the scan (``base`` seconds) and whether it wrote the
    export's lines (the same multiset of lines: it keeps no order)."""
    ids = work / "floor-ids"
    run_command(
        [sys.executable, "-m", "feedback", "export", "sft", "--source", str(data), "--out", str(ids), "--with-ids"]
        + ["--no-progress", "--log-level", "WARNING"],
        quiet=True,
    )
    kept = work / "floor-kept.csv"
    # the two ids of each row, by DuckDB in a child process (not every row's text parsed and held here); a
    # reviewer's correction has no message_id: not in this statement
    subprocess.run(
        [sys.executable, "-c", _IDS_SNIPPET, f"{ids}/*.jsonl", str(kept)],
        check=True,
    )
    with kept.open("rb") as lines:
        rows = sum(1 for _ in lines) - 1
    plain = work / "floor-plain"
    run_command(
        [sys.executable, "-m", "feedback", "export", "sft", "--source", str(data), "--out", str(plain)]
        + ["--test-size", "0", "--no-progress", "--log-level", "WARNING"],
        quiet=True,
    )
    out = work / "floor.jsonl"
    # made in a child process, as the baseline's queries (this one's RSS is every child's floor)
    made = subprocess.run(
        [sys.executable, __file__, "--print-floor-query", str(data), str(kept), str(out)],
        capture_output=True,
        check=True,
    )
    seconds, cpu, rss = run_measured([_FLOOR_SNIPPET, *json.loads(made.stdout)])
    same = _line_digests(out) == _line_digests(plain / "train.jsonl")
    print(
        f"floor: read the turns, write the sft rows ({rows}, no rules): {seconds:6.1f} s (cpu {cpu:5.1f} s)   "
        f"{seconds / base:4.2f}x duckdb   peak RSS {rss:5.2f} GiB   same lines as the export: {same}   [{load()}]",
        flush=True,
    )
    for path in (ids, plain):
        shutil.rmtree(path, ignore_errors=True)
    out.unlink(missing_ok=True)


def load() -> str:
    """The 1-minute load average and the core count, e.g. ``load 1.23/2``."""
    return f"load {os.getloadavg()[0]:.2f}/{os.cpu_count()}"


def run_measured(args: list[str], *, quiet: bool = False) -> tuple[float, float, float]:
    """Run ``python -c ...args`` in a fresh process; return (wall seconds, CPU seconds, peak RSS in GiB)."""
    return run_command([sys.executable, "-c", *args], quiet=quiet)


def run_command(command: list[str], *, quiet: bool = False) -> tuple[float, float, float]:
    """Run ``command`` from the repo root; return (wall seconds, CPU seconds, peak RSS in GiB) of its process.

    Raises:
        RuntimeError: when it exits with an error.
    """
    started = time.perf_counter()
    output = subprocess.DEVNULL if quiet else None
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=output)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise RuntimeError(f"{command[1:]} failed with exit code {process.returncode}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024 / 1024


def help_seconds(runs: int = 5) -> float:
    """The median wall time of ``python -m feedback export --help``."""
    times = sorted(
        run_command([sys.executable, "-m", "feedback", "export", "--help"], quiet=True)[0] for _ in range(runs)
    )
    return times[len(times) // 2]


def _size(root: Path) -> str:
    total = sum(path.stat().st_size for path in root.rglob("*.jsonl"))
    return f"{total / 1024**3:.2f} GiB in {sum(1 for _ in root.rglob('*.jsonl'))} shards"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=1_000_000, help="number of turns (default 1,000,000)")
    parser.add_argument("--ratings", type=int, help="number of rating events (default: as many as turns)")
    parser.add_argument("--flags", type=int, help="number of flags (default: 5%% of turns)")
    parser.add_argument("--data", type=Path, help="data dir to use or create (default: a temp dir, removed)")
    parser.add_argument("--formats", default="sft,dpo,kto,flags", help="comma-separated formats to time")
    parser.add_argument(
        "--runs",
        default="command,module",
        help="how to run each export: command (python -m feedback export), module, or both",
    )
    parser.add_argument("--no-load-dataset", action="store_true", help="skip the datasets.load_dataset read")
    parser.add_argument(
        "--text-scale",
        type=float,
        default=1.0,
        help="make every message and reply this many times as long (default 1: ~3.4 KB per turn)",
    )
    parser.add_argument("--shard-bytes", type=int, default=SHARD_BYTES, help="shard size (default 8 MiB, as the app)")
    parser.add_argument("--generate-only", action="store_true", help="write the data dir (--data) and stop")
    parser.add_argument("--show-query", action="store_true", help="print the DuckDB baseline's SQL")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also time the least statement that writes the sft export's rows (read the turns, write those rows)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-export-", dir=args.data.parent if args.data else None))
    data = args.data or work / "data"
    try:
        if not (data / "turns").is_dir():
            started = time.perf_counter()
            # in a child process: the generator holds every reply's ids, and a child's ru_maxrss starts
            # from its parent's RSS (it is a copy of it until exec), so this process stays small
            run_command(
                [
                    sys.executable,
                    __file__,
                    "--generate-only",
                    "--data",
                    str(data),
                    "--turns",
                    str(args.turns),
                    "--text-scale",
                    str(args.text_scale),
                    "--shard-bytes",
                    str(args.shard_bytes),
                    "--seed",
                    str(args.seed),
                    *(["--ratings", str(args.ratings)] if args.ratings else []),
                    *(["--flags", str(args.flags)] if args.flags else []),
                ]
            )
            print(f"generate: {time.perf_counter() - started:8.1f} s (text scale {args.text_scale})", flush=True)
        print(f"data: {data} ({_size(data)})", flush=True)
        print(f"python -m feedback export --help: {help_seconds():5.2f} s (median of 5)   [{load()}]", flush=True)
        # made in a child process: importing pyarrow here would raise this process's RSS (~165 MB), the floor of
        # every child's ru_maxrss
        made = subprocess.run([sys.executable, __file__, "--print-queries", str(data)], capture_output=True, check=True)
        queries = json.loads(made.stdout)
        if args.show_query:
            print("\n".join(f"{query};" for query in queries), flush=True)
        # twice: the first may read the files from disk, the exports after it find them in the page cache
        for run in ("first", "second"):
            base, base_cpu, rss = run_measured([_DUCKDB_SNIPPET, *queries])
            print(
                f"duckdb read_json scan ({run}): {base:6.1f} s (cpu {base_cpu:5.1f} s)   peak RSS {rss:5.2f} GiB   "
                f"[{load()}]",
                flush=True,
            )
        read = None
        if not args.no_load_dataset:
            read, read_cpu, rss = run_measured([_READ_SNIPPET, str(data), str(work / "cache")])
            shutil.rmtree(work / "cache", ignore_errors=True)
            print(
                f"load_dataset json read: {read:6.1f} s (cpu {read_cpu:5.1f} s)   {read / base:4.2f}x duckdb "
                f"(cpu {read_cpu / base_cpu:4.2f}x)   "
                f"peak RSS {rss:5.2f} GiB   [{load()}]",
                flush=True,
            )
        for fmt in args.formats.split(","):
            out = str(work / f"out-{fmt}")
            command = [
                sys.executable,
                "-m",
                "feedback",
                "export",
                fmt,
                "--source",
                str(data),
                "--out",
                out,
                "--no-progress",
                "--log-level",
                "WARNING",
            ]
            runs = {
                "command": lambda command=command: run_command(command, quiet=True),
                "module": lambda fmt=fmt, out=out: run_measured([_EXPORT_SNIPPET, fmt, str(data), out], quiet=True),
            }
            for label in args.runs.split(","):
                seconds, cpu, rss = runs[label]()
                versus_read = f"{seconds / read:4.2f}x load_dataset   " if read else ""
                print(
                    f"export {fmt:5} {label:7}: {seconds:6.1f} s (cpu {cpu:5.1f} s)   {seconds / base:4.2f}x duckdb "
                    f"(cpu {cpu / base_cpu:4.2f}x)   {versus_read}peak RSS {rss:5.2f} GiB   [{load()}]",
                    flush=True,
                )
            shutil.rmtree(out, ignore_errors=True)
        if args.floor:  # last: it holds the rows' ids and lines, and a child's peak RSS starts from this process's
            run_floor(data, work, base)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _generate_main(argv: list[str]) -> int:
    """``--generate-only``: write the data dir and stop (run by :func:`main` in a child process)."""
    global SHARD_BYTES  # noqa: PLW0603 - read by ShardWriter at each write
    parser = argparse.ArgumentParser()
    for name, kind, default in (
        ("--turns", int, 1_000_000),
        ("--ratings", int, None),
        ("--flags", int, None),
        ("--text-scale", float, 1.0),
        ("--shard-bytes", int, SHARD_BYTES),
        ("--seed", int, 0),
    ):
        parser.add_argument(name, type=kind, default=default)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--generate-only", action="store_true")
    args = parser.parse_args(argv)
    SHARD_BYTES = args.shard_bytes
    started = time.perf_counter()
    generate(
        args.data,
        turns=args.turns,
        ratings=args.ratings or args.turns,
        flags=args.flags or args.turns // 20,
        seed=args.seed,
        text_scale=args.text_scale,
    )
    print(f"generated in {time.perf_counter() - started:.1f} s: {_size(args.data)}", flush=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--print-queries"]:
        print(json.dumps(duckdb_queries(Path(sys.argv[2]))))
        sys.exit(0)
    if sys.argv[1:2] == ["--print-floor-query"]:
        print(json.dumps(floor_query(*map(Path, sys.argv[2:5]))))
        sys.exit(0)
    sys.exit(_generate_main(sys.argv[1:]) if "--generate-only" in sys.argv[1:] else main())
