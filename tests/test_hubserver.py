"""Tests of the test-suite Hub server (tests/support/hub/) driven by the real Hub clients."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    HfFileSystem,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from support.hub import HubServer, git_blob_sha1, running_hub
from support.hub.storage import GITATTRIBUTES

TOKEN = "hf_test"
REPO = "alice/feedback"


pytestmark = pytest.mark.hub_options(tree_page_size=3, commits_page_size=2, lfs_threshold=1024)
"""Tiny listing pages (pagination is exercised) and a 1 KiB LFS threshold."""


@pytest.fixture
def api(hub):
    return HfApi(endpoint=hub.endpoint, token=TOKEN)


@pytest.fixture
def repo(api):
    api.create_repo(REPO, repo_type="dataset")
    return REPO


def add(path: str, data: bytes) -> CommitOperationAdd:
    return CommitOperationAdd(path_in_repo=path, path_or_fileobj=data)


def download(hub: HubServer, tmp_path: Path, filename: str, revision: str | None = None) -> bytes:
    path = hf_hub_download(
        REPO,
        filename,
        repo_type="dataset",
        revision=revision,
        endpoint=hub.endpoint,
        token=TOKEN,
        cache_dir=tmp_path / "cache",
    )
    return Path(path).read_bytes()


# ------------------------------------------------------------------------------------ repos


def test_create_repo_twice_with_exist_ok_and_types(hub, api):
    url = api.create_repo(REPO, repo_type="dataset")
    assert url == f"{hub.endpoint}/datasets/{REPO}"
    assert api.create_repo(REPO, repo_type="dataset", exist_ok=True).repo_id == REPO
    with pytest.raises(HfHubHTTPError) as excinfo:
        api.create_repo(REPO, repo_type="dataset")
    assert excinfo.value.response.status_code == 409

    api.create_repo("alice/model", private=True)
    api.create_repo("alice/space", repo_type="space", space_sdk="gradio")
    assert api.repo_info("alice/model").private is True
    assert api.repo_info(REPO, repo_type="dataset").private is False
    assert api.repo_exists("alice/space", repo_type="space")


def test_model_repo_urls_have_no_type_prefix(hub, api, tmp_path):
    api.create_repo("alice/model")
    api.upload_file(path_or_fileobj=b"w", path_in_repo="sub/w.txt", repo_id="alice/model")
    path = hf_hub_download("alice/model", "sub/w.txt", endpoint=hub.endpoint, token=TOKEN, cache_dir=tmp_path)
    assert Path(path).read_bytes() == b"w" == hub.files("alice/model", repo_type="model")["sub/w.txt"]
    assert ("HEAD", "/alice/model/resolve/main/sub/w.txt", 200) in hub.request_log


def test_new_repo_starts_with_gitattributes_commit(hub, api, repo):
    assert hub.files(repo) == {".gitattributes": GITATTRIBUTES}
    [initial] = hub.commits(repo)
    assert initial["summary"] == "initial commit" and initial["parent"] is None
    assert api.repo_info(repo, repo_type="dataset").sha == initial["oid"] == hub.head(repo)


def test_delete_repo(api, repo):
    api.delete_repo(repo, repo_type="dataset")
    assert not api.repo_exists(repo, repo_type="dataset")
    api.delete_repo(repo, repo_type="dataset", missing_ok=True)


def test_private_repo_is_hidden_without_token(hub, api):
    api.create_repo("alice/secret", repo_type="dataset", private=True)
    assert HfApi(endpoint=hub.endpoint, token=TOKEN).repo_exists("alice/secret", repo_type="dataset")
    assert not HfApi(endpoint=hub.endpoint, token=False).repo_exists("alice/secret", repo_type="dataset")


def test_writes_need_a_token(hub):
    with pytest.raises(HfHubHTTPError) as excinfo:
        HfApi(endpoint=hub.endpoint, token=False).create_repo("alice/anon", repo_type="dataset")
    assert excinfo.value.response.status_code == 401


# ---------------------------------------------------------------------------------- commits


def test_upload_file_folder_and_create_commit(hub, api, repo, tmp_path):
    api.upload_file(path_or_fileobj=b"one\n", path_in_repo="notes/one.txt", repo_id=repo, repo_type="dataset")
    folder = tmp_path / "folder"
    (folder / "turns").mkdir(parents=True)
    (folder / "turns" / "a.jsonl").write_bytes(b'{"a": 1}\n')
    (folder / "turns" / "b.jsonl").write_bytes(b'{"b": 2}\n')
    api.upload_folder(folder_path=folder, repo_id=repo, repo_type="dataset", commit_message="folder")
    api.create_commit(
        repo,
        [add("x.txt", b"x"), add("y.txt", b"yy"), CommitOperationDelete("notes/one.txt")],
        commit_message="several",
        commit_description="details",
        repo_type="dataset",
    )

    assert hub.files(repo) == {
        ".gitattributes": GITATTRIBUTES,
        "turns/a.jsonl": b'{"a": 1}\n',
        "turns/b.jsonl": b'{"b": 2}\n',
        "x.txt": b"x",
        "y.txt": b"yy",
    }
    last = hub.commits(repo)[-1]
    assert (last["summary"], last["description"]) == ("several", "details")
    assert (last["files_added"], last["files_deleted"], last["bytes_uploaded"]) == (2, 1, 3)
    assert hub.total_upload_bytes == 4 + 9 + 9 + 3


def test_list_repo_files_follows_pagination(hub, api, repo):
    api.create_commit(
        repo, [add(f"turns/{i:02}.jsonl", b"{}\n") for i in range(7)], commit_message="many", repo_type="dataset"
    )
    files = api.list_repo_files(repo, repo_type="dataset")
    assert sorted(files) == [".gitattributes"] + [f"turns/{i:02}.jsonl" for i in range(7)]
    tree_pages = [r for r in hub.request_log if "/tree/" in r.path]
    assert len(tree_pages) == 3  # 1 directory + 8 files, 3 per page

    top = api.list_repo_tree(repo, repo_type="dataset")
    assert sorted(entry.path for entry in top) == [".gitattributes", "turns"]
    inside = api.list_repo_tree(repo, path_in_repo="turns", repo_type="dataset")
    assert len(list(inside)) == 7


def test_list_repo_commits_newest_first_across_pages(hub, api, repo):
    for i in range(3):
        api.upload_file(
            path_or_fileobj=f"v{i}".encode(),
            path_in_repo="f.txt",
            repo_id=repo,
            repo_type="dataset",
            commit_message=f"commit {i}",
        )
    commits = api.list_repo_commits(repo, repo_type="dataset")
    assert [c.title for c in commits] == ["commit 2", "commit 1", "commit 0", "initial commit"]
    assert [c.commit_id for c in commits] == [c["oid"] for c in reversed(hub.commits(repo))]


def test_old_commits_are_immutable_snapshots(hub, api, repo, tmp_path):
    old = api.upload_file(path_or_fileobj=b"first", path_in_repo="log.jsonl", repo_id=repo, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"second", path_in_repo="log.jsonl", repo_id=repo, repo_type="dataset")
    assert download(hub, tmp_path, "log.jsonl") == b"second"
    assert download(hub, tmp_path, "log.jsonl", revision=old.oid) == b"first"
    assert hub.files(repo, revision=old.oid)["log.jsonl"] == b"first"
    assert api.repo_info(repo, repo_type="dataset", revision=old.oid).sha == old.oid


def test_unchanged_file_is_not_recommitted(hub, api, repo):
    api.upload_file(path_or_fileobj=b"same", path_in_repo="a.txt", repo_id=repo, repo_type="dataset")
    api.upload_file(path_or_fileobj=b"same", path_in_repo="a.txt", repo_id=repo, repo_type="dataset")
    assert len(hub.commits(repo)) == 2  # preupload returned the current oid => client skipped


def test_stale_parent_commit_is_rejected(hub, api, repo):
    parent = hub.head(repo)
    api.create_commit(repo, [add("a.txt", b"a")], commit_message="a", repo_type="dataset", parent_commit=parent)
    with pytest.raises(HfHubHTTPError) as excinfo:
        api.create_commit(repo, [add("b.txt", b"b")], commit_message="b", repo_type="dataset", parent_commit=parent)
    assert excinfo.value.response.status_code == 412
    assert "b.txt" not in hub.files(repo)


def test_lfs_upload_and_dedup(hub, api, repo, tmp_path):
    big = os.urandom(4096)
    api.upload_file(path_or_fileobj=big, path_in_repo="blobs/one.bin", repo_id=repo, repo_type="dataset")
    api.upload_file(path_or_fileobj=big, path_in_repo="blobs/two.bin", repo_id=repo, repo_type="dataset")
    puts = [r for r in hub.request_log if r.method == "PUT"]
    assert len(puts) == 1  # the second batch answer had no upload action
    assert [c["bytes_uploaded"] for c in hub.commits(repo)[1:]] == [4096, 0]

    [info] = api.get_paths_info(repo, ["blobs/two.bin"], repo_type="dataset")
    sha256 = hashlib.sha256(big).hexdigest()
    assert info.lfs.sha256 == sha256 and info.size == 4096
    meta = get_hf_file_metadata(
        hf_hub_url(REPO, "blobs/two.bin", repo_type="dataset", endpoint=hub.endpoint), token=TOKEN
    )
    assert meta.etag == sha256
    assert download(hub, tmp_path, "blobs/two.bin") == big


def test_concurrent_commits_from_threads_all_land(hub, api, repo):
    def upload(i: int) -> None:
        client = HfApi(endpoint=hub.endpoint, token=TOKEN)
        client.upload_file(
            path_or_fileobj=f"row {i}\n".encode(), path_in_repo=f"turns/{i}.jsonl", repo_id=repo, repo_type="dataset"
        )

    threads = [threading.Thread(target=upload, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    files = hub.files(repo)
    assert {f"turns/{i}.jsonl" for i in range(8)} <= set(files)
    commits = hub.commits(repo)
    assert len(commits) == 9
    assert [c["parent"] for c in commits[1:]] == [c["oid"] for c in commits[:-1]]  # a linear history


def test_state_survives_a_restart(tmp_path):
    with running_hub(tmp_path / "hub") as first:
        api = HfApi(endpoint=first.endpoint, token=TOKEN)
        api.create_repo(REPO, repo_type="dataset")
        info = api.upload_file(path_or_fileobj=b"kept", path_in_repo="k.txt", repo_id=REPO, repo_type="dataset")
    with running_hub(tmp_path / "hub") as second:
        assert second.head(REPO) == info.oid
        assert second.files(REPO)["k.txt"] == b"kept"


# ------------------------------------------------------------------------------------ reads


def test_blob_oids_etags_and_paths_info(hub, api, repo):
    api.upload_file(path_or_fileobj=b"hello\n", path_in_repo="dir/hello.txt", repo_id=repo, repo_type="dataset")
    infos = api.get_paths_info(repo, ["dir/hello.txt", "dir", "missing.txt"], repo_type="dataset")
    by_path = {info.path: info for info in infos}
    assert set(by_path) == {"dir/hello.txt", "dir"}
    assert by_path["dir/hello.txt"].blob_id == git_blob_sha1(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"
    meta = get_hf_file_metadata(
        hf_hub_url(REPO, "dir/hello.txt", repo_type="dataset", endpoint=hub.endpoint), token=TOKEN
    )
    assert (meta.etag, meta.size, meta.commit_hash) == (git_blob_sha1(b"hello\n"), 6, hub.head(repo))


def test_hf_file_system_ranged_read(hub, api, repo):
    api.upload_file(path_or_fileobj=bytes(range(200)), path_in_repo="data.bin", repo_id=repo, repo_type="dataset")
    fs = HfFileSystem(endpoint=hub.endpoint, token=TOKEN)
    with fs.open(f"datasets/{REPO}/data.bin", "rb", block_size=16) as handle:
        handle.seek(100)
        assert handle.read(10) == bytes(range(100, 110))
    assert any(r.status == 206 for r in hub.request_log)
    assert fs.cat_file(f"datasets/{REPO}/data.bin", start=190) == bytes(range(190, 200))


def test_missing_things_raise_the_right_errors(hub, api, repo, tmp_path):
    with pytest.raises(RepositoryNotFoundError):
        api.repo_info("alice/nope", repo_type="dataset")
    with pytest.raises(RevisionNotFoundError):
        api.repo_info(repo, repo_type="dataset", revision="no-such-branch")
    with pytest.raises(EntryNotFoundError):
        download(hub, tmp_path, "missing.txt")
    assert not api.file_exists(repo, "missing.txt", repo_type="dataset")
    assert api.file_exists(repo, ".gitattributes", repo_type="dataset")


def test_error_answers_carry_hub_headers(hub, repo):
    missing = httpx.head(f"{hub.endpoint}/datasets/{REPO}/resolve/main/none.txt")
    assert missing.status_code == 404
    assert missing.headers["X-Error-Code"] == "EntryNotFound"
    assert missing.headers["X-Repo-Commit"] == hub.head(repo)
    no_repo = httpx.get(f"{hub.endpoint}/api/datasets/alice/nope")
    assert (no_repo.status_code, no_repo.headers["X-Error-Code"]) == (404, "RepoNotFound")
    ranged = httpx.get(f"{hub.endpoint}/datasets/{REPO}/resolve/main/.gitattributes", headers={"Range": "bytes=0-3"})
    assert ranged.status_code == 206 and ranged.content == GITATTRIBUTES[:4]
    assert ranged.headers["Content-Range"] == f"bytes 0-3/{len(GITATTRIBUTES)}"


def test_token_is_recorded_only_as_a_hash(hub, api, repo):
    assert hub.token_was_sent(TOKEN) and not hub.token_was_sent("hf_other")
    assert all(TOKEN not in record.path for record in hub.request_log)
    stored = b"".join(p.read_bytes() for p in hub.store.root.rglob("*") if p.is_file())
    assert TOKEN.encode() not in stored


# ----------------------------------------------------------------------------------- faults


def test_commit_500_raises_and_next_commit_lands(hub, api, repo):
    hub.fail(500, times=1, paths="/commit/")
    with pytest.raises(HfHubHTTPError) as excinfo:
        api.upload_file(path_or_fileobj=b"a", path_in_repo="a.txt", repo_id=repo, repo_type="dataset")
    assert excinfo.value.response.status_code == 500
    assert "a.txt" not in hub.files(repo)
    api.upload_file(path_or_fileobj=b"a", path_in_repo="a.txt", repo_id=repo, repo_type="dataset")
    assert hub.files(repo)["a.txt"] == b"a"


def test_429_is_retried_by_the_client(hub, api, repo):
    hub.fail(429, times=1, paths="/preupload/")
    api.upload_file(path_or_fileobj=b"a", path_in_repo="a.txt", repo_id=repo, repo_type="dataset")
    statuses = [r.status for r in hub.request_log if "/preupload/" in r.path]
    assert statuses == [429, 200]
    assert hub.files(repo)["a.txt"] == b"a"


def test_fail_until_cleared(hub, api, repo):
    hub.fail(503, paths="/commit/")
    for _ in range(2):
        with pytest.raises(HfHubHTTPError):
            api.upload_file(path_or_fileobj=b"a", path_in_repo="a.txt", repo_id=repo, repo_type="dataset")
    hub.clear_faults()
    api.upload_file(path_or_fileobj=b"a", path_in_repo="a.txt", repo_id=repo, repo_type="dataset")
    assert len(hub.commits(repo)) == 2


def test_read_faults_are_opt_in(hub, api, repo):
    hub.fail(500, times=1, paths="/api/datasets/", reads=True)
    with pytest.raises(HfHubHTTPError) as excinfo:
        api.repo_info(repo, repo_type="dataset")  # repo_info is not retried by the client
    assert excinfo.value.response.status_code == 500
    assert api.repo_info(repo, repo_type="dataset").sha == hub.head(repo)


def test_hang_holds_writes_but_serves_reads(hub, api, repo):
    hub.hang(60, times=1, paths="/commit/")
    done = threading.Event()

    def slow_upload() -> None:
        api.upload_file(path_or_fileobj=b"slow", path_in_repo="slow.txt", repo_id=repo, repo_type="dataset")
        done.set()

    worker = threading.Thread(target=slow_upload)
    started = time.monotonic()
    worker.start()
    assert hub.wait_held(1)
    assert api.list_repo_files(repo, repo_type="dataset") == [".gitattributes"]
    assert not done.is_set()
    hub.clear_faults()
    worker.join(timeout=10)
    assert done.is_set() and time.monotonic() - started < 10
    assert hub.files(repo)["slow.txt"] == b"slow"


# --------------------------------------------------------------------------------- datasets

README = """---
configs:
- config_name: turns
  data_files: turns/*.jsonl
- config_name: ratings
  data_files: ratings/*.jsonl
---
# Feedback
"""


def test_load_dataset_reads_configs_from_readme(hub, api, repo, tmp_path):
    api.create_commit(
        repo,
        [
            add("README.md", README.encode()),
            add("turns/a.jsonl", b'{"id": 1, "text": "hi"}\n{"id": 2, "text": "yo"}\n'),
            add("turns/b.jsonl", b'{"id": 3, "text": "hey"}\n'),
            add("ratings/a.jsonl", b'{"id": 1, "score": 5}\n'),
        ],
        commit_message="data",
        repo_type="dataset",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(
        HF_ENDPOINT=hub.endpoint,
        HF_TOKEN=TOKEN,
        HF_HUB_DISABLE_XET="1",
        HF_UPDATE_DOWNLOAD_COUNTS="0",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HOME=str(tmp_path / "hf"),
        HF_DATASETS_CACHE=str(tmp_path / "ds"),
    )
    code = (
        "import datasets, json, sys\n"
        f"turns = datasets.load_dataset({REPO!r}, 'turns', split='train')\n"
        f"ratings = datasets.load_dataset({REPO!r}, 'ratings', split='train')\n"
        "print(json.dumps([sorted(turns.to_list(), key=lambda r: r['id']), ratings.to_list()]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    turns, ratings = json.loads(result.stdout.strip().splitlines()[-1])
    assert turns == [{"id": 1, "text": "hi"}, {"id": 2, "text": "yo"}, {"id": 3, "text": "hey"}]
    assert ratings == [{"id": 1, "score": 5}]
    probes = {r.path.rsplit("/", 1)[-1]: r.status for r in hub.request_log if r.method == "HEAD"}
    assert probes["feedback.py"] == probes["dataset_infos.json"] == 404  # optional files: EntryNotFound
