"""``FeedbackCallback``: a ``gr.FlaggingCallback`` that writes ratings and flags as records.

It serves two callers:

- the chat page: :func:`feedback.web.page.attach_feedback` calls :meth:`FeedbackCallback.setup` with the
  ``gr.Chatbot`` alone, and each like / dislike / flag-menu click becomes
  ``flag([conversation_id, message_id, comment], flag_option=...)``;
- ``gr.Interface(..., flagging_callback=FeedbackCallback())``: Gradio calls ``setup`` with the
  interface's input and output components and ``flag`` with their values; each flag records the
  example as a one-turn conversation plus a rating ("Like"/"Dislike") or a flag (any other option).
  The first text input is the user message and the other inputs go to the turn's ``params`` by
  label; the records go to the data dir (``data_dir``, else ``FEEDBACK_DATA_DIR``, else
  ``./data``), not to Gradio's ``flagging_dir``, and every record says ``source: interface``.

``flag_option`` follows ``gr.Chatbot(feedback_options=...)``: "Like" and "Dislike" are ratings,
"" is an undo of the rating, any other string is a flag reason.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from feedback.recorder import FeedbackRecorder
from feedback.store import FeedbackStore
from feedback.web.inputs import ExtraInputs
from schemas.records import ChatMessage, GenerationParams, Source, Turn, new_id
from schemas.settings import DEFAULT_FLAG_REASONS, default_data_dir

LIKE, DISLIKE = "Like", "Dislike"
INTERFACE_FLAG_REASON = "Flagged"
"""The reason recorded when a ``gr.Interface`` flag button has no option of its own."""


def option_from_like(liked: bool | str | None) -> str:
    """Map ``gr.LikeData.liked`` (True, False, "" or None for an un-click, or an option string)
    to a ``flag_option``: "Like", "Dislike", "" or the option."""
    if liked is True:
        return LIKE
    if liked is False:
        return DISLIKE
    return "" if liked is None else str(liked)


class FeedbackCallback(gr.FlaggingCallback):
    """Writes each flag event as a :class:`~schemas.Rating` or :class:`~schemas.Flag` record.

    Args:
        recorder: where records go; when None, :meth:`setup` opens one on ``data_dir``.
        data_dir: the data dir when no recorder is given (default: ``FEEDBACK_DATA_DIR``, else
            ``./data``); Gradio's ``flagging_dir`` is not used.
        flag_reasons: the flag reasons of a recorder opened by :meth:`setup`.
        source: the ``source`` written on records (default: ``ui`` for a chat page,
            ``interface`` for a ``gr.Interface``).
        outputs: with ``gr.Interface``, how many of the last components are outputs (the reply).
        model: with ``gr.Interface``, the model name recorded on its turns.
    """

    def __init__(
        self,
        recorder: FeedbackRecorder | None = None,
        *,
        data_dir: str | Path | None = None,
        flag_reasons: Sequence[str] = DEFAULT_FLAG_REASONS,
        source: Source | None = None,
        outputs: int = 1,
        model: str = "gradio-interface",
    ) -> None:
        if outputs < 1:
            raise ValueError(f"'outputs' must be at least 1, not {outputs!r}")
        self.recorder = recorder
        self.data_dir = data_dir
        self.flag_reasons = tuple(flag_reasons)
        self.source: Source = source or "ui"
        self._source_given = source is not None
        self.outputs = outputs
        self.model = model
        self.components: list[gr.components.Component] = []
        self.count = 0

    def setup(self, components: Sequence[gr.components.Component], flagging_dir: str | Path) -> None:
        """Remember the components and open the data dir if no recorder was given (Gradio's
        ``flagging_dir`` is ignored: records belong in the data dir, where sync and exports look)."""
        self.components = list(components)
        if not self._source_given:
            self.source = "ui" if self.chat_mode else "interface"
        if self.recorder is None:
            data_dir = self.data_dir or os.environ.get("FEEDBACK_DATA_DIR") or default_data_dir()
            self.recorder = FeedbackRecorder(FeedbackStore(data_dir), flag_reasons=self.flag_reasons)

    @property
    def chat_mode(self) -> bool:
        """True when set up for a chat page (a single ``gr.Chatbot``)."""
        return len(self.components) == 1 and isinstance(self.components[0], gr.Chatbot)

    def flag(self, flag_data: list[Any], flag_option: str | None = None, username: str | None = None) -> int:
        """Record one feedback event; returns how many this callback has recorded so far.

        Chat mode: ``flag_data`` is ``[conversation_id, message_id, comment or None]``.
        Interface mode: the values of the interface's components, outputs last.

        Raises:
            RuntimeError: when called before :meth:`setup`.
            feedback.recorder.FeedbackError: for ids or options the recorder refuses.
        """
        if self.recorder is None:
            raise RuntimeError("FeedbackCallback.flag() called before setup()")
        if self.chat_mode:
            conversation_id, message_id, comment = (list(flag_data) + [None, None, None])[:3]
        else:
            conversation_id, message_id = self._record_example(flag_data)
            comment = None
        self._record_option(conversation_id, message_id, flag_option, comment)
        self.count += 1
        return self.count

    def _record_option(self, conversation_id: str, message_id: str, option: str | None, comment: str | None) -> None:
        assert self.recorder is not None
        if option in (LIKE, DISLIKE, "") or self.chat_mode:
            choice = {LIKE: "like", DISLIKE: "dislike"}.get(option or "", option or "")
            self.recorder.record_click(conversation_id, message_id, choice, comment=comment, source=self.source)
        else:
            self.recorder.flag(
                conversation_id,
                message_id,
                [option or INTERFACE_FLAG_REASON],
                comment=comment,
                source=self.source,
                any_reason=True,
            )

    def _record_example(self, values: list[Any]) -> tuple[str, str]:
        """The flagged example as a one-turn conversation: the first text input is the user
        message, the other inputs go to ``params`` by label, the outputs are the reply."""
        assert self.recorder is not None
        split = max(len(values) - self.outputs, 0)
        inputs, input_values = self.components[:split], values[:split]
        text_at = next((i for i, v in enumerate(input_values) if isinstance(v, str)), None)
        prompt = self.recorder.check_message(input_values[text_at] if text_at is not None else "")
        others = [i for i in range(len(input_values)) if i != text_at]
        params = ExtraInputs.of([inputs[i] for i in others if i < len(inputs)]).params(
            [input_values[i] for i in others]
        )
        response = _describe(self.components[split:], values[split:])
        turn = self.recorder.record_turn(
            Turn(
                conversation_id=new_id(),
                turn_index=0,
                messages=(ChatMessage(role="user", content=prompt),),
                response=response,
                model=self.model,
                params=GenerationParams(**params),
                latency_ms=None,
                source="interface",
            )
        )
        return turn.conversation_id, turn.message_id


def _describe(components: Sequence[gr.components.Component], values: Sequence[Any]) -> str:
    """Text of component values: a lone string as is, otherwise ``label: value`` lines."""
    if len(values) == 1 and isinstance(values[0], str):
        return values[0]
    lines = []
    for i, value in enumerate(values):
        label = getattr(components[i], "label", None) if i < len(components) else None
        text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
        lines.append(f"{label or f'value {i}'}: {text}")
    return "\n".join(lines)
