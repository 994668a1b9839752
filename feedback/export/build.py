"""Records in, an :class:`Export` out: the one pipeline behind the CLI, the notebook API and the tests.

The work is done by DuckDB (``feedback.export.engine``: load the shards, judge ratings, flags, reviews and
deletions by ``feedback.rules``, give every turn its status, build, serialize and deduplicate rows, split
them); this module is the Python face of it. Records come either from a data dir
(``{data_dir}/turns|ratings|flags|reviews|deletions/*.jsonl``, or a folder standing for a Hub repo) or from
Python objects, which are written as JSON lines to a temporary data dir first, so both are parsed by the same
reader. What differs between formats is in their specs (``feedback.export.formats``); nothing here names a
format.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa
import pyarrow.json as paj
from pydantic import BaseModel

from feedback.export import engine
from feedback.export.formats import get_format
from feedback.export.options import ExportOptions
from feedback.export.read import records_to_jsonl
from feedback.export.rows import SPLITS
from feedback.export.stats import build_stats

if TYPE_CHECKING:
    from datasets import DatasetDict, Features

Records = Iterable[BaseModel | dict[str, Any]]


@dataclass
class Export:
    """The result of an export: its stats and where its rows are.

    Rows are kept in memory (``lines``: ``(split, JSON line)`` in log order) when the export wrote no
    files, or read back from ``files`` (``split -> path`` of JSONL files, set by ``run_export``; a split
    with no rows has no file, and an export with no rows no files: ``{}``).

    Attributes:
        format: the format's name, one of ``feedback.export.FORMATS``.
        options: what it was asked for.
        stats: see ``feedback.export.stats``.
    """

    format: str
    options: ExportOptions
    stats: dict[str, Any]
    lines: list[tuple[str, bytes]] | None = None
    files: dict[str, Path] | None = None

    def _lines(self, split: str | None) -> list[bytes]:
        if self.lines is not None:
            return [line for name, line in self.lines if split in (None, name)]
        if self.files is None:
            raise ValueError("this export's rows went to files; read them there")
        splits = SPLITS if split is None else (split,)
        return [
            line for name in splits if name in self.files for line in self.files[name].read_bytes().splitlines() if line
        ]

    def rows(self, split: str | None = None) -> list[dict[str, Any]]:
        """The rows of ``split`` (None: all, in order) as JSON values, exactly as the JSONL files hold them."""
        return [orjson.loads(line) for line in self._lines(split)]

    def table(self, split: str | None = None) -> pa.Table:
        """The rows of ``split`` (None: all) as an Arrow table typed by ``feedback.features``."""
        schema = self._features().arrow_schema
        lines = self._lines(split)
        if not lines:
            return schema.empty_table()
        data = pa.py_buffer(b"\n".join(lines) + b"\n")
        table = paj.read_json(pa.BufferReader(data), parse_options=paj.ParseOptions(explicit_schema=schema))
        return table.select(schema.names).cast(schema)

    def _features(self) -> Features:
        return get_format(self.format, self.options).row_features(include_ids=self.options.include_ids)

    def to_dataset_dict(self) -> DatasetDict:
        """``train`` and ``test`` as a ``datasets.DatasetDict`` with the format's features."""
        from datasets import Dataset, DatasetDict, DatasetInfo, NamedSplit
        from datasets.table import InMemoryTable

        info = DatasetInfo(features=self._features())
        return DatasetDict(
            {
                split: Dataset(InMemoryTable(self.table(split)), info=info.copy(), split=NamedSplit(split))
                for split in SPLITS
            }
        )


