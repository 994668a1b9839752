"""``stats.json``: what went into an export, what was left out and why, and the split sizes.

Shape (counts are integers)::

    {"format": "kto", "options": {...},
     "records": {"turns":   {"files", "bytes", "records", "bad_lines", "duplicates", "incomplete", "deleted"},
                 "ratings": {..., "undone", "unknown_reply", "deleted"}, "flags": {..., "unknown_reply", "deleted"},
                 "deletions": {"files", "bytes", "records", "bad_lines", "conversations"}},
     "replies": {"total", "liked", "disliked", "unrated", "flagged", "with_files"},
     "left_out": {"deleted": 2, "flagged": 3, "unrated": 10, ...},  # replies, by first reason
     "reviews": {"confirmed": 1, "dismissed": 0, "needs-fix": 2,
                 "correction_pairs": 2},                       # dpo pairs from corrections (sft: "correction_rows")
     "rows_removed": {"duplicate": 1, ...},                    # rows, after they were built
     "rows": {"train": 90, "test": 10}, "conversations": {"train": 30, "test": 3},
     "rows_by_count": {"train": {"1": 88, "2": 2}, "test": {"1": 10}},  # rows by their `count`
     "files": {"train": "train.jsonl", "test": null},          # written by run_export: null for an empty split
     "prompts_with_files": 2,                                  # rows whose prompt had files
     "balance": {"train": {"liked": 50, "disliked": 40, "liked_share": 0.556}, "test": {...}}}

``records.*.deleted`` counts the records of deleted conversations (a deletion record names them: see
``feedback.rules``), left out before anything else is counted: they are in no other count but
``records``/``bytes``/``bad_lines`` of what was read, and ``left_out.deleted`` counts their replies.
``records.deletions.conversations`` is the number of deleted conversations.
``balance`` is there for a format whose spec has ``reports_balance`` (kto). A row's ``count`` is the
number of distinct conversations that gave it (identical rows are kept once; ``rows_removed.duplicate``
counts the rows removed, of the same conversation or not). ``rows_removed`` of ``dpo`` also has
``identical_chosen_rejected``, ``pair_straddles_split`` and, with ``pairs="latest"``, ``not_latest_pair``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from feedback.export.engine import STATUSES
from feedback.export.options import ExportOptions
from feedback.export.rows import SPLITS
from schemas.records import DECISIONS

if TYPE_CHECKING:
    from feedback.export.engine import Result
    from feedback.export.formats import ExportFormat


def build_stats(spec: ExportFormat, options: ExportOptions, result: Result) -> dict[str, Any]:
    """The stats of one export (shape in the module docstring; ``files`` is added by ``run_export``), from
    what the engine counted (``feedback.export.engine.run``)."""
    counts = result.counts
    pairing = counts["pairing"]
    left_out = {name: n for name, n in counts["statuses"].items() if name != "kept"}
    left_out["no_opposite_rating"] += pairing.get("no_opposite_rating", 0)
    removed = {k: int(v) for k, v in pairing.items() if k not in ("no_opposite_rating", "review_corrections")}
    removed["duplicate"] = counts["duplicate"]
    reviews: dict[str, int] = {decision: int(counts["reviews"].get(decision, 0)) for decision in DECISIONS}
    reviews["correction_pairs"] = int(pairing.get("review_corrections", 0))
    if spec.takes_corrections and not spec.paired:
        reviews["correction_rows"] = counts["correction_rows"]
    records = {kind: dict(vars(read)) for kind, read in result.reads.items() if kind != "reviews"}
    records["turns"].update(counts["turns"])
    for kind in ("ratings", "flags"):
        records[kind].update(counts[kind])
    records["deletions"]["conversations"] = counts["deleted_conversations"]
    stats: dict[str, Any] = {
        "format": spec.name,
        "options": options.as_dict(),
        "records": records,
        "replies": counts["replies"],
        "left_out": {name: n for name, n in left_out.items() if n},
        "reviews": reviews,
        "rows_removed": removed,
        "rows": {split: counts[split]["rows"] for split in SPLITS},
        "conversations": {split: counts[split]["conversations"] for split in SPLITS},
        "rows_by_count": {split: counts[split]["rows_by_count"] for split in SPLITS},
        "prompts_with_files": counts["with_files"],
    }
    if spec.reports_balance:
        stats["balance"] = {}
        for split in SPLITS:
            rows, liked = counts[split]["rows"], counts[split]["liked"]
            share = round(liked / rows, 3) if rows else None
            stats["balance"][split] = {"liked": liked, "disliked": rows - liked, "liked_share": share}
    return stats


__all__ = ["STATUSES", "build_stats"]
