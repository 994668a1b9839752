"""What an export format is: one small spec object per format, one module per spec.

A spec says everything that differs between formats: its columns (``datasets.Features``), which
replies it leaves out and why, how its rows are built from candidate replies (one row per reply,
or one per pair of replies), and its dataset-card text. The export pipeline
(``feedback.export.build``) reads formats only through these fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from datasets import Features

from feedback.rules import LIKE, UNRATED, ReplyVerdicts

if TYPE_CHECKING:
    import pyarrow as pa

    from feedback.export.options import ExportOptions
    from feedback.rules import Verdicts

LeftOut = Callable[[ReplyVerdicts, "ExportOptions"], dict[str, np.ndarray]]
"""``(replies, options) -> {status: mask}``: per reason (a name of ``feedback.export.replies.STATUSES``),
the replies a format leaves out for it (a reply with several reasons gets the earliest in STATUSES)."""


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

    def row_features(self, *, include_ids: bool = False) -> Features:
        """The ``datasets.Features`` of a row (with the id columns if asked)."""
        return Features({**self.features, **self.id_features}) if include_ids else Features(dict(self.features))


@dataclass(frozen=True, kw_only=True)
class ReplyFormat(ExportFormat):
    """A format with one row per kept reply, built shard by shard as the turns are read.

    Attributes:
        rows: ``(candidates, verdicts) -> table``: the rows of kept replies (columns of
            ``feedback.export.replies.select_replies``), with at least the format's columns.
    """

    rows: Callable[[pa.Table, Verdicts], pa.Table]


@dataclass(frozen=True, kw_only=True)
class PairFormat(ExportFormat):
    """A format with one row per pair of replies to the same prompt, built once every shard is read.

    A liked reply is ``chosen`` and a disliked one ``rejected`` (``feedback.export.pairs``, within
    a conversation or, with ``cross_conversation``, across); a reviewer's corrected reply is also
    ``chosen`` against the flagged reply it corrects.

    Attributes:
        rows: ``(chosen, rejected) -> table``: rows from aligned chosen and rejected replies.
    """

    paired: ClassVar[bool] = True

    rows: Callable[[pa.Table, pa.Table], pa.Table]


def left_out_of_training(replies: ReplyVerdicts, options: ExportOptions, *,
                         positive: np.ndarray) -> dict[str, np.ndarray]:
    """The reasons the training formats share: ``unrated``, ``confirmed_flag`` (a reply whose flag
    a reviewer confirmed, where it would be a ``positive`` example), ``flagged`` (unless ``keep_flagged``;
    a dismissed flag does not count)."""
    masks = {"unrated": replies.rating == UNRATED, "confirmed_flag": replies.confirmed & positive}
    if not options.keep_flagged:
        masks["flagged"] = replies.flag_stands
    return masks


def liked(replies: ReplyVerdicts) -> np.ndarray:
    """Replies whose latest rating is a like."""
    return replies.rating == LIKE
