"""What an export format is: one small spec object per format, one module per spec.

A spec says everything that differs between formats: its columns (``datasets.Features``), which
replies it leaves out and why, how its rows are built from candidate replies (one row per reply,
or one per pair of replies), and its dataset-card text. The export pipeline
(``feedback.export.build``) reads formats only through these fields, and through
:meth:`ExportFormat.resolve`, which picks the variant an option asks for (``sft`` with
``messages``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from datasets import Features, Value

if TYPE_CHECKING:
    from feedback.export.options import ExportOptions

LeftOut = Callable[["ExportOptions"], dict[str, str]]
"""``options -> {status: SQL condition}``: per reason (a name of ``feedback.export.engine.STATUSES``), a DuckDB
SQL condition on one reply (the columns of ``feedback.export.engine.REPLY_COLUMNS``) that leaves it out for that
reason (a reply with several reasons gets the earliest in STATUSES)."""
COUNT = "count"
"""The id column of :data:`COUNT_FEATURE`: how many distinct conversations gave a row (identical rows are kept once)."""
COUNT_FEATURE = Features({COUNT: Value("int64")})


@dataclass(frozen=True, kw_only=True)
class ExportFormat:
    """One export format. Every export also leaves out incomplete turns and, as asked, other
    models and other dates; and keeps each reply and each identical row once.

    Attributes:
        name: the format's name (CLI argument, ``Export.format``, a tag on the pushed dataset).
        order: where it comes in listings (CLI choices, messages), smallest first.
        features: its columns in output order, TRL's names and types.
        id_features: the columns ``include_ids`` adds: where each row came from.
        left_out: which replies it leaves out and why (see :data:`LeftOut`).
        card: ``options -> text``: the "Format." paragraph of the dataset card.
        lists_every_flag: a flag a reviewer dismissed still counts as a flag (the review queue);
            otherwise it does not (``stats.json``'s ``flagged``, and the ``flagged`` reason).
        reports_balance: ``stats.json`` gets the liked/disliked balance of each split.
        takes_corrections: a reviewer's corrected reply makes a row (``feedback.rules``).
        counts_agreement: ``include_ids`` also adds :data:`COUNT` (distinct conversations that
            gave the row); off for a format whose columns name the reply (``flags``).
        variant: ``options -> spec or None``: the spec to use instead under these options (see
            :meth:`resolve`).
    """

    paired: ClassVar[bool] = False

    name: str
    order: int
    features: Features
    id_features: Features
    left_out: LeftOut
    card: Callable[[ExportOptions], str]
    lists_every_flag: bool = False
    reports_balance: bool = False
    takes_corrections: bool = False
    counts_agreement: bool = True
    variant: Callable[[ExportOptions], ExportFormat | None] | None = None

    def row_features(self, *, include_ids: bool = False) -> Features:
        """The ``datasets.Features`` of a row: the format's columns, then (``include_ids``) its id
        columns and, when it ``counts_agreement``, :data:`COUNT`."""
        if not include_ids:
            return Features(dict(self.features))
        return Features({**self.features, **self.id_features, **(COUNT_FEATURE if self.counts_agreement else {})})

    def built_columns(self, *, include_ids: bool = False) -> list[str]:
        """The columns a row is built with, in order: those of :meth:`row_features` but :data:`COUNT`, which
        is known only once every row was seen (the engine adds it last)."""
        return [name for name in self.row_features(include_ids=include_ids) if name != COUNT]

    def resolve(self, options: ExportOptions | None) -> ExportFormat:
        """The spec that builds this format's rows under ``options``: itself, or its ``variant``'s pick
        (e.g. ``sft`` with ``messages=True`` is TRL's language-modeling format)."""
        picked = self.variant(options) if self.variant is not None and options is not None else None
        return picked or self


@dataclass(frozen=True, kw_only=True)
class ReplyFormat(ExportFormat):
    """A format with one row per kept reply (and per reviewer's correction, when it ``takes_corrections``).

    Attributes:
        columns: per column of :meth:`built_columns`, the DuckDB SQL expression of its value over one reply
            (the names ``feedback.export.engine.reply_rows`` lists).
        with_verdicts: the expressions also name the reply's flag summary and latest rating.
    """

    columns: dict[str, str]
    with_verdicts: bool = False


@dataclass(frozen=True, kw_only=True)
class PairFormat(ExportFormat):
    """A format with one row per pair of replies to the same prompt, built once every shard is read.

    A liked reply is ``chosen`` and a disliked one ``rejected`` (``feedback.export.engine.pair_rows``,
    within a conversation or, with ``cross_conversation``, across; every pair or, with ``pairs="latest"``,
    one per prompt); a reviewer's corrected reply is also ``chosen`` against the flagged reply it
    corrects.

    Attributes:
        columns: per column of :meth:`built_columns`, the DuckDB SQL expression of its value over one pair
            (``chosen_<x>`` and ``rejected_<x>``: the names ``feedback.export.engine.pair_rows`` lists).
    """

    paired: ClassVar[bool] = True
    with_verdicts: ClassVar[bool] = False
    columns: dict[str, str]
    takes_corrections: bool = True


def left_out_of_training(options: ExportOptions, *, positive: str) -> dict[str, str]:
    """The reasons the training formats share, as SQL conditions: ``unrated``, ``confirmed_flag`` (a reply whose
    flag a reviewer confirmed, where it would be a ``positive`` example: a SQL condition), ``flagged`` (unless
    ``keep_flagged``; a dismissed flag does not count, nor, on a disliked reply that is not a ``positive``
    example, one that names only ``options.keep_flagged_reasons``: ``feedback.rules``)."""
    masks = {"unrated": "rating = 0", "confirmed_flag": f"confirmed AND ({positive})"}
    if not options.keep_flagged:
        masks["flagged"] = f"flagged AND NOT dismissed AND NOT (NOT ({positive}) AND rating = -1 AND kept_reasons_only)"
    return masks


LIKED = "rating = 1"
"""SQL: the reply's latest rating is a like."""


def kept_negatives_card(options: ExportOptions, negative: str) -> str:
    """The card's sentence on disliked replies that a quality flag leaves in, as ``negative`` ("" when none)."""
    if options.keep_flagged or not options.keep_flagged_reasons:
        return ""
    *others, last = [f"`{reason}`" for reason in options.keep_flagged_reasons]
    reasons = f"{', '.join(others)} or {last}" if others else last
    return f" A disliked reply flagged only as {reasons} stays in as {negative}; any other flag keeps its reply out."
