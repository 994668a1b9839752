"""chat-feedback: log every chat turn, like, dislike and flag, tied to its conversation and message.

Public API::

    from feedback import FeedbackChatInterface, attach_feedback, FeedbackStore, FeedbackRecorder
    demo = FeedbackChatInterface(my_chat_fn, data_dir="data")   # in place of gr.ChatInterface

Names are imported on first use, so ``from feedback.export import ...`` or ``python -m feedback
export`` do not pay for importing gradio.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time each name is imported on first use
    from feedback.app import FeedbackApp, build_app, create_app
    from feedback.errors import FeedbackError, SaveError
    from feedback.recorder import FeedbackRecorder
    from feedback.responders import EchoResponder, Responder, ResponderError, make_responder
    from feedback.store import FeedbackStore
    from feedback.web.api import ChatAPI
    from feedback.web.callbacks import FeedbackCallback
    from feedback.web.page import ChatSession, FeedbackChatInterface, FeedbackLog, attach_feedback

_EXPORTS = {
    "ChatAPI": "feedback.web.api",
    "build_app": "feedback.app",
    "create_app": "feedback.app",
    "FeedbackApp": "feedback.app",
    "FeedbackCallback": "feedback.web.callbacks",
    "FeedbackError": "feedback.errors",
    "SaveError": "feedback.errors",
    "FeedbackRecorder": "feedback.recorder",
    "EchoResponder": "feedback.responders",
    "Responder": "feedback.responders",
    "ResponderError": "feedback.responders",
    "make_responder": "feedback.responders",
    "FeedbackStore": "feedback.store",
    "ChatSession": "feedback.web.page",
    "FeedbackChatInterface": "feedback.web.page",
    "FeedbackLog": "feedback.web.page",
    "attach_feedback": "feedback.web.page",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'feedback' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
