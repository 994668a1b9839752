"""chat-feedback: log every chat turn, like, dislike and flag, tied to its conversation and message.

Public API::

    from feedback import FeedbackChatInterface, attach_feedback, FeedbackStore, FeedbackRecorder
    demo = FeedbackChatInterface(my_chat_fn, data_dir="data")   # in place of gr.ChatInterface
"""

from feedback.api import ChatAPI
from feedback.app import build_app
from feedback.callbacks import FeedbackCallback
from feedback.recorder import FeedbackError, FeedbackRecorder
from feedback.responders import EchoResponder, Responder, ResponderError, make_responder
from feedback.store import FeedbackStore
from feedback.ui import ChatSession, FeedbackChatInterface, FeedbackLog, attach_feedback

__all__ = [
    "ChatAPI",
    "ChatSession",
    "EchoResponder",
    "FeedbackCallback",
    "FeedbackChatInterface",
    "FeedbackError",
    "FeedbackLog",
    "FeedbackRecorder",
    "FeedbackStore",
    "Responder",
    "ResponderError",
    "attach_feedback",
    "build_app",
    "make_responder",
]
