"""The chat page: ``FeedbackChatInterface`` (a drop-in ``gr.ChatInterface``) and ``attach_feedback``.

Identity (see DESIGN.md): each browser session gets its own :class:`ChatSession` from a callable
``gr.State`` default, so no two visitors share a ``conversation_id``; clearing the chat starts a new
one. Gradio names a liked message by its *position* in the chat, so the session keeps the
``message_id`` of each assistant reply in order; the reply at position ``i`` is the
``k``-th assistant message, where ``k`` counts the assistant messages before ``i``. Retry, undo
and edit all re-run the chat function with the shortened history, and the list is cut to match.
"""

from __future__ import annotations

import html
import inspect
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
from loguru import logger

from feedback.chat import PendingTurn, TextStream, log_failure, responder_stream
from feedback.errors import FeedbackError, SaveError, refusal
from feedback.privacy.consent import ConsentGate, ConsentMode
from feedback.privacy.deletion import Eraser, NothingToDelete
from feedback.privacy.redaction import Redactor
from feedback.recorder import FeedbackRecorder
from feedback.responders.base import Responder
from feedback.responders.errors import ResponderError
from feedback.store import FeedbackStore
from feedback.web.api import ChatAPI, uploaded_path
from feedback.web.callbacks import DISLIKE, LIKE, option_from_like
from feedback.web.inputs import ExtraInputs
from feedback.web.messages import (
    GradioMessage,
    assistant_message,
    assistant_position,
    content_of,
    content_parts,
    history_messages,
    last_exchange,
    reply_id,
    reply_ids,
    reply_text,
    user_message,
)
from feedback.web.sessions import install_session_expiry
from schemas.records import ChatMessage, new_id
from schemas.settings import DEFAULT_FLAG_REASONS, DEFAULT_NOTICE

COMMENT_PLACEHOLDER = "Optional: a comment sent with your next thumbs up/down or flag"
AGREE, DECLINE = "Agree and chat", "Chat without recording"
"""The consent step's buttons (``consent="required"``)."""
CHOOSE_PLACEHOLDER = "First choose above whether this chat may be recorded"
RECORDED = "This chat is recorded: you agreed."
NOT_RECORDED = "This chat is not recorded: nothing you write, upload, rate or flag here is saved."
FORGET, CONFIRM_FORGET, KEEP = "Forget this conversation", "Yes, delete it", "Cancel"
"""The forget step's buttons: the first opens the confirmation, the second deletes."""
FORGET_QUESTION = (
    "Delete this conversation from the logs? Its messages, ratings, flags and uploaded files are erased "
    "(here and in the dataset it is saved to). This cannot be undone."
)
FORGOTTEN = "This conversation was deleted from the logs. Your next message starts a new conversation."
NOTHING_TO_FORGET = (
    "Nothing of this conversation was recorded, so there is nothing to delete. "
    "Your next message starts a new conversation."
)
ALREADY_FORGOTTEN = "This conversation was already deleted from the logs. Your next message starts a new conversation."
NOT_FORGOTTEN = "This conversation could not be deleted: "


@dataclass
class ChatSession:
    """Per-browser-session state: the conversation id, the ids of its assistant replies in order,
    and what the page shows selected on each reply (a thumb or a flag reason)."""

    conversation_id: str = field(default_factory=new_id)
    message_ids: list[str] = field(default_factory=list)
    selected: dict[str, str] = field(default_factory=dict)
    consent: bool | None = None
    """The user's answer to the consent step: True (record), False (do not), None (none given)."""


def new_session() -> ChatSession:
    """A fresh session with a new conversation id (the callable ``gr.State`` default)."""
    return ChatSession()


def next_session(session: ChatSession | None) -> ChatSession:
    """A new conversation in the same browser session (clear, "New chat"): a new conversation id,
    the same answer to the consent step."""
    return ChatSession(consent=session.consent if isinstance(session, ChatSession) else None)


def session_state(time_to_live: float | None = None) -> gr.State:
    """The per-browser-session state. It starts empty and each handler makes a :class:`ChatSession`
    (a new conversation id) when there is none, so every browser session gets its own; an empty
    default also keeps Gradio from adding a public load endpoint for it. Gradio drops it
    ``time_to_live`` seconds after it was last set (None: an hour after its tab is closed)."""
    return gr.State(None, time_to_live=time_to_live)


