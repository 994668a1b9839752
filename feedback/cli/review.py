"""``python -m feedback review --source SOURCE`` (the reviewer page alone) and
``python -m feedback stats --source SOURCE`` (the Stats numbers as tables in the terminal)."""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path

from feedback.hub.source import require_source, snapshot, working_copy
from feedback.recorder import FeedbackRecorder
from feedback.review.desk import ReviewDesk, stats_of
from feedback.web.review_page import ReviewPage
from feedback.store import FeedbackStore
from schemas.settings import DEFAULT_FLAG_REASONS


def local_data_dir(source: str, data_dir: Path | None, *, writable: bool) -> Path:
    """The data dir to read ``source`` from; never a folder in the current directory.

    ``source`` itself when it is a directory. A dataset repo id ``owner/name`` is pulled into
    ``data_dir`` when given; else, when ``writable`` (``review`` appends decisions), into
    :func:`feedback.hub.source.review_dir` (``$HF_HOME/chat-feedback-review/<owner>__<name>``);
    else (``stats``, read only) its record folders are read from the Hugging Face cache.

    Raises:
        ValueError: when ``source`` is neither a directory nor an ``owner/name`` repo id.
        FileNotFoundError: when the repo cannot be read (read only).
        huggingface_hub.errors.HfHubHTTPError: when the repo cannot be pulled.
    """
    if writable or data_dir is not None:
        return working_copy(source, data_dir)
    path = require_source(source)
    return path if path is not None else snapshot(source)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``review`` and ``stats`` commands."""
    review = subparsers.add_parser("review", help="open the reviewer page on a data dir or a dataset repo")
    review.add_argument("--source", required=True, help="a data dir, or owner/name of a dataset repo")
    review.add_argument("--data-dir", type=Path, default=None,
                        help="where a dataset repo is pulled to (default: $HF_HOME/chat-feedback-review/OWNER__NAME)")
    review.add_argument("--reviewer", default=None, help="your name on the decisions (default: your user name)")
    review.add_argument("--port", type=int, default=7861, help="port on 127.0.0.1 (default 7861)")
    review.set_defaults(func=run_review)

    stats = subparsers.add_parser("stats", help="print ratings, like rates, flags and queue size")
    stats.add_argument("--source", required=True, help="a data dir, or owner/name of a dataset repo")
    stats.add_argument("--data-dir", type=Path, default=None,
                       help="pull a dataset repo into this folder (default: read it from the Hugging Face cache)")
    stats.set_defaults(func=run_stats)


def run_review(args: argparse.Namespace) -> int:
    """Serve the reviewer page on 127.0.0.1 for one reviewer; decisions go to the data dir."""
    data_dir = local_data_dir(args.source, args.data_dir, writable=True).resolve()
    reviewer = args.reviewer or getpass.getuser()
    recorder = FeedbackRecorder(FeedbackStore(data_dir), flag_reasons=DEFAULT_FLAG_REASONS)
    page = ReviewPage(ReviewDesk(recorder), local_reviewer=reviewer).build()
    print(f"reviewing {data_dir} as {reviewer}; decisions go to {data_dir / 'reviews'}", flush=True)
    if not Path(args.source).is_dir():
        print(f"push them with: python -m feedback push {data_dir} --repo {args.source}", flush=True)
    page.queue().launch(server_name="127.0.0.1", server_port=args.port)
    return 0


def run_stats(args: argparse.Namespace) -> int:
    """Print the stats tables."""
    data_dir = local_data_dir(args.source, args.data_dir, writable=False)
    print(stats_of(FeedbackStore(data_dir)).table())
    return 0
