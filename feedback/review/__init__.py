"""Reviewing flagged replies and watching how the model does: the queue, decisions and stats
(read through :mod:`feedback.rules`; the page is :mod:`feedback.web.review_page`)."""

from feedback.review.desk import ReviewDesk
from feedback.review.queue import QueueFilter, QueueItem, build_queue, filter_queue
from feedback.review.stats import FeedbackStats, compute_stats
from schemas.records import DECISIONS

__all__ = [
    "DECISIONS",
    "FeedbackStats",
    "QueueFilter",
    "QueueItem",
    "ReviewDesk",
    "build_queue",
    "compute_stats",
    "filter_queue",
]
