"""Records of a data dir and of a test Hub repo, compared as multisets; chats driven through an app's API."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
from conftest import read_records
from gradio_client import Client

from feedback.export.read import records_to_jsonl
from support.hub import HubServer

RECORD_DIRS = ("turns", "ratings", "flags")


def repo_records(hub: HubServer, repo_id: str, kinds: tuple[str, ...] = RECORD_DIRS) -> dict[str, list[dict]]:
    """Every record in the repo's files (Parquet in day partitions, JSONL of the flat layout), by kind,
    as the JSON the data dir holds."""
    files = hub.files(repo_id)
    records: dict[str, list[dict]] = {kind: [] for kind in kinds}
    for path, data in sorted(files.items()):
        kind = path.split("/", 1)[0]
        if kind in records and path.endswith(".jsonl"):
            records[kind].extend(json.loads(line) for line in data.decode().splitlines() if line.strip())
        elif kind in records and path.endswith(".parquet"):
            rows = pq.read_table(io.BytesIO(data)).to_pylist()
            records[kind].extend(json.loads(line) for line in records_to_jsonl(rows).splitlines())
    return records


def local_records(data_dir: Path) -> dict[str, list[dict]]:
    return {kind: read_records(data_dir, kind) for kind in RECORD_DIRS}


def same_records(a: dict[str, list[dict]], b: dict[str, list[dict]]) -> bool:
    key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
    return all(Counter(map(key, a[k])) == Counter(map(key, b[k])) for k in RECORD_DIRS)


def chat_rate_flag(url: str, n: int) -> None:
    client = Client(url, verbose=False)
    try:
        _chat_rate_flag(client, n)
    finally:
        client.close()


def _chat_rate_flag(client: Client, n: int) -> None:
    for i in range(n):
        reply = client.predict({"text": f"message {i}", "files": []}, "", api_name="/chat")
        cid, mid = reply["conversation_id"], reply["message_id"]
        client.predict(cid, mid, "like" if i % 2 else "dislike", api_name="/rate")
        if i % 3 == 0:
            client.predict(cid, mid, ["Inaccurate", "Other"], "check this", api_name="/flag")