class LikeHandler:
    """Records what the page's thumbs, flag menu and comment box say about a reply.

    Args:
        recorder: validates and writes the records; its flag reasons are the flag menu.
        consent: the consent step of the recorder's gate (default: see :meth:`ConsentGate.of`),
            told the session's answer for the conversation a click is about.
    """

    def __init__(self, recorder: FeedbackRecorder, consent: ConsentGate | None = None) -> None:
        self.recorder = recorder
        self.consent = consent or ConsentGate.of(recorder)

    def attach(self, chatbot: gr.Chatbot, session: gr.State, comment: gr.Textbox) -> None:
        """Register the like and clear listeners (call inside the ``gr.Blocks`` that holds ``chatbot``)."""
        chatbot.feedback_options = (LIKE, DISLIKE, *self.recorder.flag_reasons)
        chatbot.like(
            self.on_like,
            [chatbot, session, comment],
            [comment, session, chatbot],
            api_visibility="private",
            show_progress="hidden",
        )
        chatbot.clear(next_session, [session], [session], api_visibility="private")
        chatbot.change(  # Gradio forgets the shown thumbs/flags when the chat is re-rendered: restore them
            self.shown_feedback,
            [chatbot, session],
            [chatbot],
            queue=False,
            show_progress="hidden",
            trigger_mode="always_last",
            api_visibility="private",
        )

    @staticmethod
    def shown_feedback(history: list[GradioMessage], session: ChatSession | None) -> Any:
        """The chatbot's ``feedback_value``: for each reply shown, what this session selected on
        it (a thumb or a flag reason), so the page shows what the records say."""
        selected = session.selected if isinstance(session, ChatSession) else {}
        return gr.update(feedback_value=[selected.get(i) if i else None for i in reply_ids(history or [])])

    def on_like(
        self, history: list[GradioMessage], session: ChatSession, comment: str | None, data: gr.LikeData
    ) -> Any:
        """Record a thumbs up/down, an undo, or a flag-menu reason for the reply at ``data.index``.

        The reply is named by the ``message_id`` in its metadata (set when it was logged), and its
        conversation is the one that reply belongs to, so a reply of a chat reopened from the
        history panel is rated in its own conversation. A click while the reply streams is kept
        and written once the reply is logged.

        Returns the new comment box value (emptied once the comment went with a rating or flag,
        unchanged, ``gr.skip()``, when the event records nothing), the session, and the chat's
        ``feedback_value``: what is recorded, so a refused click does not stay highlighted.
        Raises:
            gr.Error: for event data that Gradio's page never sends.
        """
        session = session if isinstance(session, ChatSession) else new_session()
        history = history or []
        if not _valid_like(data):
            raise gr.Error("That rating could not be read: click the thumb or flag on a reply.", print_exception=False)
        message_id, conversation_id = self._reply(history, session, data.index)
        option = option_from_like(data.liked)
        if message_id is None or conversation_id is None:
            gr.Warning("That reply was not saved, so it cannot be rated. Send a new message and rate its reply.")
            return gr.skip(), session, self.shown_feedback(history, session)
        change = self._selection_change(session, message_id, option)
        if change is None:  # a repeat (Gradio sends a flag pick twice): the comment went with the first
            return gr.skip(), session, gr.skip()
        choice = {LIKE: "like", DISLIKE: "dislike"}.get(option, option)
        if session.consent is not None:  # a reply of a reopened chat: the answer given on this page holds
            self.consent.answer(conversation_id, session.consent)
        try:
            if change:
                self.recorder.record_click(conversation_id, message_id, choice, comment=comment or None)
        except (FeedbackError, SaveError) as error:
            logger.bind(conversation_id=conversation_id).warning("page click refused: {}", error)
            gr.Warning("That click could not be recorded: " + _plain(error))
            return gr.skip(), session, self.shown_feedback(history, session)
        if option:
            session.selected[message_id] = option
        else:
            session.selected.pop(message_id, None)
        return ("", session, gr.skip()) if change else (gr.skip(), session, gr.skip())

    def _reply(
        self, history: Sequence[GradioMessage], session: ChatSession, index: Any
    ) -> tuple[str | None, str | None]:
        """``(message_id, conversation_id)`` of the reply at chat position ``index``: from the
        message's metadata id, else (a chat whose replies carry no id, e.g. ``attach_feedback``
        without ids) from the session's replies by position."""
        position = index[0] if isinstance(index, list | tuple) else index
        message_id = reply_id(history[position]) if position < len(history) else None
        if message_id is not None:
            return message_id, self.recorder.owner(message_id)
        nth = assistant_position(history, position)
        if nth < len(session.message_ids):
            return session.message_ids[nth], session.conversation_id
        return None, None

    @staticmethod
    def _selection_change(session: ChatSession, message_id: str, option: str) -> bool | None:
        """Whether a click on a reply is recorded: True (record it), False (only what the page
        shows changes), None (a repeat: nothing changes).

        Gradio keeps one selection per reply (a thumb or a flag reason). Gradio 6.31's page sends
        a flag-menu pick twice, and an un-pick as ``liked=""`` (the same as un-clicking a thumb):
        a repeat of the current selection is dropped, and clearing a flag reason records nothing
        (the report stands); clearing a thumb is a rating undo.
        """
        current = session.selected.get(message_id)
        if option == current:
            return None
        return bool(option) or current in (LIKE, DISLIKE)


