"""The README's "Past one machine" queries, run as written against a repo on the test Hub, compared with
``python -m feedback export dpo`` on the same repo (``make test-spark``; marked ``spark``, so ``make test``
never runs it).

The repo is a data dir of generated conversations pushed by the app's own push code
(``feedback.hub.transfer.push_folder``: Parquet in day partitions, the card's configs). Each reply has a
text of its own and each record a time of its own, so the queries' ties and identical rows cannot occur;
it does hold what the README says the queries leave out: reviewers' corrected replies, and disliked
replies flagged only as ``Inaccurate``/``Off-topic``. The test asserts that the export's pairs are
exactly the query's pairs plus those two kinds, each of which occurs.

- Spark: the README's Python block, with ``OWNER/NAME`` the test repo and ``dpo-pairs`` a folder in
  ``tmp_path``, run by ``python`` with pyspark in local mode; its ``huggingface`` data source
  (``pyspark_huggingface``) reads the configs from the test Hub (``HF_ENDPOINT``, ``HF_TOKEN``).
- DuckDB: the README's SQL block with ``hf://datasets/OWNER/NAME/`` replaced by a local snapshot of the
  same repo (``huggingface_hub.snapshot_download`` from the test Hub): DuckDB's ``httpfs`` extension,
  which ``hf://`` paths need, is downloaded at run time and cannot be here.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import TOKEN, hub_env
from huggingface_hub import HfApi, snapshot_download
from support.records import make_turn

from feedback.export.read import records_to_jsonl
from feedback.hub.transfer import push_folder
from feedback.rules import QUALITY_REASONS
from schemas.records import ChatMessage, Flag, Rating, Review, Turn

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parent.parent
REPO = "test-user/chat-logs"
START = datetime(2026, 3, 2, 9, tzinfo=UTC)
REASONS = (
    ("Harmful",),
    ("Inaccurate",),
    ("Off-topic",),
    ("Inaccurate", "Off-topic"),
    ("Inaccurate", "Harmful"),
    ("Other",),
)


def readme_block(language: str) -> str:
    """The first ```language block after the README's "Past one machine" paragraph starts."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("**Past one machine.**") :]
    match = re.search(rf"```{language}\n(.*?)```", section, re.DOTALL)
    assert match, f"no {language} block in README's Past one machine"
    return match.group(1)


def build_log(seed: int = 7) -> dict[str, list]:
    """Conversations with regenerated replies, ratings (changed, undone), flags and reviews; every text and
    every time distinct. Returns the records by kind."""
    rng = random.Random(seed)
    clock = iter(START + timedelta(seconds=n) for n in range(10**6))
    records: dict[str, list] = {"turns": [], "ratings": [], "flags": [], "reviews": []}
    for c in range(60):
        cid = f"conv-{c:04d}"
        history = [ChatMessage(role="system", content=f"system {c}")] if c % 4 == 0 else []
        for index in range(rng.randint(1, 3)):
            # two conversations in three open with the same question: never paired across conversations
            question = f"shared question {c % 3}" if index == 0 and c % 2 else f"question {c}.{index}"
            messages = [*history, ChatMessage(role="user", content=question)]
            replies = []
            for r in range(rng.choice((1, 2, 2, 3, 4))):
                turn = make_turn(
                    cid,
                    f"msg-{c:04d}-{index}-{r}",
                    index=index,
                    prompt=messages,
                    response=f"reply {c}.{index}.{r}",
                    model="m1",
                    latency_ms=5.0,
                    regenerated_from=replies[-1].message_id if replies else None,
                    timestamp=next(clock),
                )
                records["turns"].append(turn)
                replies.append(turn)
            for turn in replies:
                rate(records, rng, turn, clock)
            history = [*messages, ChatMessage(role="assistant", content=replies[-1].response)]
    return records


def rate(records: dict[str, list], rng: random.Random, turn: Turn, clock) -> None:  # noqa: ANN001 - an iterator
    """Rate ``turn`` (maybe change or undo it), maybe flag it and review the flag."""
    ids = {"conversation_id": turn.conversation_id, "message_id": turn.message_id}
    if rng.random() < 0.85:
        value = rng.choice(("like", "dislike", "dislike"))
        records["ratings"].append(Rating(**ids, rating=value, timestamp=next(clock)))
        roll = rng.random()
        if roll < 0.15:
            records["ratings"].append(
                Rating(**ids, rating="like" if value == "dislike" else "dislike", timestamp=next(clock))
            )
        elif roll < 0.25:
            records["ratings"].append(Rating(**ids, rating=None, timestamp=next(clock)))
    if rng.random() < 0.3:
        records["flags"].append(Flag(**ids, reasons=rng.choice(REASONS), comment="why", timestamp=next(clock)))
        roll = rng.random()
        if roll < 0.5:
            fix = f"corrected {turn.message_id}" if rng.random() < 0.5 else None
            records["reviews"].append(
                Review(
                    **ids,
                    decision=rng.choice(("dismissed", "confirmed", "needs-fix")),
                    corrected_reply=fix,
                    reviewer="ann",
                    timestamp=next(clock),
                )
            )


def write_data_dir(records: dict[str, list], data_dir: Path) -> None:
    """The records as ``FeedbackStore`` shards: two replicas, two shards each per kind."""
    for kind, group in records.items():
        folder = data_dir / kind
        folder.mkdir(parents=True, exist_ok=True)
        for part in range(4):
            name = f"20260302T0900{part:02d}000000Z-replica{part % 2:04d}-{part:06d}.jsonl"
            (folder / name).write_bytes(records_to_jsonl(group[part::4]))


def as_row(prompt: list, chosen: list, rejected: list) -> str:
    """A DPO row's three columns as canonical JSON (role and content only)."""

    def messages(items: list) -> list:
        return [{"role": m["role"], "content": m["content"]} for m in items]

    return json.dumps([messages(prompt), messages(chosen), messages(rejected)], sort_keys=True)


def run(code: list[str], env: dict[str, str], cwd: Path, timeout: float = 900) -> str:
    result = subprocess.run(
        [sys.executable, *code], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout


@pytest.fixture
def repo(hub, tmp_path) -> dict[str, list]:
    """The generated log pushed to ``REPO`` on the test Hub; returns its records."""
    records = build_log()
    write_data_dir(records, tmp_path / "data")
    push_folder(tmp_path / "data", REPO, api=HfApi(endpoint=hub.endpoint, token=TOKEN))
    return records


@pytest.fixture
def exported(repo, hub, tmp_path) -> dict[str, list[dict]]:
    """``python -m feedback export dpo`` of ``REPO`` (read from the test Hub), one split, with ids:
    the rows by kind ``rating`` (a liked and a disliked reply), ``correction``, ``quality_flag``."""
    env = {**os.environ, **hub_env(hub, tmp_path), "PYTHONPATH": str(ROOT)}
    run(
        [
            "-m",
            "feedback",
            "export",
            "dpo",
            "--source",
            REPO,
            "--out",
            str(tmp_path / "export"),
            "--test-size",
            "0",
            "--with-ids",
            "--no-progress",
        ],
        env,
        ROOT,
    )
    rows = [json.loads(line) for line in (tmp_path / "export" / "train.jsonl").read_text().splitlines()]
    assert not (tmp_path / "export" / "test.jsonl").exists()
    latest: dict[str, Review] = {}
    for review in sorted(repo["reviews"], key=lambda r: r.timestamp):
        latest[review.message_id] = review
    flags: dict[str, set] = {}
    for flag in repo["flags"]:
        flags.setdefault(flag.message_id, set()).update(flag.reasons)
    kinds: dict[str, list[dict]] = {"rating": [], "correction": [], "quality_flag": []}
    for row in rows:
        rejected = row["rejected_id"]
        standing = rejected in flags and (rejected not in latest or latest[rejected].decision != "dismissed")
        if row["chosen_id"] is None:
            kinds["correction"].append(row)
        elif standing:  # the README's queries leave out every reply with a flag not dismissed
            assert flags[rejected] <= set(QUALITY_REASONS), row  # the export keeps only quality-flagged dislikes
            kinds["quality_flag"].append(row)
        else:
            kinds["rating"].append(row)
    print("export dpo rows:", {kind: len(group) for kind, group in kinds.items()})  # shown with pytest -s
    return kinds


@pytest.mark.timeout(1800)  # a JVM and Spark's Python workers on a busy 2-core machine
def test_readme_spark_query_on_the_test_hub_gives_the_exports_rating_pairs(hub, tmp_path, exported):
    pytest.importorskip("pyspark", reason="make test-spark installs pyspark (requirements-spark.txt)")
    pytest.importorskip("pyspark_huggingface", reason="make test-spark installs pyspark_huggingface")
    code = readme_block("python").replace("OWNER/NAME", REPO).replace('"dpo-pairs"', repr(str(tmp_path / "pairs")))
    env = {
        **os.environ,
        **hub_env(hub, tmp_path),
        "HF_DATASETS_CACHE": str(tmp_path / "datasets-cache"),
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "PYSPARK_SUBMIT_ARGS": "--master local[2] --conf spark.ui.enabled=false pyspark-shell",
        "SPARK_LOCAL_DIRS": str(tmp_path / "spark-local"),
    }
    run(["-c", code], env, tmp_path)
    table = pq.read_table(tmp_path / "pairs")
    assert table.column_names == ["prompt", "chosen", "rejected"]
    spark_rows = [as_row(r["prompt"], r["chosen"], r["rejected"]) for r in table.to_pylist()]
    export_rows = {as_row(r["prompt"], r["chosen"], r["rejected"]) for r in exported["rating"]}
    assert len(spark_rows) == len(set(spark_rows))  # distinct texts: no identical rows to deduplicate
    assert set(spark_rows) == export_rows
    assert len(export_rows) >= 20
    assert exported["correction"] and exported["quality_flag"]  # what the query leaves out occurs here


def test_readme_duckdb_query_on_a_snapshot_of_the_repo_gives_the_exports_rating_pairs(hub, tmp_path, exported):
    snapshot = snapshot_download(
        REPO, repo_type="dataset", endpoint=hub.endpoint, token=TOKEN, local_dir=tmp_path / "snapshot"
    )
    query = readme_block("sql").replace("'hf://datasets/OWNER/NAME/", f"'{snapshot}/")
    assert "FROM 'hf://" not in query
    rows = duckdb.connect().sql(query).fetchall()
    duckdb_rows = [as_row(prompt, chosen, rejected) for prompt, chosen, rejected in rows]
    assert len(duckdb_rows) == len(set(duckdb_rows))
    assert set(duckdb_rows) == {as_row(r["prompt"], r["chosen"], r["rejected"]) for r in exported["rating"]}
    assert exported["correction"] and exported["quality_flag"]
