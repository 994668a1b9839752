"""What a responder is: something that streams a reply to a chat, and says which model it is."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Responder(Protocol):
    """A chat model the app can talk to.

    Attributes:
        name: the responder kind (``echo``, ``openai``, ``replay``).
        model: the model id recorded with every turn.
        params: generation parameters recorded with every turn (keys of
            :class:`schemas.GenerationParams`; only those set).
    """

    name: str
    model: str
    params: dict[str, Any]

    def stream(self, messages: list[dict[str, str]], *, regenerate: bool = False) -> Iterator[str]:
        """Yield the reply as text deltas (pieces to concatenate).

        Args:
            messages: OpenAI chat format ``[{"role": "system"|"user"|"assistant", "content": str}]``,
                ending with a user message.
            regenerate: True when the user asked for another reply to the same prompt.
        Raises:
            feedback.responders.errors.ResponderError: when the model cannot answer.
        """
        ...