class TurnLog:
    """A page session's turns: Gradio's messages as records (files stored through the recorder),
    and the session's reply ids kept in step with the chat it shows.

    Args:
        recorder: validates and writes the turns and stores uploaded files.
        system_prompt: the system message the model is given first, logged as the prompt's first message.
    """

    def __init__(self, recorder: FeedbackRecorder, system_prompt: str | None = None) -> None:
        self.recorder = recorder
        self.system_prompt = system_prompt

    def store_file(self, path: Any, keep: bool = True) -> str:
        """Store a file of the chat in the data dir; only files uploaded to this app are accepted.

        ``keep=False`` (a conversation that is not recorded): the file is checked, not stored, and
        its upload path is returned.
        Raises:
            FeedbackError: for any other path (see :mod:`feedback.web.uploads`).
            SaveError: when the copy cannot be written.
        """
        upload = uploaded_path(path)
        return self.recorder.store_upload(upload) if keep else str(upload)

    def _files(self, keep: bool) -> Callable[[Any], str]:
        return self.store_file if keep else lambda path: self.store_file(path, keep=False)

    def user_message(self, message: Any, keep_files: bool = True) -> ChatMessage:
        """The user's new message (a string, or ``{"text", "files"}`` when multimodal), files stored
        (unless ``keep_files`` is False, see :meth:`store_file`).

        Raises:
            FeedbackError: for text that is not a string or is too long, files not uploaded here.
        """
        try:
            return user_message(message, self._files(keep_files), self.recorder.check_message)
        except TypeError as error:
            raise FeedbackError(str(error)) from error

    def history(self, history: Sequence[GradioMessage], keep_files: bool = True) -> list[ChatMessage]:
        """The chat ``history`` as records' messages (see :func:`feedback.web.messages.history_messages`)."""
        return history_messages(history, self._files(keep_files))

    def resume(self, session: ChatSession, history: Sequence[GradioMessage]) -> None:
        """A chat reopened from the history panel goes on in its own conversation: the one its
        last logged reply belongs to."""
        known = [i for i in reply_ids(history) if i]
        owner = self.recorder.owner(known[-1]) if known else None
        if owner is not None:
            session.conversation_id = owner

    def same_message(self, logged: ChatMessage, user: ChatMessage) -> bool:
        """Whether ``logged`` (a turn's user message, as the write gate wrote it) is ``user``: as
        sent, or as the gate's redaction step writes it."""
        if logged == user:
            return True
        redactors = [step for step in self.recorder.gate if isinstance(step, Redactor)]
        for redactor in redactors:
            user = redactor.message(user)
        return bool(redactors) and logged == user

    def _system(self) -> list[ChatMessage]:
        return [ChatMessage(role="system", content=self.system_prompt)] if self.system_prompt else []

    def record_reply(
        self,
        session: ChatSession,
        history: Sequence[GradioMessage],
        user: ChatMessage,
        stream: TextStream,
        model: str,
        params: dict[str, Any],
        *,
        measure_latency: bool = True,
        keep_files: bool = True,
    ) -> PendingTurn:
        """Prepare the turn for a reply the page is about to generate, and update ``session``.

        ``history`` is the chat before this message as Gradio passes it. A reply already logged
        at this position makes this a retry (same user message: ``regenerated_from``) or an edit
        (``edited_from``). ``keep_files=False``: the history's files are not stored (see
        :meth:`store_file`).
        """
        self.resume(session, history)
        turn_index = assistant_position(history, len(history))
        path = self.recorder.path(session.conversation_id)
        ref = path[turn_index] if turn_index < len(path) else None
        regenerated_from = edited_from = None
        if ref is not None and self.same_message(ref.user, user):
            regenerated_from = ref.message_id
        elif ref is not None:
            edited_from = ref.message_id
        session.message_ids[:] = [ref.message_id for ref in path[:turn_index]]
        pending = PendingTurn(
            recorder=self.recorder,
            stream=stream,
            conversation_id=session.conversation_id,
            messages=[*self._system(), *self.history(history, keep_files), user],
            turn_index=turn_index,
            model=model,
            params=params,
            source="ui",
            regenerated_from=regenerated_from,
            edited_from=edited_from,
            measure_latency=measure_latency,
        )
        session.message_ids.append(pending.message_id)
        return pending


