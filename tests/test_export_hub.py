"""Exports and the Hub (the test-suite server): a dataset repo as the source, and --push-to-hub."""

from __future__ import annotations

import io
import json

import pyarrow.parquet as pq
import pytest
import yaml
from huggingface_hub import HfApi, constants
from support.export_log import SCENARIOS, Log, many_conversations

from feedback.export import ExportOptions, export_data_dir, resolve_source, run_export

TOKEN = "hf_test"
LOGS = "alice/chat-logs"


pytestmark = pytest.mark.hub_options(lfs_threshold=2048)  # small files go through LFS too


@pytest.fixture(autouse=True)
def _hub_in_env(hub, tmp_path, monkeypatch):
    """``HF_ENDPOINT`` and ``HF_TOKEN`` point at the test Hub, and the Hub cache is in ``tmp_path``."""
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))


@pytest.fixture
def pushed_logs(tmp_path, hub):
    """A data dir with every example log and 40 more conversations, uploaded to ``LOGS``."""
    log = Log()
    for build in SCENARIOS.values():
        build(log)
    many_conversations(log)
    data_dir = log.write(tmp_path / "data")
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    api.create_repo(LOGS, repo_type="dataset", private=True)
    api.upload_folder(repo_id=LOGS, repo_type="dataset", folder_path=data_dir)
    return data_dir


@pytest.mark.parametrize("fmt", ["sft", "dpo", "kto", "flags"])
def test_export_from_the_hub_equals_export_from_the_data_dir_it_was_pushed_from(tmp_path, pushed_logs, fmt):
    options = ExportOptions(test_size=0.3, seed=5, include_ids=True)
    local = export_data_dir(fmt, pushed_logs, options)
    remote = run_export(fmt, LOGS, tmp_path / "out", options, progress=False)
    for split in ("train", "test"):
        assert remote.rows(split) == local.rows(split)
        lines = (tmp_path / "out" / f"{split}.jsonl").read_text().splitlines()
        assert [json.loads(line) for line in lines] == local.rows(split)
    assert {k: v for k, v in remote.stats.items() if k != "records"} == {
        k: v for k, v in local.stats.items() if k != "records"
    }


def test_a_repo_source_is_read_in_place_not_downloaded(tmp_path, hub, pushed_logs):
    folder = resolve_source(LOGS)
    assert not any(path.is_file() for path in folder.rglob("*") if not path.name.startswith("."))
    assert not (tmp_path / "hub-cache").exists()


def test_an_unknown_repo_is_a_clear_error(hub):
    with pytest.raises(FileNotFoundError, match="not a local data dir"):
        resolve_source("alice/no-such-repo")


def test_push_to_hub_uploads_the_splits_and_a_card(tmp_path, hub, pushed_logs):
    export = run_export(
        "dpo",
        str(pushed_logs),
        tmp_path / "out",
        ExportOptions(test_size=0.3, seed=5),
        push_to_hub="alice/chat-dpo",
        progress=False,
    )
    files = hub.files("alice/chat-dpo")
    assert {"README.md", "data/train-00000-of-00001.parquet", "data/test-00000-of-00001.parquet"} <= set(files)
    for split in ("train", "test"):
        api = HfApi(endpoint=hub.endpoint, token=TOKEN)
        path = api.hf_hub_download(
            "alice/chat-dpo", f"data/{split}-00000-of-00001.parquet", repo_type="dataset", cache_dir=tmp_path / "cache"
        )
        assert pq.read_table(path).to_pylist() == export.rows(split)
    card = files["README.md"].decode()
    metadata = yaml.safe_load(io.StringIO(card.split("---")[1]))
    assert metadata["configs"][0]["data_files"][0] == {"split": "train", "path": "data/train-*"}
    assert [f["name"] for f in metadata["dataset_info"]["features"]] == ["prompt", "chosen", "rejected"]
    assert "same conversation" in card and '"test_size": 0.3' in card
