"""Fine-tuning datasets and the review queue, built from the logged turns, ratings and flags.

Formats are TRL's conversational dataset formats (https://huggingface.co/docs/trl/dataset_formats):
``sft`` (``messages``), ``dpo`` (``prompt``/``chosen``/``rejected``), ``kto``
(``prompt``/``completion``/``label``) and ``flags`` (the review queue); one spec per format in
``feedback.export.formats``. What counts (latest rating, undo, flags, review decisions) is
``feedback.rules``.

Pure functions from records to rows, for a notebook or a test::

    from feedback.export import sft_rows, dpo_rows, kto_rows, flag_rows, export_records
    rows = dpo_rows(turns, ratings, flags, cross_conversation=True)      # list of dicts
    export = export_records("kto", turns, ratings, flags, ExportOptions(test_size=0.2))
    export.rows("train"); export.stats; export.to_dataset_dict()         # thin `datasets` wrapper

A data dir (Arrow, no per-record validation, a few shards in memory at a time) or a Hub repo::

    export = export_data_dir("sft", "data", ExportOptions(include_unrated=True))
    rows = rows_from_data_dir("dpo", "data")            # e.g. to check a replayed data set
    run_export("dpo", "me/chat-logs", "out/dpo", push_to_hub="me/chat-dpo")   # what the CLI runs

Rows come in log order (shards by name, lines in order); see ``feedback.export.rows`` for the
split and the removal of identical rows, ``feedback.export.stats`` for ``stats.json``.
"""

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

__all__ = [
    "FORMATS",
    "Export",
    "ExportOptions",
    "dpo_rows",
    "export_data_dir",
    "export_records",
    "flag_rows",
    "in_test_split",
    "kto_rows",
    "push_export",
    "resolve_source",
    "rows_from_data_dir",
    "run_export",
    "sft_rows",
    "summary",
]
