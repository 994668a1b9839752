"""``python -m feedback compact owner/name``: merge the closed days' small files of a dataset repo into one
Parquet file per day and record kind, and rewrite its ``flagged`` review view (:mod:`feedback.hub.compact`;
the app does the same once a day while it syncs)."""

from __future__ import annotations

import argparse

from feedback.cli.hub import TIMEOUT_HELP, TOKEN_HELP, timeout_argument
from feedback.hub.client import failure_reason, is_repo_id, use_hub_timeout


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``compact`` command."""
    compact = subparsers.add_parser(
        "compact", help="compact a dataset repo (days older than a day) and write its flagged view"
    )
    compact.add_argument("repo", help="owner/name of the dataset repo")
    compact.add_argument(
        "--min-age-days",
        type=int,
        default=1,
        help="compact a day once it ended more than this many days ago (default 1)",
    )
    compact.add_argument("--no-flagged", action="store_true", help="do not rewrite the flagged view")
    compact.add_argument("--token", default=None, help=TOKEN_HELP)
    compact.add_argument("--timeout", type=timeout_argument, default=None, metavar="SECONDS", help=TIMEOUT_HELP)
    compact.set_defaults(func=run_compact)


def run_compact(args: argparse.Namespace) -> int:
    """Run ``compact``; prints what it did, or why it failed (one line, no secret). Returns 0 or 1."""
    from feedback.hub.compact import compact_repo

    if not is_repo_id(args.repo):
        print(f"compact failed: {args.repo!r} is not a Hub dataset repo id (owner/name)")
        return 1
    try:
        use_hub_timeout(args.timeout)
        report = compact_repo(args.repo, token=args.token, min_age_days=args.min_age_days, flagged=not args.no_flagged)
    except Exception as error:  # noqa: BLE001 - report any failure in one line, without the token
        print(f"compact failed: {failure_reason(error)}")
        return 1
    print(f"compacted {args.repo}: {report.summary()}")
    return 0