def _fn_stream(
    fn: Callable[..., Any],
    multimodal: bool,
    data_dir: Path,
    extra: Sequence[Any],
    n_outputs: int = 0,
    outputs: list[Any] | None = None,
) -> TextStream:
    """Adapt a ``gr.ChatInterface``-style function ``fn(message, history, *extra)`` (returning or
    yielding the reply so far) to a :data:`TextStream`. With ``n_outputs`` additional outputs,
    ``fn`` returns ``(reply, *outputs)`` and the latest outputs are copied into ``outputs``."""

    def text_of(chunk: Any) -> str:
        if n_outputs and isinstance(chunk, tuple):
            chunk, *values = chunk
            if outputs is not None:
                outputs[:] = values
        return reply_text(chunk)

    def stream(messages: list[ChatMessage], regenerate: bool) -> Iterator[str]:
        *earlier, last = messages
        history = [m.to_openai() for m in earlier]
        if multimodal:
            message: Any = {"text": last.content, "files": [str(data_dir / f) for f in last.files]}
        else:
            message = last.content
        result = fn(message, history, *extra)
        if inspect.isgenerator(result):
            for chunk in result:
                yield text_of(chunk)
        else:
            yield text_of(result)

    return stream


def _flag_menu(mode: str | None, options: Sequence[str] | None, reasons: Sequence[str]) -> tuple[str, ...]:
    """The flag reasons from ``gr.ChatInterface``'s flagging arguments.

    ``flagging_options`` become the menu ("Like"/"Dislike" in it are the thumbs, always shown;
    the rest are flag reasons); ``flagging_mode="manual"`` (or None) records flags,
    ``"never"`` leaves only the thumbs.
    Raises:
        ValueError: for another ``flagging_mode``.
    """
    if mode not in (None, "manual", "never"):
        raise ValueError(f"flagging_mode must be 'manual' or 'never', not {mode!r}")
    if mode == "never":
        return ()
    if options is not None:
        return tuple(o for o in dict.fromkeys(str(o) for o in options) if o not in (LIKE, DISLIKE))
    return tuple(reasons)


def _open_recorder(
    recorder: FeedbackRecorder | None, data_dir: str | Path | None, flag_reasons: Sequence[str]
) -> FeedbackRecorder:
    if recorder is not None:
        return recorder
    return FeedbackRecorder(FeedbackStore(data_dir or "data"), flag_reasons=flag_reasons)


