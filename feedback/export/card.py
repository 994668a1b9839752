"""The dataset card of a pushed export: YAML metadata for the Hub, then how the rows were built.

The format's own paragraph comes from its spec (``ExportFormat.card``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import yaml

from feedback.export.formats import get_format
from feedback.export.rows import SPLITS

if TYPE_CHECKING:
    from feedback.export.build import Export


def dataset_card(export: Export, *, repo_id: str, source: str) -> str:
    """A ``README.md`` for the export's dataset repo: YAML (configs, features, split sizes, tags),
    then the format, the options, and the counts of ``stats.json``."""
    return f"---\n{yaml.safe_dump(_metadata(export), sort_keys=False)}---\n\n{_body(export, repo_id, source)}"


def _metadata(export: Export) -> dict:
    rows = export.stats["rows"]
    splits = [name for name in SPLITS if rows[name]]
    features = get_format(export.format, export.options).row_features(include_ids=export.options.include_ids)
    return {
        "configs": [{"config_name": "default", "data_files": [{"split": s, "path": f"data/{s}-*"} for s in splits]}],
        "dataset_info": {
            "features": features._to_yaml_list(),
            "splits": [{"name": s, "num_examples": rows[s]} for s in splits],
        },
        "tags": ["trl", export.format, "chat-feedback"],
    }


def _body(export: Export, repo_id: str, source: str) -> str:
    options = export.options
    text = get_format(export.format, options).card(options)
    command = f"python -m feedback export {export.format} --source {source} ..."
    return "\n".join(
        [
            f"# {repo_id}",
            "",
            f"Built by chat-feedback on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC from `{source}` (`{command}`).",
            "",
            f"**Format.** {text} See https://huggingface.co/docs/trl/dataset_formats.",
            "",
            "**How.** Conversations their users or a reviewer deleted are left out whole (`left_out.deleted`); "
            "the latest rating of each reply counts (an undo removes it); flagged replies are left out "
            "unless `keep_flagged` (a flag a reviewer dismissed does not count); duplicate records and identical rows "
            "are kept once (with `include_ids`, a row's `count` says how many conversations gave it). The train/test "
            "split is by "
            "conversation: a conversation is in `test` when a hash of its id, keyed by the seed, falls below "
            "`test_size`, so no conversation is in both. Messages keep `role` and `content`; an attached file "
            "appears as an `[attached file: ...]` line, as the model saw it.",
            "",
            "## Options",
            "",
            "```json",
            json.dumps(options.as_dict(), indent=2),
            "```",
            "",
            "## Counts",
            "",
            "```json",
            json.dumps(_counts(export.stats), indent=2),
            "```",
            "",
        ]
    )


def _counts(stats: dict) -> dict:
    return {key: value for key, value in stats.items() if key not in ("format", "options")}
