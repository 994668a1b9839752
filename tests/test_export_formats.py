"""Export formats are specs, one module each: the registry, their columns, and adding one as a file."""

from __future__ import annotations

import sys
import textwrap

import pytest
from support.records import make_turn

from feedback.export import FORMATS, Export, ExportOptions, export_records
from feedback.export import formats as registry
from feedback.export.engine import status_case
from schemas.records import Flag, Rating, Turn

CID = "conversation-1"


def _turn(mid: str, response: str, minute: int) -> Turn:
    return make_turn(CID, mid, text="Hi", response=response, timestamp=f"2026-05-01T10:{minute:02d}:00Z")


class Log:
    """A reply, its liked regeneration (a DPO pair) and a flagged third try: rows in every format."""

    turns = [_turn("first-reply", "Go away.", 0), _turn("second-reply", "Hello!", 1), _turn("third-reply", "Hm.", 2)]
    ratings = [
        Rating(conversation_id=CID, message_id="first-reply", rating="dislike", timestamp="2026-05-01T11:00:00Z"),
        Rating(conversation_id=CID, message_id="second-reply", rating="like", timestamp="2026-05-01T11:01:00Z"),
    ]
    flags = [Flag(conversation_id=CID, message_id="third-reply", reasons=["Other"], timestamp="2026-05-01T12:00:00Z")]

    def export(self, fmt: str, **options: object) -> Export:
        return export_records(fmt, self.turns, self.ratings, self.flags, ExportOptions(test_size=0, **options))


@pytest.fixture(scope="module")
def log() -> Log:
    return Log()


def test_the_four_formats_are_found_in_listing_order():
    assert FORMATS == ("sft", "dpo", "kto", "flags")
    assert [registry.get_format(name).name for name in FORMATS] == list(FORMATS)
    with pytest.raises(ValueError, match="unknown export format 'orpo'; expected one of sft, dpo, kto, flags"):
        registry.get_format("orpo")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("include_ids", [False, True])
def test_rows_have_exactly_the_spec_columns(log, fmt, include_ids):
    spec = registry.get_format(fmt)
    export = log.export(fmt, include_ids=include_ids)
    columns = list(spec.row_features(include_ids=include_ids))
    assert export.rows() and all(list(row) == columns for row in export.rows())
    assert export.to_dataset_dict()["train"].features == spec.row_features(include_ids=include_ids)


def test_a_reason_outside_the_statuses_is_refused():
    with pytest.raises(ValueError, match="unknown reasons to leave a reply out: \\['too_long'\\]"):
        status_case({"too_long": "true"})


ORPO = '''
    """``orpo``: TRL's preference format again, for ORPOTrainer (a test's format)."""
    from dataclasses import replace

    from feedback.export.formats.dpo import FORMAT as DPO

    FORMAT = replace(DPO, name="orpo", order=25, card=lambda options: "ORPO pairs.")
'''


def test_adding_a_format_is_adding_one_module(tmp_path, monkeypatch, log):
    (tmp_path / "orpo.py").write_text(textwrap.dedent(ORPO))
    monkeypatch.setattr(registry, "__path__", [*registry.__path__, str(tmp_path)])
    try:
        found = registry._discover()
        monkeypatch.setattr(registry, "REGISTRY", found)
        assert list(found) == ["sft", "dpo", "orpo", "kto", "flags"]
        orpo = export_records("orpo", log.turns, log.ratings, log.flags)
        assert orpo.rows() == export_records("dpo", log.turns, log.ratings, log.flags).rows()
        assert orpo.stats["format"] == "orpo" and orpo.to_dataset_dict()["train"].num_rows
    finally:
        sys.modules.pop("feedback.export.formats.orpo", None)