class FeedbackChatInterface(gr.ChatInterface):
    """A ``gr.ChatInterface`` that logs every turn and records likes, dislikes, flags and comments.

    Takes the same arguments as ``gr.ChatInterface`` (``fn(message, history, *additional_inputs)``
    returning or yielding the reply), or a :class:`~feedback.responders.Responder` in place of
    ``fn``. Adds thumbs and a flag menu on every reply, a comment box, a notice that the chat is
    recorded, and the API endpoints of :class:`~feedback.web.api.ChatAPI` (``/chat``, ``/regenerate``,
    ``/rate``, ``/flag``, ``/feedback_options``); Gradio's own chat endpoint is kept private.

    Args:
        fn: the chat function, or a responder.
        recorder: where records go; default: a recorder on ``data_dir``.
        data_dir: the data dir when no recorder is given (default ``./data``).
        flag_reasons: the flag menu, when no recorder is given.
        notice: the recording notice shown under the title ("" for none).
        consent: ``"notice"`` (the notice says the chat is recorded) or ``"required"``: a consent
            step above the chat asks first (the chat opens once it is answered); a user who
            declines chats as usual and nothing about the conversation is written, uploads
            included. Default: the mode of the recorder's consent step (``"notice"`` if it has none).
        policy_url: a privacy policy, linked from the notice or the consent step.
        flagging_options / flagging_mode: as in ``gr.ChatInterface``: the options are the flag
            menu (``"Like"``/``"Dislike"`` are the thumbs, always shown), ``"manual"`` (the
            default here) records flags, ``"never"`` keeps only the thumbs. Flags are records in
            the data dir, never Gradio's CSV.
        model: the model name recorded with each turn (default: the responder's, or ``fn``'s name).
        api: add the API endpoints.
        api_concurrency_limit: how many ``/chat`` and ``/regenerate`` calls run at once.
        session_ttl: seconds a page session may stay idle before it expires and its memory is
            freed (see :mod:`feedback.web.sessions`); the next message of an expired page starts
            a new conversation. None: Gradio's default (the session's state goes an hour after
            its tab is closed, Gradio's copy of the chat only when 10,000 newer sessions push it out).
        eraser: deletes a conversation for the page's "Forget this conversation" button and the
            API's ``/forget`` (default: an :class:`~feedback.privacy.deletion.Eraser` on the
            recorder, erasing the data dir only).
        **kwargs: passed to ``gr.ChatInterface``.
    """

    def __init__(
        self,
        fn: Callable[..., Any] | Responder,
        *,
        recorder: FeedbackRecorder | None = None,
        data_dir: str | Path | None = None,
        flag_reasons: Sequence[str] = DEFAULT_FLAG_REASONS,
        notice: str = DEFAULT_NOTICE,
        consent: ConsentMode | None = None,
        policy_url: str | None = None,
        model: str | None = None,
        api: bool = True,
        api_concurrency_limit: int | None = 16,
        session_ttl: float | None = None,
        eraser: Eraser | None = None,
        **kwargs: Any,
    ) -> None:
        menu_given = kwargs.get("flagging_options") is not None or kwargs.get("flagging_mode") is not None
        flag_reasons = _flag_menu(kwargs.pop("flagging_mode", None), kwargs.pop("flagging_options", None), flag_reasons)
        kwargs.pop("flagging_dir", None)  # records go to the data dir, not Gradio's flagging folder
        if recorder is not None and menu_given and tuple(recorder.flag_reasons) != flag_reasons:
            raise ValueError(
                f"flagging options {list(flag_reasons)} differ from the recorder's flag reasons "
                f"{list(recorder.flag_reasons)}: give them to the recorder"
            )
        self.recorder = _open_recorder(recorder, data_dir, flag_reasons)
        if eraser is not None and getattr(eraser, "recorder", self.recorder) is not self.recorder:
            raise ValueError("the eraser must erase through the page's recorder")
        self.eraser = eraser if eraser is not None else Eraser(self.recorder)
        self.consent = ConsentGate.of(self.recorder, consent)
        self.policy_url = policy_url
        self._consent_text = _notice(notice, policy_url, note=False)
        self.consent_step: ConsentStep | None = None  # rendered by _render_header
        self.likes = LikeHandler(self.recorder, self.consent)
        self.turns = TurnLog(self.recorder, getattr(fn, "system_prompt", None) if isinstance(fn, Responder) else None)
        self.responder = fn if isinstance(fn, Responder) else None
        self.user_fn = None if self.responder else fn
        self.model_name = model or (self.responder.model if self.responder else getattr(fn, "__name__", "chat"))
        self.params = dict(self.responder.params) if self.responder else {}
        self._multimodal = bool(kwargs.get("multimodal", False))
        session = self.session = session_state(session_ttl)
        user_inputs = _as_list(kwargs.pop("additional_inputs", None))
        self.extra_inputs = ExtraInputs.of(user_inputs)
        if not any(not component.is_rendered for component in user_inputs):
            # Only our (invisible) session state would land in the "Additional inputs" accordion.
            kwargs.setdefault("additional_inputs_accordion", gr.Accordion(visible=False))
        self._n_outputs = len(_as_list(kwargs.get("additional_outputs")))
        kwargs["additional_outputs"] = [*_as_list(kwargs.get("additional_outputs")), session]
        if not user_inputs and kwargs.get("examples"):
            kwargs["examples"] = [e if isinstance(e, list) else [e] for e in kwargs["examples"]]
        shown_notice = "" if self.consent.mode == "required" else _notice(notice, policy_url)  # the step shows it
        kwargs["description"] = "\n\n".join(p for p in (kwargs.get("description"), shown_notice) if p) or None
        if kwargs.get("chatbot") is None:
            kwargs["chatbot"] = gr.Chatbot(label="Chat", scale=1)
        kwargs["validator"] = self._validator(kwargs.get("validator"))
        kwargs.update(api_name="chat_ui", api_visibility="private", flagging_mode="never")
        super().__init__(self._chat, additional_inputs=[*user_inputs, session], **kwargs)
        if session_ttl is not None:
            install_session_expiry(self, session_ttl)
        with self:
            self.comment = gr.Textbox(label="Comment", placeholder=COMMENT_PLACEHOLDER, max_lines=4)
            self.likes.attach(self.chatbot, session, self.comment)
            self._render_forget(session)
            if self.consent_step is not None:
                self._attach_consent(self.consent_step, session)
            if self.save_history:  # "New chat" starts a conversation; a chat from the panel goes on in its own
                self.new_chat_button.click(next_session, [session], [session], api_visibility="private", queue=False)
                self.chat_history_dataset.click(
                    self._reopen,
                    [self.chat_history_dataset, self.saved_conversations, session],
                    [session],
                    api_visibility="private",
                    queue=False,
                )
            if api:
                ChatAPI(
                    self.recorder,
                    lambda values: self._stream(values, []),
                    self.model_name,
                    self.params,
                    inputs=self.extra_inputs,
                    system_prompt=self.turns.system_prompt,
                    consent=self.consent,
                    policy_url=policy_url,
                    eraser=self.eraser,
                ).register(api_concurrency_limit)

    def _render_forget(self, session: gr.State) -> None:
        """The "Forget this conversation" button, its confirmation and the line saying what happened."""
        with gr.Row(elem_classes=["feedback-forget"]):
            forget = gr.Button(FORGET, size="sm", variant="secondary", scale=0, min_width=220)
        with gr.Group(visible=False, elem_classes=["feedback-forget-confirm"]) as confirm:
            gr.Markdown(f"<small>{FORGET_QUESTION}</small>", padding=True)
            with gr.Row():
                delete = gr.Button(CONFIRM_FORGET, variant="stop", size="sm")
                keep = gr.Button(KEEP, size="sm")
        self.forget_status = gr.Markdown(elem_classes=["feedback-forget-status"])
        forget.click(
            lambda: (gr.update(visible=True), ""),
            None,
            [confirm, self.forget_status],
            api_visibility="private",
            queue=False,
            show_progress="hidden",
        )
        keep.click(
            lambda: gr.update(visible=False),
            None,
            [confirm],
            api_visibility="private",
            queue=False,
            show_progress="hidden",
        )
        inputs = [self.chatbot, session]
        outputs = [session, self.chatbot, self.chatbot_state, self.forget_status, confirm]
        if self.save_history:  # the forgotten chat leaves the history panel too
            inputs += [self.conversation_id, self.saved_conversations]
            outputs += [self.conversation_id, self.saved_conversations]
        delete.click(
            self.forget, inputs, outputs, api_name="forget_ui", api_visibility="private", show_progress="hidden"
        )  # named apart from the API's /forget

    def forget(
        self, history: list[GradioMessage] | None, session: ChatSession | None, index: Any = None, saved: Any = None
    ) -> tuple[Any, ...]:
        """The confirmed "Forget this conversation": delete the conversation the page shows (see
        :meth:`~feedback.privacy.deletion.Eraser.forget`) and start a new one.

        The conversation is the session's, or that of the chat's logged replies (a chat reopened
        from the history panel, or a page whose session expired), as for the next message. One
        with no recorded turn (none sent yet, consent declined) has nothing to delete: the page
        says so and starts a new conversation all the same. ``index`` and ``saved``
        (``save_history``): the chat's place in the history panel and the panel's chats; the
        forgotten chat is removed from it.

        Returns the session (the same object, on a new conversation), the emptied chat (twice:
        the chatbot and Gradio's copy), the line saying what happened, the closed confirmation,
        and (``save_history``) the panel's index and chats. When the deletion is refused, the
        chat and session stay as they were.
        """
        session = session if isinstance(session, ChatSession) else new_session()
        history = history if isinstance(history, list) else []
        panel = (index, saved) if self.save_history else ()
        message = NOTHING_TO_FORGET
        try:
            self.turns.resume(session, history)
            self.eraser.forget(session.conversation_id, requested_by="user")  # NothingToDelete: nothing on disk
            message = FORGOTTEN
        except NothingToDelete:  # nothing to delete: a new conversation all the same
            if self.recorder.index.is_deleted(session.conversation_id, wait=False):
                message = ALREADY_FORGOTTEN  # from another tab, or by a reviewer
        except (FeedbackError, SaveError) as error:
            logger.bind(conversation_id=session.conversation_id).warning("page forget refused: {}", error)
            shown = re.sub(r"conversation [0-9a-f]{32}\b", "this conversation", str(error))
            return (
                session,
                gr.skip(),
                gr.skip(),
                NOT_FORGOTTEN + _plain(shown),
                gr.update(visible=False),
                *(gr.skip() for _ in panel),
            )
        if self.save_history:
            panel = _without_chat(index, saved)
        # The same session object, now on a new conversation: a reply still streaming writes this
        # object back too, so it cannot bring the forgotten conversation's id back.
        fresh = next_session(session)
        session.conversation_id, session.message_ids, session.selected = fresh.conversation_id, [], {}
        return (session, [], [], message, gr.update(visible=False), *panel)

    def _render_header(self) -> None:
        """Gradio's title and description, then (``consent="required"``) the consent step."""
        super()._render_header()
        if self.consent.mode == "required":
            self.consent_step = _render_consent(self._consent_text)

    def _attach_consent(self, step: ConsentStep, session: gr.State) -> None:
        """The chat input stays closed until the user answers; either answer opens it and puts a
        line saying whether the chat is recorded in place of the step."""
        placeholder = self.textbox.placeholder
        self.textbox.interactive = False
        self.textbox.placeholder = CHOOSE_PLACEHOLDER
        outputs = [session, step.panel, step.status, self.textbox]
        for button, agreed in ((step.agree, True), (step.decline, False)):
            button.click(
                self._answer_handler(agreed, placeholder), [session], outputs, api_visibility="private", queue=False
            )

    def _answer_handler(self, agreed: bool, placeholder: Any) -> Callable[[ChatSession | None], tuple[Any, ...]]:
        def answer(session: ChatSession | None) -> tuple[Any, ...]:
            session = session if isinstance(session, ChatSession) else new_session()
            session.consent = agreed
            self.consent.answer(session.conversation_id, agreed)
            status = _notice(RECORDED, self.policy_url, note=False) if agreed else f"<small>{NOT_RECORDED}</small>"
            return (
                session,
                gr.update(visible=False),
                gr.update(value=status, visible=True),
                gr.update(interactive=True, placeholder=placeholder),
            )

        return answer

    def _answer_of(self, session: ChatSession, history: Sequence[GradioMessage]) -> bool:
        """The session's consent answer for the conversation this message goes to (a chat reopened
        from the history panel goes on in its own); whether its records and files are written.

        A page whose session expired (or was dropped) goes on with the answer its conversation got.

        Raises:
            gr.Error: with ``consent="required"`` and no answer yet (e.g. an example clicked first).
        """
        self.turns.resume(session, history)
        if session.consent is None:
            session.consent = self.consent.status(session.conversation_id)
        if self.consent.mode == "required" and session.consent is None:
            raise gr.Error(
                f"First choose above whether this chat may be recorded ({AGREE!r} or {DECLINE!r}); "
                "if the choice is not shown, reload the page.",
                print_exception=False,
            )
        has_history = bool(self.recorder.path(session.conversation_id))
        return self.consent.answer(session.conversation_id, session.consent, has_history=has_history)

    def _reopen(self, index: Any, conversations: Any, session: ChatSession | None = None) -> ChatSession:
        """The session of a chat reopened from the history panel: its own conversation (the owner
        of the replies it shows), or a new one when none of its replies was logged here; the
        consent answer given on this page goes with it."""
        chat = (
            conversations[index]
            if isinstance(index, int) and isinstance(conversations, list) and 0 <= index < len(conversations)
            else []
        )
        ids = [i for i in reply_ids(chat if isinstance(chat, list) else []) if i]
        owner = self.recorder.owner(ids[-1]) if ids else None
        reopened = next_session(session)
        if owner:
            reopened.conversation_id = owner
        return reopened

    def _validator(self, user_validator: Callable[..., Any] | None) -> Callable[..., Any]:
        """The page's submit validator: refuse a message over the length limit before Gradio keeps
        it in the session (then run the app's own ``validator``, if any)."""

        def validate(message: Any, *args: Any) -> Any:
            text = message.get("text") if isinstance(message, dict) else message
            try:
                self.recorder.check_message("" if text is None else text)
            except FeedbackError as error:
                return gr.validate(False, str(error))
            return user_validator(message, *args) if user_validator else gr.validate(True, "")

        return validate

    def _stream(self, extra: Sequence[Any], outputs: list[Any]) -> TextStream:
        if self.responder is not None:
            return responder_stream(self.responder)
        assert self.user_fn is not None
        return _fn_stream(self.user_fn, self._multimodal, self.recorder.store.root, extra, self._n_outputs, outputs)

    def _chat(self, message: Any, history: list[Any], *args: Any) -> Iterator[tuple[Any, ...]]:
        """The function ``gr.ChatInterface`` runs: stream the reply, record the turn, update the session."""
        *extra, session = args
        session = session if isinstance(session, ChatSession) else new_session()
        outputs: list[Any] = [gr.skip()] * self._n_outputs
        try:
            recorded = self._answer_of(session, history)
            user = self.turns.user_message(message, keep_files=recorded)
            pending = self.turns.record_reply(
                session,
                history,
                user,
                self._stream(extra, outputs),
                self.model_name,
                self.extra_inputs.params(extra, self.params),
                keep_files=recorded,
            )
        except (FeedbackError, SaveError) as error:
            raise refusal(error) from error
        log = logger.bind(conversation_id=session.conversation_id)
        try:
            for text in pending:
                yield (assistant_message(text, pending.message_id), *outputs, session)
        except SaveError as error:
            raise refusal(error) from error
        except ResponderError as error:
            log_failure(session.conversation_id, "chat")
            raise gr.Error(f"The model could not answer: {error}", print_exception=False) from error  # logged above
        log.debug("page turn {} logged", pending.message_id)


