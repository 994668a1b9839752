"""``python -m feedback review --source SOURCE`` (the reviewer page alone) and
``python -m feedback stats --source SOURCE`` (the Stats numbers as tables in the terminal)."""

from __future__ import annotations

import argparse
import getpass
import os
import re
from pathlib import Path

from loguru import logger

from feedback.recorder import FeedbackRecorder
from feedback.review.desk import ReviewDesk, stats_of
from feedback.web.review_page import ReviewPage
from feedback.store import FeedbackStore
from schemas.records import REPO_ID_PATTERN
from schemas.settings import DEFAULT_FLAG_REASONS

_REPO_ID = re.compile(REPO_ID_PATTERN)


def local_data_dir(source: str, data_dir: Path | None, token: str | None) -> Path:
    """``source`` itself when it is a directory; else the dataset repo ``source`` pulled into
    ``data_dir`` (default ``./review-<owner>__<name>``), where reviews can be appended.

    Raises:
        ValueError: when ``source`` is neither a directory nor an ``owner/name`` repo id.
    """
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if not _REPO_ID.match(source):
        raise ValueError(f"SOURCE {source!r} is neither a data dir nor a Hub dataset repo id (owner/name)")
    from feedback.cli.hub import pull_repo

    target = data_dir or Path(f"review-{source.replace('/', '__')}")
    logger.info("pulling {} into {}", source, target)
    return pull_repo(source, target, token=token)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``review`` and ``stats`` commands."""
    review = subparsers.add_parser("review", help="open the reviewer page on a data dir or a dataset repo")
    review.add_argument("--source", required=True, help="a data dir, or owner/name of a dataset repo")
    review.add_argument("--data-dir", type=Path, default=None, help="where a dataset repo is pulled to")
    review.add_argument("--reviewer", default=None, help="your name on the decisions (default: your user name)")
    review.add_argument("--port", type=int, default=7861, help="port on 127.0.0.1 (default 7861)")
    review.set_defaults(func=run_review)

    stats = subparsers.add_parser("stats", help="print ratings, like rates, flags and queue size")
    stats.add_argument("--source", required=True, help="a data dir, or owner/name of a dataset repo")
    stats.add_argument("--data-dir", type=Path, default=None, help="where a dataset repo is pulled to")
    stats.set_defaults(func=run_stats)


def run_review(args: argparse.Namespace) -> int:
    """Serve the reviewer page on 127.0.0.1 for one reviewer; decisions go to the data dir."""
    data_dir = local_data_dir(args.source, args.data_dir, os.environ.get("HF_TOKEN"))
    reviewer = args.reviewer or getpass.getuser()
    recorder = FeedbackRecorder(FeedbackStore(data_dir), flag_reasons=DEFAULT_FLAG_REASONS)
    page = ReviewPage(ReviewDesk(recorder), local_reviewer=reviewer).build()
    print(f"reviewing {data_dir} as {reviewer}; decisions go to {data_dir / 'reviews'}")
    if not Path(args.source).is_dir():
        print(f"push them with: python -m feedback push {data_dir} --repo {args.source}")
    page.queue().launch(server_name="127.0.0.1", server_port=args.port)
    return 0


def run_stats(args: argparse.Namespace) -> int:
    """Print the stats tables."""
    data_dir = local_data_dir(args.source, args.data_dir, os.environ.get("HF_TOKEN"))
    print(stats_of(FeedbackStore(data_dir)).table())
    return 0
