"""The app's errors, in one place: what a user may be told, and how it reaches the page.

- :class:`FeedbackError`: a request refused because of its input (a malformed id, a value out of
  range, a file that was not uploaded). Its message is safe to show and clipped.
- :class:`SaveError`: a record the data dir could not take (disk full, read-only).
- :func:`refusal`: either one as the ``gr.Error`` Gradio shows, without a server-side traceback.

No gradio import at module level: exports and the command line use these errors too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import gradio as gr

MAX_ERROR_CHARS = 300
"""Refusal messages are clipped to this many characters (they may quote what the client sent)."""


def clip(value: object, limit: int = 80) -> str:
    """``str(value)``, cut to ``limit`` characters with "..." when longer."""
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "..."


class FeedbackError(ValueError):
    """A request refused because of its input. The message is safe to show to the user (clipped
    to :data:`MAX_ERROR_CHARS`)."""

    def __init__(self, message: str) -> None:
        super().__init__(clip(message, MAX_ERROR_CHARS))


class SaveError(RuntimeError):
    """A record that could not be written (disk full, data dir not writable). Nothing partial is
    kept; later writes go to a new shard and succeed once space returns. Safe to show."""

    def __init__(self) -> None:
        super().__init__("could not save: the server cannot write records right now; please try again later")


def refusal(error: FeedbackError | SaveError) -> gr.Error:
    """The ``gr.Error`` shown for a refused request: its message, no traceback in the server log."""
    import gradio as gr

    return gr.Error(str(error), print_exception=False)
