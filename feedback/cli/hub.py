"""``python -m feedback push DIR --repo owner/name`` and ``python -m feedback pull owner/name DIR``:
argument parsing only; the transfers are :mod:`feedback.hub.transfer`."""

from __future__ import annotations

import argparse
from pathlib import Path

from feedback.hub.client import failure_reason, hub_timeout
from feedback.hub.transfer import pull_repo, push_folder
from schemas.records import RECORD_TYPES

TOKEN_HELP = "Hugging Face token (default: $HF_TOKEN, else your saved login)"
TIMEOUT_HELP = "seconds a Hub call may wait on the network, 0.1 to 600 (default: $FEEDBACK_HUB_TIMEOUT, else 30)"


def timeout_argument(text: str) -> float:
    """``--timeout``: seconds from 0.1 to 600.

    Raises:
        argparse.ArgumentTypeError: for anything else.
    """
    try:
        return hub_timeout(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``push`` and ``pull`` commands."""
    push = subparsers.add_parser("push", help="upload a local data dir to a dataset repo")
    push.add_argument("data_dir", type=Path, help="the data dir (turns/, ratings/, flags/)")
    push.add_argument("--repo", required=True, help="owner/name of the dataset repo (created if missing)")
    push.add_argument("--public", action="store_true", help="create the repo public (default: private)")
    push.add_argument("--license", default="other", help="license id for a new dataset card (default: other)")
    push.add_argument("--token", default=None, help=TOKEN_HELP)
    push.add_argument("--timeout", type=timeout_argument, default=None, metavar="SECONDS", help=TIMEOUT_HELP)
    push.set_defaults(func=run_push)

    pull = subparsers.add_parser("pull", help="download a dataset repo into a local data dir")
    pull.add_argument("repo", help="owner/name of the dataset repo")
    pull.add_argument("data_dir", type=Path, help="where to put it (created if missing)")
    pull.add_argument("--revision", default=None, help="a branch or commit id (default: main)")
    pull.add_argument("--token", default=None, help=TOKEN_HELP)
    pull.add_argument("--timeout", type=timeout_argument, default=None, metavar="SECONDS", help=TIMEOUT_HELP)
    pull.set_defaults(func=run_pull)


def run_push(args: argparse.Namespace) -> int:
    """Run ``push``; prints what was sent, or why it failed (one line, no secret). Returns 0 or 1."""
    try:
        commit = push_folder(
            args.data_dir,
            args.repo,
            token=args.token,
            private=not args.public,
            license=args.license,
            timeout=args.timeout,
        )
    except Exception as error:  # noqa: BLE001 - report any failure in one line, without the token
        print(f"push failed: {failure_reason(error)}")
        return 1
    print(
        f"pushed {args.data_dir} to {args.repo}: commit {commit}" if commit else f"nothing new to push to {args.repo}"
    )
    return 0


def run_pull(args: argparse.Namespace) -> int:
    """Run ``pull``; prints where the data went, or why it failed (one line, no secret). Returns 0 or 1."""
    try:
        path = pull_repo(args.repo, args.data_dir, token=args.token, revision=args.revision, timeout=args.timeout)
    except Exception as error:  # noqa: BLE001
        print(f"pull failed: {failure_reason(error)}")
        return 1
    counts = {kind: len(list(path.glob(f"{kind}/*.jsonl"))) for kind in RECORD_TYPES}
    print(f"pulled {args.repo} into {path}: " + ", ".join(f"{n} {kind} shards" for kind, n in counts.items()))
    return 0
