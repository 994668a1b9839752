"""Moving data between a local folder and a dataset repo in one go: ``push`` and ``pull`` of a data
dir, and pushing an export's ``DatasetDict``.

Every function here sets the Hub timeout first (:func:`~feedback.hub.client.use_hub_timeout`,
``$FEEDBACK_HUB_TIMEOUT`` unless ``timeout`` is given), looks the token up with
:func:`~feedback.hub.client.hub_token` and reads ``$HF_ENDPOINT`` when it runs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
from huggingface_hub import HfApi, snapshot_download

from feedback.export.read import records_to_jsonl
from feedback.hub.card import dataset_card
from feedback.hub.client import (
    hub_api,
    hub_endpoint,
    hub_token,
    is_repo_id,
    use_hub_timeout,
)
from feedback.hub.files import (
    SYNC_PATTERNS,
    FileToUpload,
    PushLedger,
    scan_folder,
    write_card,
)
from feedback.hub.layout import MAX_COMMIT_FILES, is_record_file, stem
from schemas.records import RECORD_TYPES
from schemas.settings import DEFAULT_NOTICE

if TYPE_CHECKING:
    from datasets import DatasetDict


def _require_repo_id(repo_id: str) -> None:
    if not is_repo_id(repo_id):
        raise ValueError(f"{repo_id!r} is not a Hub dataset repo id (owner/name)")


def push_folder(
    data_dir: Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = True,
    license: str = "other",
    consent: str = DEFAULT_NOTICE,
    api: HfApi | None = None,
    timeout: float | None = None,
) -> str | None:
    """Upload a data dir's records (as Parquet in the repo's day partitions), files and card to a dataset
    repo, in commits of at most 100 files.

    Shards pushed before (to this repo, by this command or the app's sync: the data dir's push ledger)
    are not uploaded again, so pushing twice uploads nothing the second time and never re-creates a
    shard that compaction merged. Shards with a torn last line are uploaded up to their last complete
    line. A data dir without a ``README.md`` gets the dataset card first.

    Args:
        token: the token (see :func:`~feedback.hub.client.hub_token`); unused when ``api`` is given.
        api: a configured ``HfApi`` (default: one for ``$HF_ENDPOINT`` and ``token``).
        timeout: seconds a Hub call may wait on the network (default ``$FEEDBACK_HUB_TIMEOUT``, else 30).
    Returns:
        The new commit id, or None when nothing was new.
    Raises:
        FileNotFoundError: when ``data_dir`` is not a directory.
        ValueError: for a bad ``repo_id`` or ``timeout``.
        huggingface_hub.errors.HfHubHTTPError: when the Hub refuses.
        httpx2.HTTPError: when the Hub cannot be reached or does not answer in time.
    """
    if not data_dir.is_dir():
        raise FileNotFoundError(f"{data_dir} is not a data dir")
    _require_repo_id(repo_id)
    use_hub_timeout(timeout)
    api = api or hub_api(hub_token(token))
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    if not (data_dir / "README.md").exists():
        write_card(data_dir, dataset_card(repo_id=repo_id, license=license, consent=consent))
    ledger = PushLedger(data_dir, repo_id)
    ledger.seed_from_flat_layout(api, repo_id)
    files = scan_folder(data_dir, {}, set(), ledger)
    head = api.repo_info(repo_id, repo_type="dataset").sha
    oid = head
    for start in range(0, len(files), MAX_COMMIT_FILES):
        chunk = files[start : start + MAX_COMMIT_FILES]
        oid = api.create_commit(
            repo_id,
            repo_type="dataset",
            operations=[f.operation() for f in chunk],
            commit_message=f"Push {len(chunk)} files from a chat-feedback data dir",
        ).oid
        ledger.add(chunk)
    return None if oid == head else oid


def pull_repo(
    repo_id: str, data_dir: Path, *, token: str | None = None, revision: str | None = None, timeout: float | None = None
) -> Path:
    """Download a dataset repo's records, files and card into ``data_dir``, in the data dir layout:
    each record file of the repo (Parquet in day partitions, or a JSONL shard of the flat layout)
    becomes a JSONL shard ``{kind}/{its name}.jsonl`` (created if missing, files already there and not
    in the repo are kept), noted in the push ledger so pushing the folder back re-sends none of them.
    The Parquet files go through the Hugging Face cache. Returns ``data_dir``.

    Raises:
        ValueError: for a bad ``repo_id`` or ``timeout``.
        huggingface_hub.errors.HfHubHTTPError: when the repo cannot be read.
    """
    _require_repo_id(repo_id)
    use_hub_timeout(timeout)
    data_dir = Path(data_dir)
    patterns = [*(f"{kind}/*/*.parquet" for kind in RECORD_TYPES), *SYNC_PATTERNS]
    data_dir.mkdir(parents=True, exist_ok=True)
    snapshot = Path(
        snapshot_download(
            repo_id,
            repo_type="dataset",
            revision=revision,
            allow_patterns=patterns,
            token=hub_token(token),
            endpoint=hub_endpoint(),
        )
    )
    pulled = []
    for source in sorted(p for p in snapshot.rglob("*") if p.is_file()):
        relative = source.relative_to(snapshot).as_posix()
        kind = relative.split("/", 1)[0]
        if kind in RECORD_TYPES and is_record_file(relative):
            target = data_dir / kind / f"{stem(relative)}.jsonl"
            data = (
                source.read_bytes()
                if relative.endswith(".jsonl")
                else records_to_jsonl(pq.read_table(source).to_pylist())
            )
            pulled.append(FileToUpload(target, relative, len(data), 0.0))
        else:
            target, data = data_dir / relative, source.read_bytes()
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_file() or target.read_bytes() != data:
            target.write_bytes(data)
    PushLedger(data_dir, repo_id).add(pulled)
    return data_dir


def push_dataset(
    dataset: DatasetDict,
    repo_id: str,
    *,
    card: str,
    commit_message: str,
    private: bool = True,
    token: str | None = None,
    timeout: float | None = None,
) -> str:
    """Push a ``DatasetDict`` as Parquet (``data/<split>-00000-of-00001.parquet``, empty splits left
    out) with ``card`` as the repo's ``README.md``, in one commit. Earlier files under ``data/`` are
    replaced, so the repo holds this dataset only.

    Returns:
        The URL of the commit.
    Raises:
        ValueError: for a bad ``repo_id`` or ``timeout``.
        huggingface_hub.errors.HfHubHTTPError: when the Hub refuses.
    """
    _require_repo_id(repo_id)
    use_hub_timeout(timeout)
    api = hub_api(hub_token(token))
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="export-push-") as folder:
        Path(folder, "data").mkdir()
        for split, part in dataset.items():
            if part.num_rows:
                part.to_parquet(Path(folder, "data", f"{split}-00000-of-00001.parquet"))
        Path(folder, "README.md").write_text(card, encoding="utf-8")
        commit = api.upload_folder(
            repo_id=repo_id,
            repo_type="dataset",
            folder_path=folder,
            delete_patterns=["data/*"],
            commit_message=commit_message,
        )
    return str(commit)
