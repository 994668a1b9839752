"""Gradio's chat messages as the records' :class:`~schemas.records.ChatMessage`: pure conversion.

Gradio hands the chat history over in several shapes (see DESIGN.md): from the page, content is a
list of parts (``[{"type": "text", "text": ...}, {"type": "file", "file": {...}}]``); from the API,
a plain string; older apps use a file tuple. These functions turn any of them into the OpenAI/TRL
message the records keep. They do no I/O of their own: files are handed to the ``store_file``
function the caller passes (which checks that the file was uploaded and copies it into the data
dir), so the functions can be tested with a plain ``dict``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

from gradio.components.chatbot import Message, MessageDict, NormalizedMessageDict
from gradio.components.multimodal_textbox import MultimodalValue

from schemas.records import ChatMessage

GradioMessage: TypeAlias = MessageDict | NormalizedMessageDict | Message
"""One message of a ``gr.Chatbot`` value, as a dict (page, API) or Gradio's model."""

StoreFile = Callable[[Any], str]
"""``file -> path in the data dir``: takes a file part's ``{"path": ...}`` (or a path) and returns
where it was stored (``files/<sha256><ext>``); raises to refuse it."""

ROLES = ("user", "assistant", "system")


def role_of(message: GradioMessage | Any) -> str | None:
    """The message's ``role``, or None when it has none."""
    return message.get("role") if isinstance(message, dict) else getattr(message, "role", None)


def content_of(message: GradioMessage | Any) -> Any:
    """The message's ``content`` (a string, a list of parts, a part, a file tuple or None)."""
    return message.get("content") if isinstance(message, dict) else getattr(message, "content", None)


def reply_id(message: GradioMessage | Any) -> str | None:
    """The ``message_id`` an assistant message carries in its metadata (``{"id": ...}``, set by
    the chat page on every reply it logs), or None."""
    metadata = message.get("metadata") if isinstance(message, dict) else getattr(message, "metadata", None)
    value = metadata.get("id") if isinstance(metadata, dict) else getattr(metadata, "id", None)
    return value if isinstance(value, str) and value else None


def reply_ids(history: Sequence[GradioMessage]) -> list[str | None]:
    """The metadata ids of the assistant messages of ``history``, in order (None where missing)."""
    return [reply_id(message) for message in history if role_of(message) == "assistant"]


def assistant_message(text: str, message_id: str) -> dict[str, Any]:
    """A reply as the chat shows it, carrying its ``message_id`` (Gradio keeps a metadata ``id``
    without a ``title`` through every round trip and renders the message as a plain reply)."""
    return {"role": "assistant", "content": text, "metadata": {"id": message_id}}


def assistant_position(history: Sequence[GradioMessage], index: int | Sequence[int]) -> int:
    """How many assistant messages come before chat position ``index`` (``gr.LikeData.index``):
    the reply at ``index`` is the ``k``-th reply of the conversation, counting from 0."""
    position = index[0] if isinstance(index, list | tuple) else index
    return sum(1 for message in history[:position] if role_of(message) == "assistant")


def content_parts(content: Any, store_file: StoreFile) -> tuple[str, list[str]]:
    """A message's text (parts joined by newlines) and its stored files.

    >>> content_parts([{"type": "text", "text": "hi"}, {"type": "file", "file": {"path": "a.png"}}], str.upper)
    ('hi', ['A.PNG'])
    """
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    if isinstance(content, tuple):
        return "", [store_file(part) for part in content]
    if isinstance(content, dict):
        content = [content]
    texts, files = [], []
    for part in content if isinstance(content, list) else [content]:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(part.get("text") or "")
        elif kind == "file" or (isinstance(part, dict) and "path" in part):
            files.append(store_file(_file_path(part.get("file", part))))
        else:
            texts.append(str(part))
    return "\n".join(texts), files


def history_messages(history: Sequence[GradioMessage], store_file: StoreFile) -> list[ChatMessage]:
    """Gradio's chat history as :class:`ChatMessage` objects; consecutive messages of one role
    (a text and a file sent together) merge into one, and messages of other roles are left out."""
    merged: list[ChatMessage] = []
    for message in history:
        role = role_of(message)
        if role not in ROLES:
            continue
        text, files = content_parts(content_of(message), store_file)
        if merged and merged[-1].role == role:
            last = merged.pop()
            text = "\n".join(t for t in (last.content, text) if t)
            files = [*last.files, *files]
        merged.append(ChatMessage(role=role, content=text, files=tuple(files)))
    return merged


def user_message(
    message: str | MultimodalValue | None, store_file: StoreFile, check_text: Callable[[object], str]
) -> ChatMessage:
    """The user's new message: a string, or ``{"text", "files"}`` from a multimodal textbox.

    ``check_text`` validates the text (e.g. :meth:`FeedbackRecorder.check_message`) before any
    file is stored.
    Raises:
        TypeError: when ``files`` is not a list; whatever ``check_text`` or ``store_file`` raise.
    """
    if isinstance(message, dict):
        text = check_text(message.get("text", ""))
        files = message.get("files") or []
        if not isinstance(files, list):
            raise TypeError("the message's files must be a list of uploaded files")
        stored = [store_file(_file_path(f)) for f in files]
    else:
        text, stored = check_text("" if message is None else message), []
    return ChatMessage(role="user", content=text, files=tuple(stored))


def last_exchange(history: Sequence[GradioMessage]) -> tuple[int, int] | None:
    """``(start, end)``: the last assistant message is at ``end``, and the user messages just
    before it start at ``start``; None when the chat does not end that way."""
    last = max((i for i, m in enumerate(history) if role_of(m) == "assistant"), default=None)
    start = last
    while start is not None and start > 0 and role_of(history[start - 1]) == "user":
        start -= 1
    if last is None or start == last:
        return None
    assert start is not None
    return start, last


def reply_text(value: Any) -> str:
    """A chat function's reply (a string, a message dict, or anything printable) as text."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return str(value.get("content", ""))
    return "" if value is None else str(value)


def _file_path(file: Any) -> Any:
    """A file part's path: ``{"path": ...}``, an object with ``.path``, or the value itself."""
    return file.get("path") if isinstance(file, dict) else getattr(file, "path", file)
