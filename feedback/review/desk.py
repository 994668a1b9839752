"""``ReviewDesk``: the review queue, decisions and stats over one source (the live data dir, or a dataset
repo plus the decisions written locally), read through a review index (:mod:`feedback.review.index`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from loguru import logger

from feedback.errors import FeedbackError
from feedback.recorder import MAX_COMMENT_CHARS, FeedbackRecorder
from feedback.review.index import ReviewIndex
from feedback.review.queue import (
    PAGE_SIZE,
    QueueFilter,
    QueueItem,
    QueuePage,
    queue_choices,
    queue_page,
)
from feedback.review.sources import RecordSource, ShardSource
from feedback.review.stats import FeedbackStats, index_stats
from feedback.store import FeedbackStore
from schemas.records import DECISIONS, RECORD_TYPES, Record, Review


@dataclass(frozen=True)
class Overview:
    """What the reviewer page shows on load: a queue page, the filter choices and the stats."""

    page: QueuePage
    reasons: list[str]
    models: list[str]
    stats: FeedbackStats


@dataclass
class ReviewDesk:
    """The queue and stats of a source, live (each call catches up with what was written since), and
    decisions written as review records.

    Args:
        recorder: the data dir's write gate; reviews go through it to the ``reviews/`` folder.
        reviewers: user names allowed to review; empty: anyone the page's sign-in admits.
        source: where the records are read (default: the recorder's data dir).
        index: the review index of ``source`` (default: kept in the recorder's data dir).
    """

    recorder: FeedbackRecorder
    reviewers: Sequence[str] = ()
    source: RecordSource | None = None
    index: ReviewIndex | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.source is None:
            self.source = ShardSource(self.store.root)
        if self.index is None:
            self.index = ReviewIndex.for_data_dir(self.source, self.store.root)

    @property
    def store(self) -> FeedbackStore:
        """The data dir decisions go to."""
        return self.recorder.store

    def records(self) -> list[Record]:
        """Every valid record of every kind in the data dir, as objects (slow on a large log: the queue
        and stats do not use it)."""
        return all_records(self.store)

    def check_reviewer(self, username: str | None) -> str:
        """The user name, if this user may review.

        Raises:
            FeedbackError: for an anonymous user or one not among ``reviewers``.
        """
        if not username:
            raise FeedbackError("sign in as a reviewer to use the review page")
        if self.reviewers and username not in self.reviewers:
            raise FeedbackError(f"{username} is not a reviewer (FEEDBACK_REVIEWERS)")
        return username

    def queue(self, queue_filter: QueueFilter | None = None) -> list[QueueItem]:
        """Every flagged reply ``queue_filter`` (default: the open ones) matches, newest flag first."""
        return self.page(queue_filter, limit=None).items

    def page(
        self, queue_filter: QueueFilter | None = None, *, offset: int = 0, limit: int | None = PAGE_SIZE
    ) -> QueuePage:
        """``limit`` flagged replies (None: all) from ``offset`` of those ``queue_filter`` (default: the
        open ones) matches."""
        with self.index.connect() as con:
            return queue_page(con, self.source, queue_filter or QueueFilter(), offset=max(0, offset), limit=limit)

    def overview(self, queue_filter: QueueFilter | None = None, *, offset: int = 0) -> Overview:
        """A queue page, the filter choices and the stats, from one look at the source."""
        with self.index.connect() as con:
            page = queue_page(con, self.source, queue_filter or QueueFilter(), offset=max(0, offset))
            reasons, models = queue_choices(con)
            return Overview(page, reasons, models, index_stats(con))

    def item(self, message_id: str) -> QueueItem:
        """One flagged reply by id.

        Raises:
            FeedbackError: when ``message_id`` is not a flagged reply.
        """
        with self.index.connect() as con:
            found = queue_page(con, self.source, QueueFilter(status=None), limit=1, message_id=message_id).items
        if not found:
            raise FeedbackError(f"message {message_id} is not a flagged reply")
        return found[0]

    def decide(
        self,
        message_id: str,
        decision: str,
        *,
        reviewer: str,
        corrected_reply: str | None = None,
        note: str | None = None,
    ) -> Review:
        """Record a decision on a flagged reply; returns the stored review.

        Raises:
            FeedbackError: for an unknown reply, a decision outside confirmed/dismissed/needs-fix,
                a reviewer not allowed, or an over-long text. Nothing is written.
        """
        reviewer = self.check_reviewer(reviewer)
        if decision not in DECISIONS:
            raise FeedbackError(f"decision {decision!r} is not one of {list(DECISIONS)}")
        for text in (corrected_reply, note):
            if text and len(text) > 10 * MAX_COMMENT_CHARS:
                raise FeedbackError(f"a review text is limited to {10 * MAX_COMMENT_CHARS:,} characters")
        item = self.item(message_id)
        review = Review(
            conversation_id=item.turn.conversation_id,
            message_id=message_id,
            decision=decision,
            corrected_reply=corrected_reply or None,
            note=note or None,
            reviewer=reviewer,
        )
        review = self.recorder.write(review) or review
        logger.bind(conversation_id=review.conversation_id).info(
            "review {} of {} by {}", decision, message_id, reviewer
        )
        return review

    def stats(self) -> FeedbackStats:
        """The numbers of the Stats view."""
        with self.index.connect() as con:
            return index_stats(con)


def all_records(store: FeedbackStore) -> list[Record]:
    """Every valid record of every kind in ``store`` (torn or invalid lines are skipped and logged)."""
    return [record for kind in RECORD_TYPES for record in store.iter_records(kind)]
