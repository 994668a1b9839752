"""What an export is asked for: the options that choose and split its rows (the formats are in
``feedback.export.formats``; ``FORMATS`` is re-exported here for the CLI)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from feedback.export.formats import FORMATS


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
        include_ids: add the id columns of the format (``ExportFormat.id_features``) to each row.

    Raises:
        ValueError: for a ``test_size`` outside [0, 1), a naive ``since``/``until``, or
            ``since`` not before ``until``.
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

    def __post_init__(self) -> None:
        if not 0 <= self.test_size < 1:
            raise ValueError(f"'test_size' must be in [0, 1), not {self.test_size!r}")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"'{name}' must be timezone-aware, not {value.isoformat()!r}")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError(f"'since' ({self.since.isoformat()}) must be before 'until' ({self.until.isoformat()})")
        object.__setattr__(self, "models", tuple(self.models))

    def as_dict(self) -> dict[str, Any]:
        """The options as JSON-ready values (times as ISO 8601 strings), for stats and the card."""
        values = asdict(self)
        for name in ("since", "until"):
            if values[name] is not None:
                values[name] = values[name].isoformat()
        values["models"] = list(self.models)
        return values


__all__ = ["FORMATS", "ExportOptions"]
