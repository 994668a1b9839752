"""What an export is asked for: the options that choose and split its rows (the formats are in
``feedback.export.formats``). Light to import: the CLI's ``export --help`` reads it, not the formats."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from feedback.rules import QUALITY_REASONS

Pairs = Literal["all", "latest"]
PAIRS: tuple[Pairs, ...] = get_args(Pairs)
"""How many DPO pairs a prompt gives: ``all`` its liked x disliked replies, or the ``latest`` pair."""


@dataclass(frozen=True, kw_only=True)
class ExportOptions:
    """How replies are chosen and split. Every field has the CLI option of the same name.

    Attributes:
        include_unrated: ``sft``: also take replies with no rating (never rated, or undone).
        cross_conversation: paired formats (``dpo``): also pair liked and disliked replies to
            identical prompts in different conversations.
        keep_flagged: keep flagged replies in ``sft``, ``dpo`` and ``kto`` (left out by default).
        since: keep replies whose turn was written at or after this time (timezone-aware).
        until: keep replies whose turn was written before this time (timezone-aware).
        models: keep replies of these models only (empty: every model).
        test_size: the share of conversations in the ``test`` split, in [0, 1).
        seed: picks which conversations land in ``test``; the same seed, the same split.
        include_ids: add the id columns of the format (``ExportFormat.id_features``) and ``count``
            (distinct conversations that gave the row) to each row.
        messages: ``sft``: TRL's *language modeling* format (``messages``: prompt and reply in one
            list) instead of *prompt-completion*; ``SFTTrainer`` then computes the loss on every token
            of the row, the user's turns and earlier replies included.
        pairs: ``dpo``: ``all`` (default: every liked reply against every disliked reply to the same
            prompt) or ``latest`` (one pair per prompt: the latest liked reply against the latest
            disliked one, by the time of the replies).
        keep_flagged_reasons: ``dpo``, ``kto``: a disliked reply whose flags name only these reasons
            stays in as a negative (``rejected``, label false); default ``feedback.rules.QUALITY_REASONS``
            (``Inaccurate``, ``Off-topic``); empty: every flag keeps its reply out.

    Raises:
        ValueError: for a ``test_size`` outside [0, 1), a naive ``since``/``until``, ``since``
            not before ``until``, ``pairs`` other than ``all``/``latest``, or ``keep_flagged_reasons``
            given as one string.
    """

    include_unrated: bool = False
    cross_conversation: bool = False
    keep_flagged: bool = False
    since: datetime | None = None
    until: datetime | None = None
    models: tuple[str, ...] = ()
    test_size: float = 0.1
    seed: int = 0
    include_ids: bool = False
    messages: bool = False
    pairs: Pairs = "all"
    keep_flagged_reasons: tuple[str, ...] = QUALITY_REASONS

    def __post_init__(self) -> None:
        if not 0 <= self.test_size < 1:
            raise ValueError(f"'test_size' must be in [0, 1), not {self.test_size!r}")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"'{name}' must be timezone-aware, not {value.isoformat()!r}")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError(f"'since' ({self.since.isoformat()}) must be before 'until' ({self.until.isoformat()})")
        if isinstance(self.keep_flagged_reasons, str):
            raise ValueError(
                f"'keep_flagged_reasons' must be a list of reasons, not the string {self.keep_flagged_reasons!r}"
            )
        if self.pairs not in PAIRS:
            raise ValueError(f"'pairs' must be one of {', '.join(PAIRS)}, not {self.pairs!r}")
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "keep_flagged_reasons", tuple(self.keep_flagged_reasons))

    def as_dict(self) -> dict[str, Any]:
        """The options as JSON-ready values (times as ISO 8601 strings), for stats and the card."""
        values = asdict(self)
        for name in ("since", "until"):
            if values[name] is not None:
                values[name] = values[name].isoformat()
        values["models"] = list(self.models)
        values["keep_flagged_reasons"] = list(self.keep_flagged_reasons)
        return values


__all__ = ["PAIRS", "ExportOptions", "Pairs"]
