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

from collections import Counter
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from feedback.export.options import ExportOptions
from feedback.export.read import ReadCounts
from feedback.export.replies import STATUS, STATUSES
from feedback.export.rows import SPLITS, RowWriter
from feedback.rules import DISLIKE, LIKE, UNRATED, Verdicts
from schemas.records import DECISIONS

if TYPE_CHECKING:
    from feedback.export.formats import ExportFormat


def build_stats(
    spec: ExportFormat,
    options: ExportOptions,
    *,
    reads: dict[str, ReadCounts],
    verdicts: Verdicts,
    statuses: pa.Table,
    turn_duplicates: int,
    deleted_turns: int = 0,
    writer: RowWriter,
    pairing: Counter,
    row_counts: dict[str, list[int]],
) -> dict[str, Any]:
    """The stats of one export (shape in the module docstring; ``files`` is added by ``run_export``)."""
    status = statuses["status"].to_numpy()
    counted = (status != STATUS["incomplete"]) & (status != STATUS["deleted"])  # the replies that count
    rating = statuses["rating"].to_numpy()[counted]
    left_out = Counter({name: int((status == code).sum()) for code, name in enumerate(STATUSES) if code})
    left_out.update({k: v for k, v in pairing.items() if k == "no_opposite_rating"})
    removed = {k: int(v) for k, v in pairing.items() if k not in ("no_opposite_rating", "review_corrections")}
    removed["duplicate"] = writer.counts["duplicate"]
    reviews: dict[str, int] = {decision: len(verdicts.decided(decision)) for decision in DECISIONS}
    reviews["correction_pairs"] = int(pairing.get("review_corrections", 0))
    if spec.takes_corrections and not spec.paired:
        reviews["correction_rows"] = writer.counts["correction_rows"]
    return {
        "format": spec.name,
        "options": options.as_dict(),
        "records": _record_counts(
            reads, verdicts, statuses, turn_duplicates, int((status == STATUS["incomplete"]).sum()), deleted_turns
        ),
        "replies": {
            "total": int(counted.sum()),
            "liked": int((rating == LIKE).sum()),
            "disliked": int((rating == DISLIKE).sum()),
            "unrated": int((rating == UNRATED).sum()),
            "flagged": int(statuses["flagged"].to_numpy()[counted].sum()),
            "with_files": int(statuses["has_files"].to_numpy()[counted].sum()),
        },
        "left_out": {name: n for name, n in left_out.items() if n},
        "reviews": reviews,
        "rows_removed": removed,
        **_split_counts(writer, row_counts, balance=spec.reports_balance),
    }


def _record_counts(
    reads: dict[str, ReadCounts],
    verdicts: Verdicts,
    statuses: pa.Table,
    turn_duplicates: int,
    incomplete_turns: int,
    deleted_turns: int,
) -> dict[str, dict[str, int]]:
    counts = {kind: dict(vars(read)) for kind, read in reads.items()}
    counts["turns"].update(duplicates=turn_duplicates, incomplete=incomplete_turns, deleted=deleted_turns)
    for kind in ("ratings", "flags"):
        counts[kind].update({"duplicates": 0, "incomplete": 0, "deleted": 0, **verdicts.counts[kind]})
    if "deletions" in counts:
        counts["deletions"]["conversations"] = len(verdicts.deleted)
    turn_keys = statuses["key"]
    known = pc.is_in(verdicts.latest["key"], value_set=turn_keys)
    counts["ratings"]["unknown_reply"] = int(pc.sum(pc.invert(known)).as_py() or 0)
    flag_keys = pa.array(list(verdicts.flags), pa.string())
    counts["flags"]["unknown_reply"] = int(pc.sum(pc.invert(pc.is_in(flag_keys, value_set=turn_keys))).as_py() or 0)
    return counts


def _split_counts(writer: RowWriter, row_counts: dict[str, list[int]], *, balance: bool) -> dict[str, Any]:
    counts = writer.counts
    result: dict[str, Any] = {
        "rows": {split: counts[f"{split}_rows"] for split in SPLITS},
        "conversations": {split: len(writer.conversations[split]) for split in SPLITS},
        "rows_by_count": {
            split: {str(n): rows for n, rows in sorted(Counter(row_counts[split]).items())} for split in SPLITS
        },
        "prompts_with_files": counts["with_files"],
    }
    if balance:
        result["balance"] = {}
        for split in SPLITS:
            rows, liked = counts[f"{split}_rows"], counts[f"{split}_liked"]
            share = round(liked / rows, 3) if rows else None
            result["balance"][split] = {"liked": liked, "disliked": rows - liked, "liked_share": share}
    return result
