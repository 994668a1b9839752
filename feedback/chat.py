"""Streaming a reply and recording it as a turn: the one path every answer takes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from feedback.recorder import FeedbackRecorder
from feedback.responders.base import Responder
from schemas.records import ChatMessage, GenerationParams, Source, Turn, new_id

TextStream = Callable[[list[ChatMessage], bool], Iterator[str]]
"""``(prompt messages, regenerate) -> cumulative reply texts``: how a reply is produced."""


def responder_stream(responder: Responder) -> TextStream:
    """Adapt a :class:`Responder` (text deltas) to a :data:`TextStream` (cumulative texts)."""

    def stream(messages: list[ChatMessage], regenerate: bool) -> Iterator[str]:
        text = ""
        for delta in responder.stream([m.to_openai() for m in messages], regenerate=regenerate):
            text += delta
            yield text

    return stream


@dataclass
class PendingTurn:
    """One reply being generated; iterate it for the reply so far, then read :attr:`turn`.

    The turn is recorded when the stream ends, or when it is closed early (the user pressed
    stop: the reply shown so far is what gets recorded). A stream that fails records nothing.
    """

    recorder: FeedbackRecorder
    stream: TextStream
    conversation_id: str
    messages: Sequence[ChatMessage]
    turn_index: int
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    source: Source = "ui"
    regenerated_from: str | None = None
    edited_from: str | None = None
    message_id: str = field(default_factory=new_id)
    measure_latency: bool = True
    turn: Turn | None = None

    def __iter__(self) -> Iterator[str]:
        started = time.perf_counter()
        text = ""
        finished = False
        self.recorder.begin_reply(self.conversation_id, self.message_id)  # clicks while it streams are kept
        try:
            for text in self.stream(list(self.messages), self.regenerated_from is not None):
                yield text
            finished = True
        except GeneratorExit:
            finished = True  # stopped by the user: record what was shown
            raise
        finally:
            if finished:
                self._record(text, started)
            else:
                self.recorder.abandon_reply(self.message_id)

    def _record(self, text: str, started: float) -> None:
        self.turn = self.recorder.record_turn(
            Turn(
                conversation_id=self.conversation_id,
                message_id=self.message_id,
                turn_index=self.turn_index,
                messages=tuple(self.messages),
                response=text,
                model=self.model,
                params=GenerationParams(**self.params),
                latency_ms=(time.perf_counter() - started) * 1000 if self.measure_latency else None,
                regenerated_from=self.regenerated_from,
                edited_from=self.edited_from,
                source=self.source,
            )
        )

    def run(self) -> Turn:
        """Consume the whole stream and return the recorded turn."""
        for _ in self:
            pass
        assert self.turn is not None
        return self.turn


def log_failure(conversation_id: str, what: str) -> None:
    """Log the exception being handled, tagged with the conversation."""
    logger.bind(conversation_id=conversation_id).exception("{} failed", what)