def attach_feedback(
    chatbot: gr.Chatbot,
    *,
    recorder: FeedbackRecorder | None = None,
    data_dir: str | Path | None = None,
    flag_reasons: Sequence[str] = DEFAULT_FLAG_REASONS,
    model: str = "chat",
) -> FeedbackLog:
    """Add feedback to a ``gr.Chatbot`` in your own ``gr.Blocks`` (call inside ``with gr.Blocks():``).

    Adds thumbs and a flag menu to ``chatbot``, a comment box, a per-session conversation id (new
    on clear), and returns a :class:`FeedbackLog` whose ``log_turn`` you chain after your chat
    event so the last exchange is logged as a turn::

        feedback = attach_feedback(chatbot, data_dir="data", model="my-model")
        msg.submit(respond, [msg, chatbot], [msg, chatbot]).then(
            feedback.log_turn, [chatbot, feedback.session], [feedback.session]
        )
    """
    recorder = _open_recorder(recorder, data_dir, flag_reasons)
    session = session_state()
    comment = gr.Textbox(label="Comment", placeholder=COMMENT_PLACEHOLDER, max_lines=4)
    LikeHandler(recorder).attach(chatbot, session, comment)
    return FeedbackLog(TurnLog(recorder), session, model)


@dataclass
class FeedbackLog:
    """What :func:`attach_feedback` returns: the session state and the turn-logging handler."""

    turns: TurnLog
    session: gr.State
    model: str

    def log_turn(self, history: list[Any], session: ChatSession) -> ChatSession:
        """Log the chat's last user message and assistant reply as a turn (latency not measured).

        Returns the updated session (an output of the event). Does nothing when the chat does not
        end with an assistant reply.
        """
        session = session if isinstance(session, ChatSession) else new_session()
        exchange = last_exchange(history or [])
        if exchange is None:
            return session
        start, last = exchange
        earlier, users = history[:start], self.turns.history(history[start:last])
        user = ChatMessage(role="user", content=users[0].content, files=users[0].files)
        reply, _ = content_parts(content_of(history[last]), self.turns.store_file)
        pending = self.turns.record_reply(
            session, earlier, user, lambda *_: iter([reply]), self.model, {}, measure_latency=False
        )
        pending.run()
        return session


