"""A minimal front end over a Gradio app's ``/gradio_api/run``: one browser session firing the page's
real triggers in process (the only way to send the ``event_data`` of a ``.like`` event without a browser)."""

from __future__ import annotations

import gradio as gr
from fastapi.testclient import TestClient


def answer(message: dict, history: list) -> str:
    """A plain (non-streaming) chat function, as a library user would write one."""
    return f"reply to {message['text']} after {len(history)} messages"


class PageSession:
    """One browser session: fires the page's real triggers and follows their ``.then`` chains,
    keeping the component values a browser would (a minimal front end over ``/gradio_api/run``)."""

    def __init__(self, http: TestClient, session_hash: str) -> None:
        self.http, self.session_hash = http, session_hash
        self.blocks = http.app.get_blocks()
        self.values: dict[int, object] = {}
        self.chatbot = next(b for b in self.blocks.blocks.values() if isinstance(b, gr.Chatbot))
        self.textbox = next(
            (b for b in self.blocks.blocks.values() if isinstance(b, gr.MultimodalTextbox | gr.Textbox)), None
        )

    @property
    def chat(self) -> list:
        return self.values.get(self.chatbot._id) or []

    @chat.setter
    def chat(self, value: list) -> None:
        self.values[self.chatbot._id] = value

    def run(self, api_name: str, data: list, event_data: dict | None = None) -> list:
        response = self.http.post(
            f"/gradio_api/run/{api_name}",
            json={"data": data, "session_hash": self.session_hash, "event_data": event_data},
        )
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def fire(self, block: gr.components.Component, event: str, event_data: dict | None = None) -> None:
        fns = self.blocks.fns
        pending = [i for i, fn in fns.items() if (block._id, event) in fn.targets and fn.fn is not None]
        while pending:
            index = pending.pop(0)
            self._run_fn(fns[index], event_data)
            pending += [i for i, fn in fns.items() if fn.trigger_after == index and fn.fn is not None]

    def _run_fn(self, fn, event_data: dict | None) -> None:  # noqa: ANN001 - a gradio BlockFunction
        data = [None if b.stateful else self.values.get(b._id) for b in fn.inputs]
        outputs = self.run(fn.api_name, data, event_data)
        for block, value in zip(fn.outputs, outputs, strict=False):
            if block.stateful:
                continue
            if isinstance(value, dict) and value.get("__type__") == "update":
                if "value" not in value:
                    continue
                value = value["value"]
            self.values[block._id] = value

    def send(self, text: str) -> None:
        self.values[self.textbox._id] = {"text": text, "files": []}
        self.fire(self.textbox, "submit")

    def retry(self) -> None:
        self.fire(self.chatbot, "retry", {"index": len(self.chat) - 1, "value": None})

    def undo(self) -> None:
        self.fire(self.chatbot, "undo", {"index": len(self.chat) - 1, "value": None})

    def clear(self) -> None:
        self.chat = []
        self.fire(self.chatbot, "clear")

    def like(self, index: int, liked: bool | str, comment: str = "") -> str:
        comment_box = next(b for b in self.blocks.blocks.values() if getattr(b, "label", None) == "Comment")
        self.values[comment_box._id] = comment
        self.fire(self.chatbot, "like", {"index": index, "value": self.chat[index]["content"], "liked": liked})
        return self.values[comment_box._id]
