"""``python -m feedback review --source SOURCE`` (the reviewer page alone) and
``python -m feedback stats --source SOURCE`` (the Stats numbers, and a page of the queue, in the terminal).

A data dir is read where it is. A dataset repo (``owner/name``) is read in place through
``HfFileSystem`` (:mod:`feedback.hub.remote`: only the columns the rules need, then the records of the
rows shown), never downloaded whole; its review index is kept beside the Hugging Face cache, in
:func:`feedback.hub.source.review_dir`, where ``review`` also writes its decisions (push them with
``python -m feedback push``). ``stats --data-dir DIR`` pulls the repo into ``DIR`` instead.
"""

from __future__ import annotations

import argparse
import getpass
from datetime import date
from pathlib import Path

from feedback.hub.source import require_source, review_dir, working_copy
from feedback.recorder import FeedbackRecorder
from feedback.review.desk import ReviewDesk
from feedback.review.index import INDEX_NAME, ReviewIndex
from feedback.review.queue import PAGE_SIZE, STATUSES, QueueFilter, QueuePage
from feedback.review.sources import CombinedSource, RecordSource, ShardSource
from feedback.store import FeedbackStore
from schemas.settings import DEFAULT_FLAG_REASONS

ANY_STATUS = "any"


def open_desk(source: str, data_dir: Path | None, *, pull: bool = False) -> tuple[ReviewDesk, Path]:
    """A review desk for ``source`` and the data dir its decisions go to.

    A directory: itself. A repo id: read in place (decisions to ``data_dir``, default
    :func:`feedback.hub.source.review_dir`), or, with ``pull``, pulled into ``data_dir`` first.

    Raises:
        ValueError: when ``source`` is neither a directory nor an ``owner/name`` repo id.
        FileNotFoundError: when the repo cannot be read.
    """
    path = require_source(source)
    if path is None and pull and data_dir is not None:
        path = working_copy(source, data_dir)
    if path is not None:
        return _desk(path), path
    from feedback.hub.remote import HubRepo, HubSource

    work = (data_dir or review_dir(source)).resolve()
    repo = HubRepo(source)
    repo.pin()
    combined = CombinedSource([HubSource(repo, prefix="hub:"), ShardSource(work, prefix="local:")])
    return _desk(work, combined), work


def _desk(data_dir: Path, source: RecordSource | None = None) -> ReviewDesk:
    store = FeedbackStore(data_dir)
    recorder = FeedbackRecorder(store, flag_reasons=DEFAULT_FLAG_REASONS)
    index = None if source is None else ReviewIndex(source, data_dir / INDEX_NAME)
    return ReviewDesk(recorder, source=source, index=index)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"dates are YYYY-MM-DD, not {text!r}") from error


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``review`` and ``stats`` commands."""
    review = subparsers.add_parser("review", help="open the reviewer page on a data dir or a dataset repo")
    review.add_argument("--source", required=True, help="a data dir, or owner/name of a dataset repo")
    review.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where decisions on a dataset repo go (default: $HF_HOME/chat-feedback-review/OWNER__NAME)",
    )
    review.add_argument("--reviewer", default=None, help="your name on the decisions (default: your user name)")
    review.add_argument("--port", type=int, default=7861, help="port on 127.0.0.1 (default 7861)")
    review.set_defaults(func=run_review)

    stats = subparsers.add_parser("stats", help="print ratings, like rates, flags and queue size (and a queue page)")
    stats.add_argument("--source", required=True, help="a data dir, or owner/name of a dataset repo")
    stats.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="pull a dataset repo into this folder first (default: read it in place)",
    )
    queue = stats.add_argument_group("queue", "print a page of the review queue too (any of these options)")
    queue.add_argument("--queue", action="store_true", help="print the first page of the open queue")
    queue.add_argument("--reason", default=None, help="flagged for this reason")
    queue.add_argument("--model", default=None, help="replies of this model")
    queue.add_argument("--since", type=_day, default=None, metavar="YYYY-MM-DD", help="last flagged on or after")
    queue.add_argument("--until", type=_day, default=None, metavar="YYYY-MM-DD", help="last flagged on or before")
    queue.add_argument("--status", choices=[*STATUSES, ANY_STATUS], default=None, help="default: open")
    queue.add_argument("--page", type=int, default=None, help=f"page number, {PAGE_SIZE} rows a page (default 1)")
    stats.set_defaults(func=run_stats)


def run_review(args: argparse.Namespace) -> int:
    """Serve the reviewer page on 127.0.0.1 for one reviewer; decisions go to a local data dir."""
    from feedback.web.review_page import ReviewPage

    desk, data_dir = open_desk(args.source, args.data_dir)
    reviewer = args.reviewer or getpass.getuser()
    page = ReviewPage(desk, local_reviewer=reviewer).build()
    print(
        f"reviewing {data_dir if Path(args.source).is_dir() else args.source} as {reviewer}; "
        f"decisions go to {data_dir / 'reviews'}",
        flush=True,
    )
    if not Path(args.source).is_dir():
        print(f"push them with: python -m feedback push {data_dir} --repo {args.source}", flush=True)
    page.queue().launch(server_name="127.0.0.1", server_port=args.port)
    return 0


def run_stats(args: argparse.Namespace) -> int:
    """Print the stats tables, and a queue page when a queue option is given."""
    desk, _ = open_desk(args.source, args.data_dir, pull=True)
    print(desk.stats().table())
    wanted = (args.queue, args.reason, args.model, args.since, args.until, args.status, args.page)
    if any(value not in (None, False) for value in wanted):
        status = None if args.status == ANY_STATUS else (args.status or "open")
        queue_filter = QueueFilter(
            reason=args.reason, model=args.model, since=args.since, until=args.until, status=status
        )
        print("\n" + queue_text(desk.page(queue_filter, offset=(max(1, args.page or 1) - 1) * PAGE_SIZE)))
    return 0


def queue_text(page: QueuePage) -> str:
    """A queue page as a plain text table."""
    if not page.total:
        return "Review queue: no flagged reply matches"
    lines = [f"Review queue: rows {page.offset + 1}-{page.offset + len(page.items)} of {page.total}"]
    for item in page.items:
        reasons = ", ".join(f"{r} x{n}" for r, n in item.reason_counts.most_common())
        reply = " ".join(item.turn.response.split())[:60]
        lines.append(
            f"{item.last_flagged:%Y-%m-%d %H:%M}  {item.status:<9}  {item.turn.model:<16}  "
            f"{item.rating or '-':<7}  {reasons:<28}  {item.message_id}  {reply}"
        )
    return "\n".join(lines)
