"""Reviewing flagged replies and watching how the model does: queue, decisions, stats, page."""

from feedback.review.desk import DECISIONS, ReviewDesk
from feedback.review.queue import QueueFilter, QueueItem, build_queue, filter_queue
from feedback.review.stats import FeedbackStats, compute_stats
from feedback.review.ui import ReviewPage

__all__ = [
    "DECISIONS",
    "FeedbackStats",
    "QueueFilter",
    "QueueItem",
    "ReviewDesk",
    "ReviewPage",
    "build_queue",
    "compute_stats",
    "filter_queue",
]
