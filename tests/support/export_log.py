"""Export test logs: :class:`Log` builds records the way the recorder writes them (a clock that ticks per
record), the example conversations (:data:`SCENARIOS`) with the rows each format gives (:data:`EXPECTED`,
in the short form of :func:`compact`), and the ``export`` command run in process (:func:`run_cli`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from feedback.export import ExportOptions, export_records
from feedback.store import FeedbackStore
from schemas.records import Flag, Rating, Turn
from support.records import make_turn

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class Log:
    """Builds a conversation log the way the recorder writes it, with a clock that ticks per record."""

    turns: list[Turn] = field(default_factory=list)
    ratings: list[Rating] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    clock: int = 0

    def now(self) -> datetime:
        self.clock += 1
        return T0 + timedelta(minutes=self.clock)

    def turn(
        self,
        conversation: str,
        index: int,
        prompt: list[tuple[str, str]],
        response: str,
        *,
        model: str = "m1",
        files: tuple[str, ...] = (),
        **links: str,
    ) -> Turn:
        turn = make_turn(
            conversation,
            index=index,
            prompt=prompt,
            files=files,
            response=response,
            model=model,
            latency_ms=5.0,
            timestamp=self.now(),
            **links,
        )
        self.turns.append(turn)
        return turn

    def rate(self, turn: Turn, rating: str | None, **extra: str) -> None:
        self.ratings.append(
            Rating(
                conversation_id=turn.conversation_id,
                message_id=turn.message_id,
                rating=rating,
                timestamp=self.now(),
                **extra,
            )
        )

    def flag(self, turn: Turn, *reasons: str, comment: str | None = None) -> None:
        self.flags.append(
            Flag(
                conversation_id=turn.conversation_id,
                message_id=turn.message_id,
                reasons=reasons,
                comment=comment,
                timestamp=self.now(),
            )
        )

    def export(self, fmt: str, **options):  # noqa: ANN201 - an Export
        options.setdefault("test_size", 0)
        return export_records(fmt, self.turns, self.ratings, self.flags, ExportOptions(**options))

    def write(self, data_dir: Path) -> Path:
        store = FeedbackStore(data_dir)
        for record in [*self.turns, *self.ratings, *self.flags]:
            store.append(record)
        store.close()
        return data_dir


U1 = [("user", "What is the capital of France?")]


def liked_reply(log: Log) -> None:
    log.rate(log.turn("conv-liked", 0, U1, "Paris."), "like")


def undone_like(log: Log) -> None:
    turn = log.turn("conv-undo", 0, U1, "Paris.")
    log.rate(turn, "like")
    log.rate(turn, None)


def rating_changed_twice(log: Log) -> None:
    turn = log.turn("conv-twice", 0, U1, "Paris.")
    for value in ("like", "dislike", "like"):
        log.rate(turn, value)


def flagged_like(log: Log) -> None:
    turn = log.turn("conv-flag", 0, U1, "Paris.")
    log.rate(turn, "like")
    log.flag(turn, "Harmful", comment="rude")
    log.flag(turn, "Harmful", "Inaccurate")


def regenerated_reply(log: Log) -> None:
    first = log.turn("conv-regen", 0, U1, "Lyon.")
    log.rate(first, "dislike")
    log.rate(log.turn("conv-regen", 0, U1, "Paris.", regenerated_from=first.message_id), "like")


def empty_reply(log: Log) -> None:
    empty = log.turn("conv-empty", 0, U1, "")
    log.rate(empty, "dislike")
    log.rate(log.turn("conv-empty", 0, U1, "Paris.", regenerated_from=empty.message_id), "like")


def edited_earlier_message(log: Log) -> None:
    first = log.turn("conv-edit", 0, U1, "Paris.")
    log.rate(first, "dislike")
    second = log.turn("conv-edit", 1, [*U1, ("assistant", "Paris."), ("user", "And Spain?")], "Madrid.")
    log.rate(second, "like")
    edited = log.turn("conv-edit", 0, [("user", "Capital of Italy?")], "Rome.", edited_from=first.message_id)
    log.rate(edited, "like")


def disliked_and_unrated(log: Log) -> None:
    log.rate(log.turn("conv-mixed", 0, U1, "Lyon."), "dislike")
    log.turn("conv-mixed", 1, [*U1, ("assistant", "Lyon."), ("user", "Sure?")], "Yes.")


SCENARIOS: dict[str, Callable[[Log], None]] = {
    "liked reply": liked_reply,
    "undo": undone_like,
    "rating changed twice": rating_changed_twice,
    "flag": flagged_like,
    "regenerated reply": regenerated_reply,
    "empty reply": empty_reply,
    "edited earlier message": edited_earlier_message,
    "disliked and unrated": disliked_and_unrated,
}
Q = (("user", "What is the capital of France?"),)
EXPECTED = {  # scenario -> format -> compact rows (see `compact`)
    "liked reply": {"sft": [Q + (("assistant", "Paris."),)], "dpo": [], "kto": [(Q, "Paris.", True)], "flags": []},
    "undo": {"sft": [], "dpo": [], "kto": [], "flags": []},
    "rating changed twice": {
        "sft": [Q + (("assistant", "Paris."),)],
        "dpo": [],
        "kto": [(Q, "Paris.", True)],
        "flags": [],
    },
    "flag": {
        "sft": [],
        "dpo": [],
        "kto": [],
        "flags": [("Paris.", (("Harmful", 2), ("Inaccurate", 1)), 2, "like", ("rude",))],
    },
    "regenerated reply": {
        "sft": [Q + (("assistant", "Paris."),)],
        "dpo": [(Q, "Paris.", "Lyon.")],
        "kto": [(Q, "Lyon.", False), (Q, "Paris.", True)],
        "flags": [],
    },
    "empty reply": {
        "sft": [Q + (("assistant", "Paris."),)],
        "dpo": [(Q, "Paris.", "")],
        "kto": [(Q, "", False), (Q, "Paris.", True)],
        "flags": [],
    },
    "edited earlier message": {
        "sft": [
            Q + (("assistant", "Paris."), ("user", "And Spain?"), ("assistant", "Madrid.")),
            (("user", "Capital of Italy?"), ("assistant", "Rome.")),
        ],
        "dpo": [],
        "kto": [
            (Q, "Paris.", False),
            (Q + (("assistant", "Paris."), ("user", "And Spain?")), "Madrid.", True),
            ((("user", "Capital of Italy?"),), "Rome.", True),
        ],
        "flags": [],
    },
    "disliked and unrated": {"sft": [], "dpo": [], "kto": [(Q, "Lyon.", False)], "flags": []},
}


def _chat(messages: list[dict]) -> tuple:
    assert all(set(message) == {"role", "content"} for message in messages)
    return tuple((message["role"], message["content"]) for message in messages)


def compact(fmt: str, row: dict) -> tuple:
    """A row in a form short enough to write out in EXPECTED."""
    if fmt == "sft":  # prompt + completion, or (--messages) the messages: the same compact form
        if "messages" in row:
            return _chat(row["messages"])
        ((role, _),) = completion = _chat(row["completion"])
        assert role == "assistant" and list(row) == ["prompt", "completion"]
        return _chat(row["prompt"]) + completion
    if fmt == "dpo":
        chosen, rejected = _chat(row["chosen"]), _chat(row["rejected"])
        assert chosen[0][0] == rejected[0][0] == "assistant" and len(chosen) == len(rejected) == 1
        return _chat(row["prompt"]), chosen[0][1], rejected[0][1]
    if fmt == "kto":
        ((role, completion),) = _chat(row["completion"])
        return _chat(row["prompt"]), completion, row["label"]
    reasons = tuple((r["reason"], r["count"]) for r in row["reasons"])
    return _chat(row["completion"])[0][1], reasons, row["flag_count"], row["rating"], tuple(row["comments"])


def many_conversations(log: Log, count: int = 40) -> None:
    for n in range(count):
        first = log.turn(f"conversation-{n:03d}", 0, [("user", f"question {n}")], f"answer {n}")
        log.rate(first, "dislike" if n % 2 else "like")
        again = log.turn(
            f"conversation-{n:03d}", 0, [("user", f"question {n}")], f"better {n}", regenerated_from=first.message_id
        )
        log.rate(again, "like", comment="good" if n % 3 else None)
        if n % 5 == 0:
            log.flag(again, "Other")


def regenerated_four_times(log: Log, conversation: str = "conv-many") -> list[Turn]:
    """A reply and three regenerations, rated dislike, like, dislike, like."""
    replies = []
    for text, rating in (("Lyon.", "dislike"), ("Paris.", "like"), ("Nice.", "dislike"), ("It is Paris.", "like")):
        reply = log.turn(conversation, 0, U1, text, regenerated_from=replies[0].message_id if replies else None)
        log.rate(reply, rating)
        replies.append(reply)
    return replies


def flagged_dislike(log: Log, *reasons: str) -> None:
    first = log.turn("conv-flagged", 0, U1, "Lyon.")
    log.rate(first, "dislike")
    log.flag(first, *reasons)
    log.rate(log.turn("conv-flagged", 0, U1, "Paris.", regenerated_from=first.message_id), "like")


def run_cli(*argv: str) -> int:
    from feedback.cli import export as command

    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", *argv])
    return args.func(args)
