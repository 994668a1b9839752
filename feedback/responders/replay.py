"""The ``replay`` responder: answers with the replies recorded in an hh-rlhf style file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from feedback.replay_data import NoRecordedReply, ReplayIndex
from feedback.responders.errors import ResponderError


class ReplayResponder:
    """Replays recorded conversations (Anthropic hh-rlhf ``chosen``/``rejected`` JSONL, ``.gz`` accepted).

    For a conversation so far that matches a replayable pair, answers the recorded reply; at the
    pair's last turn the first answer is ``rejected``'s last reply and a regeneration gives
    ``chosen``'s (see :class:`feedback.replay_data.ReplayIndex`). ``model`` is ``replay:<file name>``.

    Raises:
        ResponderError: from :meth:`stream`, when the conversation is not in the file.
    """

    name = "replay"

    def __init__(self, path: str | Path, *, index: ReplayIndex | None = None) -> None:
        self.path = Path(path)
        self.index = index if index is not None else ReplayIndex.from_file(self.path)
        self.model = f"replay:{self.path.name}"
        self.params: dict[str, Any] = {}

    def stream(self, messages: list[dict[str, str]], *, regenerate: bool = False) -> Iterator[str]:
        """Yield the recorded reply in one piece (an empty reply yields nothing)."""
        try:
            reply = self.index.reply_for(messages, regenerate=regenerate)
        except NoRecordedReply as error:
            raise ResponderError(f"no recorded reply for this conversation in {self.path.name}: {error}") from error
        if reply:
            yield reply