def _plain(error: Exception) -> str:
    """A refusal's message without the internal ids it may quote (the page shows it to a person)."""
    return re.sub(r"\b[0-9a-f]{32}\b", "this reply", str(error))


def _without_chat(index: Any, saved: Any) -> tuple[None, list[Any]]:
    """The history panel without the chat at ``index`` (a forgotten one): ``(no current chat, the
    other chats)``; an index that is not one of the panel's removes nothing."""
    chats = list(saved) if isinstance(saved, list) else []
    if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(chats):
        chats.pop(index)
    return None, chats


def _valid_like(data: gr.LikeData) -> bool:
    """True when a like event's data has the shapes Gradio's page sends: an ``index`` that is a
    non-negative int (or a list of them) and ``liked`` that is a bool, a string or None."""
    index = data.index
    indices = index if isinstance(index, list | tuple) and index else [index]
    positions_ok = all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 1_000_000 for i in indices)
    return positions_ok and (data.liked is None or isinstance(data.liked, bool | str))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _notice(text: str, policy_url: str | None = None, *, note: bool = True) -> str:
    """The recording notice as the page shows it, with a link to the privacy policy if there is one."""
    if not text:
        return ""
    link = (
        f' <a href="{html.escape(policy_url)}" target="_blank" rel="noopener">Privacy policy</a>' if policy_url else ""
    )
    return f"<small>{'Note: ' if note else ''}{text}{link}</small>"


@dataclass
class ConsentStep:
    """The consent step's components (``consent="required"``): the panel with the notice and the
    two answers, and the line that replaces it once answered."""

    panel: gr.Group
    status: gr.Markdown
    agree: gr.Button
    decline: gr.Button


def _render_consent(text: str) -> ConsentStep:
    """The consent step, above the chat: the notice (with the policy link) and the two answers."""
    with gr.Group(elem_classes=["feedback-consent"]) as panel:
        gr.Markdown(text or "<small>Conversations on this page may be recorded.</small>", padding=True)
        with gr.Row():
            agree = gr.Button(AGREE, variant="primary")
            decline = gr.Button(DECLINE)
    status = gr.Markdown(visible=False)
    return ConsentStep(panel, status, agree, decline)