def export_data_dir(
    fmt: str,
    data_dir: str | os.PathLike[str],
    options: ExportOptions | None = None,
    *,
    files: dict[str, Path] | None = None,
    progress: bool = False,
) -> Export:
    """Export the records of a local data dir (or of a folder standing for a Hub repo).

    Args:
        fmt: one of ``feedback.export.FORMATS``.
        data_dir: a folder with ``turns/``, ``ratings/``, ``flags/``, ``reviews/`` and ``deletions/`` JSONL
            shards (any may be missing).
        options: see :class:`ExportOptions` (default: all defaults).
        files: per split (``train``, ``test``), a file to write its rows to, as JSON lines (a split with no
            rows: an empty file); without them, the rows stay in the returned export (``Export.lines``).
        progress: show progress bars.

    Raises:
        ValueError: for an unknown format.
        FileNotFoundError: when ``data_dir`` is not a directory.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"data dir {root} does not exist")
    options = options or ExportOptions()
    spec = get_format(fmt, options)
    result = engine.run(spec, options, root, files=files, progress=progress)
    return Export(format=fmt, options=options, stats=build_stats(spec, options, result), lines=result.lines)


def export_records(
    fmt: str,
    turns: Records,
    ratings: Records = (),
    flags: Records = (),
    options: ExportOptions | None = None,
    reviews: Records = (),
    deletions: Records = (),
) -> Export:
    """Export records given as objects: ``schemas.records`` models or dicts of their JSON form.

    They are written as JSON lines to a temporary data dir (one shard per kind) and exported from there, so
    invalid records are skipped and counted (``stats["records"][kind]["bad_lines"]``) as in files. Every
    record of a conversation a deletion record names is left out (``feedback.rules``).
    """
    given = {"turns": turns, "ratings": ratings, "flags": flags, "reviews": reviews, "deletions": deletions}
    folder = Path(tempfile.mkdtemp(prefix="feedback-records-"))
    try:
        for kind, records in given.items():
            (folder / kind).mkdir()
            (folder / kind / "records.jsonl").write_bytes(records_to_jsonl(records))
        export = export_data_dir(fmt, folder, options)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for counts in export.stats["records"].values():
        counts["files"] = 0  # records given as objects: no file was read
    return export


def _rows(fmt: str, turns: Records, ratings: Records, flags: Records, options: dict[str, Any]) -> list[dict[str, Any]]:
    reviews, deletions = options.pop("reviews", ()), options.pop("deletions", ())
    return export_records(
        fmt, turns, ratings, flags, ExportOptions(**options), reviews=reviews, deletions=deletions
    ).rows()


def sft_rows(turns: Records, ratings: Records = (), flags: Records = (), **options: Any) -> list[dict[str, Any]]:
    """TRL conversational prompt-completion rows of liked replies and reviewers' corrections.

    >>> sft_rows(turns, ratings)  # doctest: +SKIP
    [{"prompt": [{"role": "user", "content": "Hi"}], "completion": [{"role": "assistant", "content": "Hello!"}]}]

    ``options`` are :class:`ExportOptions` fields (e.g. ``include_unrated=True``; ``messages=True``
    for TRL's language-modeling rows ``{"messages": [...prompt, {"role": "assistant", ...}]}``), plus
    ``reviews=[...]`` (review records) and ``deletions=[...]`` (deletion records: their conversations are
    left out); every split's rows are returned, in order.
    """
    return _rows("sft", turns, ratings, flags, options)


def dpo_rows(turns: Records, ratings: Records = (), flags: Records = (), **options: Any) -> list[dict[str, Any]]:
    """TRL preference rows ``{"prompt", "chosen", "rejected"}`` (explicit prompt) of liked/disliked pairs:
    every pair of a prompt, or one with ``pairs="latest"`` (``feedback.export.rows``)."""
    return _rows("dpo", turns, ratings, flags, options)


def kto_rows(turns: Records, ratings: Records = (), flags: Records = (), **options: Any) -> list[dict[str, Any]]:
    """TRL unpaired preference rows ``{"prompt", "completion", "label"}``, one per rated reply."""
    return _rows("kto", turns, ratings, flags, options)


def flag_rows(turns: Records, ratings: Records = (), flags: Records = (), **options: Any) -> list[dict[str, Any]]:
    """Review-queue rows of flagged replies (columns: ``feedback.export.formats.flags.FEATURES``)."""
    return _rows("flags", turns, ratings, flags, options)


def rows_from_data_dir(fmt: str, data_dir: str | os.PathLike[str], **options: Any) -> list[dict[str, Any]]:
    """Every row of a data dir's export in ``fmt`` (all splits, in order), as JSON values.

    For example ``rows_from_data_dir("dpo", "data")``; ``options`` are :class:`ExportOptions` fields.
    """
    return export_data_dir(fmt, data_dir, ExportOptions(**options)).rows()
