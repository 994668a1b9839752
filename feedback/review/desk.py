"""``ReviewDesk``: the review queue, decisions and stats over one data dir (live or pulled)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from loguru import logger

from feedback.errors import FeedbackError
from feedback.recorder import MAX_COMMENT_CHARS, FeedbackRecorder
from feedback.review.queue import QueueFilter, QueueItem, build_queue, filter_queue
from feedback.review.stats import FeedbackStats, compute_stats
from feedback.store import FeedbackStore
from schemas.records import DECISIONS, RECORD_TYPES, Record, Review



@dataclass
class ReviewDesk:
    """Reads every record of a data dir on each call (so the queue is live) and writes reviews.

    Args:
        recorder: the data dir's write gate; reviews go through it to the ``reviews/`` folder.
        reviewers: user names allowed to review; empty: anyone the page's sign-in admits.
    """

    recorder: FeedbackRecorder
    reviewers: Sequence[str] = ()

    @property
    def store(self) -> FeedbackStore:
        """The data dir read for the queue and stats."""
        return self.recorder.store

    def records(self) -> list[Record]:
        """Every valid record of every kind (torn or invalid lines are skipped and logged)."""
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

    def queue(self, queue_filter: QueueFilter = QueueFilter()) -> list[QueueItem]:
        """The flagged replies ``queue_filter`` matches, newest flag first."""
        return filter_queue(build_queue(self.records()), queue_filter)

    def item(self, message_id: str) -> QueueItem:
        """One flagged reply by id.

        Raises:
            FeedbackError: when ``message_id`` is not a flagged reply.
        """
        for item in build_queue(self.records()):
            if item.message_id == message_id:
                return item
        raise FeedbackError(f"message {message_id} is not a flagged reply")

    def decide(
        self, message_id: str, decision: str, *, reviewer: str, corrected_reply: str | None = None, note: str | None = None
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
        logger.bind(conversation_id=review.conversation_id).info("review {} of {} by {}", decision, message_id, reviewer)
        return review

    def stats(self) -> FeedbackStats:
        """The numbers of the Stats view."""
        return stats_of(self.store)


def all_records(store: FeedbackStore) -> list[Record]:
    """Every valid record of every kind in ``store`` (torn or invalid lines are skipped and logged)."""
    return [record for kind in RECORD_TYPES for record in store.iter_records(kind)]


def stats_of(store: FeedbackStore) -> FeedbackStats:
    """The Stats view's numbers for the data dir of ``store`` (read only)."""
    return compute_stats(all_records(store))
