"""Fine-tuning datasets and the review queue, built from the logged turns, ratings and flags.

Formats are TRL's conversational dataset formats (https://huggingface.co/docs/trl/dataset_formats):
``sft`` (prompt-completion: ``prompt``/``completion``; with ``messages=True`` language modeling:
``messages``), ``dpo`` (``prompt``/``chosen``/``rejected``), ``kto``
(``prompt``/``completion``/``label``) and ``flags`` (the review queue); one spec per format in
``feedback.export.formats``. What counts (latest rating, undo, flags, review decisions,
corrections, quality flags) is ``feedback.rules``.

Pure functions from records to rows, for a notebook or a test::

    from feedback.export import sft_rows, dpo_rows, kto_rows, flag_rows, export_records
    rows = dpo_rows(turns, ratings, flags, cross_conversation=True)      # list of dicts
    export = export_records("kto", turns, ratings, flags, ExportOptions(test_size=0.2))
    export.rows("train"); export.stats; export.to_dataset_dict()         # thin `datasets` wrapper

A data dir (parsed and exported by DuckDB, no per-record validation, memory bounded) or a Hub repo::

    export = export_data_dir("sft", "data", ExportOptions(include_unrated=True))
    rows = rows_from_data_dir("dpo", "data")            # e.g. to check a replayed data set
    run_export("dpo", "me/chat-logs", "out/dpo", push_to_hub="me/chat-dpo")   # what the CLI runs

Rows come in log order (shards by name, lines in order); see ``feedback.export.rows`` for the
split, pairs and the removal of identical rows, ``feedback.export.engine`` for how they are built (DuckDB),
``feedback.export.stats`` for ``stats.json``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers see; at run time each name is imported on first use
    from feedback.export.build import (
        Export,
        dpo_rows,
        export_data_dir,
        export_records,
        flag_rows,
        kto_rows,
        rows_from_data_dir,
        sft_rows,
    )
    from feedback.export.formats import FORMATS
    from feedback.export.options import ExportOptions
    from feedback.export.rows import in_test_split
    from feedback.export.run import push_export, run_export, summary
    from feedback.hub.source import resolve_source

_EXPORTS = {
    **dict.fromkeys(
        [
            "Export",
            "dpo_rows",
            "export_data_dir",
            "export_records",
            "flag_rows",
            "kto_rows",
            "rows_from_data_dir",
            "sft_rows",
        ],
        "feedback.export.build",
    ),
    "FORMATS": "feedback.export.formats",
    "ExportOptions": "feedback.export.options",
    "in_test_split": "feedback.export.rows",
    **dict.fromkeys(["push_export", "run_export", "summary"], "feedback.export.run"),
    "resolve_source": "feedback.hub.source",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562), so that importing one submodule
    (``feedback.export.options`` for the CLI's ``--help``) does not import the Hub client."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'feedback.export' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
