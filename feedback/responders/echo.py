"""The ``echo`` responder: deterministic answers for demos and tests, no model needed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class EchoResponder:
    """Answers ``You said: <last user message>`` word by word, numbering regenerations.

    The reply to a given conversation is always the same, so tests can predict it; a
    regeneration says so (``(take 2)``) so a retried reply differs from the first one.
    """

    name = "echo"
    model = "echo"

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def reply(self, messages: list[dict[str, str]], *, regenerate: bool = False) -> str:
        """The whole reply :meth:`stream` yields, for tests that predict it."""
        last = messages[-1]["content"] if messages else ""
        turn = sum(1 for m in messages if m["role"] == "user")
        text = f"You said: {last}" if last.strip() else "You sent an empty message."
        suffix = " (take 2)" if regenerate else ""
        return f"{text} [turn {turn}]{suffix}"

    def stream(self, messages: list[dict[str, str]], *, regenerate: bool = False) -> Iterator[str]:
        """Yield :meth:`reply` in word-sized pieces, as a streaming model would."""
        words = self.reply(messages, regenerate=regenerate).split(" ")
        for i, word in enumerate(words):
            yield word if i == 0 else " " + word
