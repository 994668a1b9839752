"""``export FORMAT --source SOURCE --out DIR``: the export written to files (and pushed, if asked).

``DIR/train.jsonl`` and ``DIR/test.jsonl`` hold one JSON object per line; ``DIR/stats.json`` the
counts (``feedback.export.stats``). A split with no rows has no file (``stats.json``: ``"files":
{"test": null}``): ``datasets`` refuses an empty data file ("corresponds to no data"), so
``load_dataset(DIR)`` and ``load_dataset("json", data_dir=DIR)`` then give the other split alone. The
files are written beside their final names and renamed at the end, so a failed export leaves the
previous one in place (and a split that is empty now loses its earlier file).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from loguru import logger

from feedback.export.build import Export, export_data_dir
from feedback.export.options import ExportOptions
from feedback.export.rows import SPLITS
from feedback.hub.source import resolve_source


def run_export(
    fmt: str,
    source: str,
    out_dir: str | os.PathLike[str],
    options: ExportOptions | None = None,
    *,
    push_to_hub: str | None = None,
    private: bool = True,
    progress: bool = True,
) -> Export:
    """Export ``source`` (a data dir or Hub dataset repo id) in ``fmt`` to ``out_dir``; push if asked.

    Raises:
        ValueError: for an unknown format or source.
        FileNotFoundError: for a Hub repo that cannot be read.
    """
    data_dir = resolve_source(source)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    partial = {split: out / f".{split}.jsonl.partial" for split in SPLITS}
    try:
        export = export_data_dir(fmt, data_dir, options, files=partial, progress=progress)
    except BaseException:
        for path in partial.values():
            path.unlink(missing_ok=True)
        raise
    export.files = {}
    for split, path in partial.items():
        final = out / f"{split}.jsonl"
        if export.stats["rows"][split]:
            os.replace(path, final)
            export.files[split] = final
        else:  # an empty file is a split `datasets` cannot load: none, and none left from an earlier export
            path.unlink()
            final.unlink(missing_ok=True)
    files = {split: export.files[split].name if split in export.files else None for split in SPLITS}
    stats = {
        "source": source,
        "built_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        **export.stats,
        "files": files,
    }
    (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote {} ({} train, {} test rows)", out, export.stats["rows"]["train"], export.stats["rows"]["test"])
    if push_to_hub:
        push_export(export, push_to_hub, source=source, private=private)
    return export


def push_export(export: Export, repo_id: str, *, source: str, private: bool = True, token: str | None = None) -> str:
    """Push the export's ``DatasetDict`` (Parquet, one file per split) and its dataset card to
    ``repo_id`` (:func:`feedback.hub.transfer.push_dataset`: earlier ``data/`` files are replaced).

    Returns:
        The URL of the commit.
    Raises:
        huggingface_hub.errors.HfHubHTTPError: when the Hub refuses.
    """
    from feedback.export.card import dataset_card
    from feedback.hub.transfer import push_dataset

    rows = sum(export.stats["rows"].values())
    commit = push_dataset(
        export.to_dataset_dict(),
        repo_id,
        card=dataset_card(export, repo_id=repo_id, source=source),
        commit_message=f"Export {export.format} rows ({rows} rows)",
        private=private,
        token=token,
    )
    logger.info("pushed {} to {}", export.format, repo_id)
    return commit


def summary(export: Export) -> str:
    """A few lines for the terminal: rows per split, what was left out and why."""
    stats = export.stats
    rows, conversations = stats["rows"], stats["conversations"]
    lines = [
        f"{export.format}: {rows['train']:,} train rows ({conversations['train']:,} conversations), "
        f"{rows['test']:,} test rows ({conversations['test']:,} conversations)"
    ]
    replies = stats["replies"]
    lines.append(
        f"replies: {replies['total']:,} ({replies['liked']:,} liked, {replies['disliked']:,} disliked, "
        f"{replies['unrated']:,} unrated, {replies['flagged']:,} flagged)"
    )
    left_out = ", ".join(f"{name} {n:,}" for name, n in stats["left_out"].items() if name != "not_flagged")
    removed = ", ".join(f"{name} {n:,}" for name, n in stats["rows_removed"].items() if n)
    lines.append(f"left out: {left_out or 'none'}; rows removed: {removed or 'none'}")
    bad = {kind: counts["bad_lines"] for kind, counts in stats["records"].items() if counts["bad_lines"]}
    if bad:
        lines.append("skipped unreadable lines: " + ", ".join(f"{kind} {n:,}" for kind, n in bad.items()))
    if export.lines is None:
        lines.extend(f"{split}: no rows, so no {split}.jsonl" for split in SPLITS if not rows[split])
    agreed = sum(kept for split in SPLITS for count, kept in stats["rows_by_count"][split].items() if count != "1")
    if agreed:
        lines.append(f"rows given by several conversations: {agreed:,} (column `count` with --with-ids)")
    for split, balance in stats.get("balance", {}).items():
        lines.append(f"kto {split} balance: {balance['liked']:,} liked / {balance['disliked']:,} disliked")
    return "\n".join(lines)
