"""Reading what a test Hub repo holds, for assertions: its records (by kind, as the data dir's JSON) and
the text of every file at any revision (Parquet decoded: compressed bytes never show an id)."""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

if TYPE_CHECKING:
    from support.hub.server import HubServer


def canonical(record: dict) -> str:
    """A record as sorted JSON (the same for a data dir's line and a Parquet row of it)."""
    return json.dumps(record, sort_keys=True)


def file_rows(path: str, data: bytes) -> list[dict]:
    """The rows of one repo file (Parquet or JSONL) as the data dir's JSON would hold them."""
    from feedback.export.read import records_to_jsonl

    if path.endswith(".parquet"):
        rows = pq.read_table(io.BytesIO(data)).to_pylist()
        return [json.loads(line) for line in records_to_jsonl(rows).splitlines()]
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


def repo_state(hub: HubServer, repo_id: str, kinds: tuple[str, ...], revision: str = "main") -> dict[str, Counter]:
    """Every record of ``kinds`` in the repo at ``revision``, as a multiset of canonical JSON per kind."""
    state: dict[str, Counter] = {kind: Counter() for kind in kinds}
    for path, data in hub.files(repo_id, revision).items():
        kind = path.split("/", 1)[0]
        if kind in state and (path.endswith(".parquet") or path.endswith(".jsonl")):
            state[kind].update(canonical(row) for row in file_rows(path, data))
    return state


def file_text(path: str, data: bytes) -> str:
    """What a file says: a Parquet file's rows as JSON, any other file's bytes as text."""
    if path.endswith(".parquet"):
        try:
            return json.dumps(pq.read_table(io.BytesIO(data)).to_pylist(), default=str)
        except Exception:  # noqa: BLE001 - not Parquet after all: its bytes
            pass
    return data.decode("utf-8", "replace")


def revisions(hub: HubServer, repo_id: str, repo_type: str = "dataset") -> list[str]:
    """Every commit the repo still holds (any branch), oldest first."""
    return [commit["oid"] for commit in hub.commits(repo_id, repo_type)]
