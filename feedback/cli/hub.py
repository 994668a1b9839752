"""``python -m feedback push DIR --repo owner/name`` and ``python -m feedback pull owner/name DIR``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from huggingface_hub import HfApi, snapshot_download

from feedback.card import dataset_card
from feedback.sync import SYNC_PATTERNS, redact, scan_folder, write_card
from schemas.settings import DEFAULT_NOTICE


def _token(args: argparse.Namespace) -> str | None:
    return args.token or os.environ.get("HF_TOKEN") or None


def push_folder(data_dir: Path, repo_id: str, *, token: str | None, private: bool = True, license: str = "other",
                consent: str = DEFAULT_NOTICE, api: HfApi | None = None) -> str | None:
    """Upload a data dir's records, files and card to a dataset repo in one commit.

    Unchanged files are not uploaded again (the Hub compares content hashes), so pushing twice
    uploads nothing the second time. Shards with a torn last line are uploaded up to their last
    complete line.

    Returns:
        The new commit id, or None when nothing was new.
    Raises:
        FileNotFoundError: when ``data_dir`` is not a directory.
        huggingface_hub.errors.HfHubHTTPError: when the Hub refuses.
    """
    if not data_dir.is_dir():
        raise FileNotFoundError(f"{data_dir} is not a data dir")
    api = api or HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    if not (data_dir / "README.md").exists():
        write_card(data_dir, dataset_card(repo_id=repo_id, license=license, consent=consent))
    files = scan_folder(data_dir, {}, set())
    head = api.repo_info(repo_id, repo_type="dataset").sha
    info = api.create_commit(repo_id, repo_type="dataset", operations=[f.operation() for f in files],
                             commit_message=f"Push {len(files)} files from a chat-feedback data dir")
    return None if info.oid == head else info.oid


def pull_repo(repo_id: str, data_dir: Path, *, token: str | None, revision: str | None = None) -> Path:
    """Download a dataset repo's records, files and card into ``data_dir`` (the data dir layout).

    Raises:
        huggingface_hub.errors.HfHubHTTPError: when the repo cannot be read.
    """
    return Path(snapshot_download(repo_id, repo_type="dataset", revision=revision, local_dir=data_dir,
                                  allow_patterns=SYNC_PATTERNS, token=token))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``push`` and ``pull`` commands."""
    push = subparsers.add_parser("push", help="upload a local data dir to a dataset repo")
    push.add_argument("data_dir", type=Path, help="the data dir (turns/, ratings/, flags/)")
    push.add_argument("--repo", required=True, help="owner/name of the dataset repo (created if missing)")
    push.add_argument("--public", action="store_true", help="create the repo public (default: private)")
    push.add_argument("--license", default="other", help="license id for a new dataset card (default: other)")
    push.add_argument("--token", default=None, help="Hugging Face token (default: $HF_TOKEN or your login)")
    push.set_defaults(func=run_push)

    pull = subparsers.add_parser("pull", help="download a dataset repo into a local data dir")
    pull.add_argument("repo", help="owner/name of the dataset repo")
    pull.add_argument("data_dir", type=Path, help="where to put it (created if missing)")
    pull.add_argument("--revision", default=None, help="a branch or commit id (default: main)")
    pull.add_argument("--token", default=None, help="Hugging Face token (default: $HF_TOKEN or your login)")
    pull.set_defaults(func=run_pull)


def run_push(args: argparse.Namespace) -> int:
    """Run ``push``; prints what was sent."""
    token = _token(args)
    try:
        commit = push_folder(args.data_dir, args.repo, token=token, private=not args.public, license=args.license)
    except Exception as error:  # noqa: BLE001 - report any failure in one line, without the token
        print(f"push failed: {redact(error, token)}")
        return 1
    print(f"pushed {args.data_dir} to {args.repo}: commit {commit}" if commit else f"nothing new to push to {args.repo}")
    return 0


def run_pull(args: argparse.Namespace) -> int:
    """Run ``pull``; prints where the data went."""
    token = _token(args)
    try:
        path = pull_repo(args.repo, args.data_dir, token=token, revision=args.revision)
    except Exception as error:  # noqa: BLE001
        print(f"pull failed: {redact(error, token)}")
        return 1
    counts = {kind: len(list(path.glob(f"{kind}/*.jsonl"))) for kind in ("turns", "ratings", "flags", "reviews")}
    print(f"pulled {args.repo} into {path}: " + ", ".join(f"{n} {kind} shards" for kind, n in counts.items()))
    return 0
