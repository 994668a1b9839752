"""The reviewer page: a "Review" tab (the queue and the decision form) and a "Stats" tab (plots).

It is its own ``gr.Blocks``, served at ``/review`` beside the chat page with its own sign-in (see
:mod:`feedback.web.server`), so chat users never see it. Every handler, and the ``queue_items``,
``decide`` and ``delete_conversation`` API endpoints, check the signed-in user against the
reviewers and refuse anyone else. A reviewer may delete the conversation of the selected reply
("Delete conversation", confirmed first; see :class:`feedback.privacy.deletion.Eraser`).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import gradio as gr

from feedback.errors import FeedbackError, SaveError, clip, refusal
from feedback.privacy.deletion import Eraser
from feedback.review.desk import ReviewDesk
from feedback.review.queue import PAGE_SIZE, STATUSES, QueueFilter, QueueItem, QueuePage
from feedback.review.sources import ShardSource
from feedback.review.stats import FeedbackStats
from schemas.records import DECISIONS, is_valid_id

ANY = "(any)"
TABLE_COLUMNS = ["last flagged (UTC)", "model", "reasons", "flags", "rating", "status", "reply"]
DELETE, CONFIRM_DELETE, KEEP = "Delete conversation", "Yes, delete the conversation", "Cancel"
"""The delete step's buttons: the first asks, the second deletes."""
NO_DELETION = (
    "Deleting a conversation is not offered here (the source is not this data dir): "
    "use `python -m feedback delete --conversation ID`."
)


def _username(request: gr.Request | None, profile: gr.OAuthProfile | None) -> str | None:
    if profile is not None:
        return profile.username
    return getattr(request, "username", None) if request is not None else None


def _day(value: Any) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float):
        return date.fromtimestamp(value)
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError as error:
        raise FeedbackError(f"dates are YYYY-MM-DD, not {value!r}") from error


def make_filter(reason: str | None, model: str | None, since: Any, until: Any, status: str | None) -> QueueFilter:
    """A :class:`QueueFilter` from the page's controls ("(any)" or empty means no filter)."""

    def pick(value: str | None) -> str | None:
        return None if value in (None, "", ANY) else value

    return QueueFilter(
        reason=pick(reason), model=pick(model), since=_day(since), until=_day(until), status=pick(status)
    )


def page_offset(page: Any) -> int:
    """The first row (0-based) of 1-based page number ``page`` (empty or below 1: the first page)."""
    try:
        number = int(page or 1)
    except (TypeError, ValueError) as error:
        raise FeedbackError(f"a page number is a whole number, not {page!r}") from error
    return (max(1, number) - 1) * PAGE_SIZE


def page_info(page: QueuePage) -> str:
    """The line under the queue: which rows of how many, and how many pages."""
    if not page.total:
        return "No flagged reply matches these filters."
    pages = -(-page.total // PAGE_SIZE)
    return (
        f"Rows {page.offset + 1}-{page.offset + len(page.items)} of {page.total} flagged replies "
        f"(page {page.offset // PAGE_SIZE + 1} of {pages}, {PAGE_SIZE} per page)"
    )


def _stat_values(stats: FeedbackStats) -> tuple[Any, ...]:
    """The Stats tab's component values: the open-queue line and the four plots' frames."""
    per_model = stats.per_model.dropna(subset=["like_rate"])
    lengths = stats.conversation_lengths.astype({"turns": str})  # categories: one bar per length
    return (
        f"**Open review queue:** {stats.open_queue} flagged replies without a decision",
        stats.ratings_per_day,
        per_model,
        stats.flags_per_reason,
        lengths,
    )


def item_row(item: QueueItem) -> list[Any]:
    """One row of the queue table (see :data:`TABLE_COLUMNS`)."""
    reasons = ", ".join(f"{reason} ×{n}" for reason, n in item.reason_counts.most_common())
    reply = item.turn.response if len(item.turn.response) <= 120 else item.turn.response[:117] + "..."
    return [
        item.last_flagged.strftime("%Y-%m-%d %H:%M"),
        item.turn.model,
        reasons,
        len(item.flags),
        item.rating or "",
        item.status,
        reply,
    ]


def item_summary(item: QueueItem) -> dict[str, Any]:
    """A flagged reply as JSON for the API: ids, prompt, reply, counts, comments, status."""
    return {
        "message_id": item.message_id,
        "conversation_id": item.turn.conversation_id,
        "model": item.turn.model,
        "prompt": [m.to_openai() for m in item.turn.messages],
        "response": item.turn.response,
        "rating": item.rating,
        "ratings": [r.rating for r in item.ratings],
        "flag_count": len(item.flags),
        "reasons": dict(item.reason_counts),
        "comments": item.comments(),
        "last_flagged": item.last_flagged.isoformat(),
        "status": item.status,
        "review": item.review.model_dump(mode="json") if item.review else None,
    }


def item_details(item: QueueItem) -> str:
    """Markdown: flags, comments, ratings and the latest review of one reply."""
    lines = [f"**Reply** `{item.message_id}` in conversation `{item.turn.conversation_id}` ({item.turn.model})"]
    lines.append(
        f"**Status:** {item.status}   **Rating:** {item.rating or 'none'} ({len(item.ratings)} rating event(s))"
    )
    lines.append("**Flags:** " + ", ".join(f"{r} ×{n}" for r, n in item.reason_counts.most_common()))
    lines += [f"- {comment}" for comment in item.comments()]
    if item.review:
        review = item.review
        lines.append(
            f"**Latest review:** {review.decision} by {review.reviewer}"
            + (f". Note: {review.note}" if review.note else "")
        )
    return "\n\n".join(lines)


def item_chat(item: QueueItem) -> list[dict[str, str]]:
    """The conversation up to and including the flagged reply, for a ``gr.Chatbot``."""
    messages = [{"role": m.role, "content": m.content} for m in item.turn.messages if m.role != "system"]
    return [*messages, {"role": "assistant", "content": item.turn.response}]


class ReviewPage:
    """Builds the reviewer page for a :class:`ReviewDesk`.

    Args:
        desk: the queue and where decisions go.
        oauth: show "Sign in with Hugging Face" (on a Space with OAuth); otherwise the page is
            expected behind Gradio's ``auth`` (user names from ``gr.Request.username``).
        local_reviewer: a fixed reviewer name for a reviewer's own machine (no sign-in).
        eraser: deletes a conversation for "Delete conversation" and ``/delete_conversation``.
            Default: one on the desk's recorder when the desk reads that recorder's own data dir
            (it erases the data dir only); otherwise (a dataset repo read in place) none, and the
            page offers no deletion.
    """

    def __init__(
        self, desk: ReviewDesk, *, oauth: bool = False, local_reviewer: str | None = None, eraser: Eraser | None = None
    ) -> None:
        self.desk, self.oauth, self.local_reviewer = desk, oauth, local_reviewer
        if eraser is None and _reads_own_data_dir(desk):
            eraser = Eraser(desk.recorder)
        self.eraser = eraser

    def reviewer(self, request: gr.Request | None, profile: gr.OAuthProfile | None = None) -> str:
        """The signed-in reviewer. Raises ``gr.Error`` for anyone else."""
        try:
            return self.desk.check_reviewer(self.local_reviewer or _username(request, profile))
        except FeedbackError as error:
            raise refusal(error) from error

    def build(self) -> gr.Blocks:
        """The ``gr.Blocks`` of the page (not launched)."""
        with gr.Blocks(title="Review feedback") as page:
            gr.Markdown("# Review flagged replies")
            if self.oauth:
                gr.LoginButton()
            with gr.Tab("Review"):
                self._render_queue()
            with gr.Tab("Stats") as stats_tab:
                self._render_stats()
            stats_tab.select(self.load_stats, None, self.stat_outputs, api_visibility="private")
            page.load(
                self.refresh_all,
                [self.reason, self.model, self.since, self.until, self.status, self.page_number],
                [self.table, self.row_ids, self.page_info, self.reason, self.model, *self.stat_outputs],
                api_visibility="private",
            )
            gr.api(self.queue_items, api_name="queue_items")
            gr.api(self.decide_api, api_name="decide")
            gr.api(self.delete_api, api_name="delete_conversation")
        return page

    def _render_queue(self) -> None:
        with gr.Row():
            self.reason = gr.Dropdown([ANY], value=ANY, label="Reason")
            self.model = gr.Dropdown([ANY], value=ANY, label="Model")
            self.since = gr.Textbox(label="Flagged since (YYYY-MM-DD)")
            self.until = gr.Textbox(label="until (YYYY-MM-DD)")
            self.status = gr.Dropdown([ANY, *STATUSES], value="open", label="Status")
            self.page_number = gr.Number(1, precision=0, minimum=1, label="Page", scale=0)
            refresh = gr.Button("Refresh", scale=0)
        self.table = gr.Dataframe(headers=TABLE_COLUMNS, interactive=False, label="Queue (newest first)", wrap=True)
        self.page_info = gr.Markdown()
        self.row_ids = gr.State([])
        self.selected = gr.State(None)
        with gr.Row():
            self.chat = gr.Chatbot(label="Conversation up to the flagged reply", height=420)
            with gr.Column():
                self.details = gr.Markdown("Select a row to review it.")
                decision = gr.Radio(list(DECISIONS), label="Decision")
                corrected = gr.Textbox(label="Corrected reply (optional: used as 'chosen' in exports)", lines=4)
                note = gr.Textbox(label="Note (optional)")
                submit = gr.Button("Record decision", variant="primary")
                self.result = gr.Markdown()
                delete = gr.Button(DELETE, variant="stop", size="sm", visible=self.eraser is not None)
                with gr.Group(visible=False) as self.delete_confirm:
                    self.delete_question = gr.Markdown(padding=True)
                    with gr.Row():
                        confirm = gr.Button(CONFIRM_DELETE, variant="stop", size="sm")
                        keep = gr.Button(KEEP, size="sm")
        filters = [self.reason, self.model, self.since, self.until, self.status, self.page_number]
        shown = [self.table, self.row_ids, self.page_info]
        for trigger in (
            refresh.click,
            self.status.change,
            self.reason.change,
            self.model.change,
            self.page_number.submit,
        ):
            trigger(self.load_queue, filters, shown, api_visibility="private")
        self.table.select(
            self.select, [self.row_ids], [self.selected, self.chat, self.details], api_visibility="private"
        )
        submit.click(
            self.record_decision,
            [self.selected, decision, corrected, note],
            [self.result, self.details],
            api_visibility="private",
        ).then(self.load_queue, filters, shown, api_visibility="private")
        delete.click(
            self.ask_delete, [self.selected], [self.delete_confirm, self.delete_question], api_visibility="private"
        )
        keep.click(lambda: gr.update(visible=False), None, [self.delete_confirm], api_visibility="private", queue=False)
        confirm.click(
            self.delete_selected,
            [self.selected],
            [self.result, self.delete_confirm, self.selected, self.chat, self.details],
            api_visibility="private",
        ).success(self.load_queue, filters, shown, api_visibility="private")

    def _render_stats(self) -> None:
        self.open_count = gr.Markdown()
        with gr.Row():
            self.per_day = gr.BarPlot(
                x="day", y="count", color="rating", title="Likes vs dislikes per day", y_lim=[0, None]
            )
            self.per_model = gr.BarPlot(x="model", y="like_rate", title="Like rate per model", y_lim=[0, 1])
        with gr.Row():
            self.per_reason = gr.BarPlot(x="reason", y="count", title="Flags per reason", y_lim=[0, None], sort="-y")
            self.lengths = gr.BarPlot(
                x="turns", y="conversations", title="Conversation length (answered turns)", y_lim=[0, None]
            )
        refresh = gr.Button("Refresh stats")
        self.stat_outputs = [self.open_count, self.per_day, self.per_model, self.per_reason, self.lengths]
        refresh.click(self.load_stats, None, self.stat_outputs, api_visibility="private")

    # -- handlers --------------------------------------------------------------------------

    def load_queue(
        self,
        reason: str,
        model: str,
        since: str,
        until: str,
        status: str,
        page: Any,
        request: gr.Request,
        profile: gr.OAuthProfile | None = None,
    ) -> tuple[list[list[Any]], list[str], str]:
        """One page of the queue table, its rows' message ids and the page line, for the filters."""
        self.reviewer(request, profile)
        try:
            shown = self.desk.page(make_filter(reason, model, since, until, status), offset=page_offset(page))
        except FeedbackError as error:
            raise refusal(error) from error
        return [item_row(item) for item in shown.items], [item.message_id for item in shown.items], page_info(shown)

    def load_stats(self, request: gr.Request, profile: gr.OAuthProfile | None = None) -> tuple[Any, ...]:
        """The Stats tab's values."""
        self.reviewer(request, profile)
        return _stat_values(self.desk.stats())

    def refresh_all(
        self,
        reason: str,
        model: str,
        since: str,
        until: str,
        status: str,
        page: Any,
        request: gr.Request,
        profile: gr.OAuthProfile | None = None,
    ) -> tuple[Any, ...]:
        """On page load: a queue page, the filter choices, and the stats (the source read once)."""
        self.reviewer(request, profile)
        try:
            seen = self.desk.overview(make_filter(reason, model, since, until, status), offset=page_offset(page))
        except FeedbackError as error:
            raise refusal(error) from error
        items = seen.page.items
        return (
            [item_row(item) for item in items],
            [item.message_id for item in items],
            page_info(seen.page),
            gr.Dropdown(choices=[ANY, *seen.reasons]),
            gr.Dropdown(choices=[ANY, *seen.models]),
            *_stat_values(seen.stats),
        )

    def select(
        self, row_ids: list[str], event: gr.SelectData, request: gr.Request, profile: gr.OAuthProfile | None = None
    ) -> tuple[str, list[dict[str, str]], str]:
        """Show the conversation and details of the clicked row."""
        self.reviewer(request, profile)
        row = event.index[0] if isinstance(event.index, list | tuple) else event.index
        try:
            item = self.desk.item(row_ids[row])
        except (IndexError, FeedbackError) as error:
            raise gr.Error("That row is gone; refresh the queue.", print_exception=False) from error
        return item.message_id, item_chat(item), item_details(item)

    def record_decision(
        self,
        message_id: str | None,
        decision: str | None,
        corrected: str,
        note: str,
        request: gr.Request,
        profile: gr.OAuthProfile | None = None,
    ) -> tuple[str, str]:
        """Record the form's decision on the selected reply."""
        if not message_id:
            raise gr.Error("Select a flagged reply first.", print_exception=False)
        review = self._decide(message_id, decision or "", corrected, note, request, profile)
        return f"Recorded: **{review.decision}** by {review.reviewer}.", item_details(self.desk.item(message_id))

    def _decide(
        self,
        message_id: str,
        decision: str,
        corrected: str,
        note: str,
        request: gr.Request | None,
        profile: gr.OAuthProfile | None,
    ) -> Any:
        reviewer = self.reviewer(request, profile)
        try:
            return self.desk.decide(message_id, decision, reviewer=reviewer, corrected_reply=corrected, note=note)
        except FeedbackError as error:
            raise refusal(error) from error

    def ask_delete(
        self, message_id: str | None, request: gr.Request, profile: gr.OAuthProfile | None = None
    ) -> tuple[Any, str]:
        """Open the confirmation for deleting the selected reply's conversation (reviewers only)."""
        self.reviewer(request, profile)
        conversation_id = self._conversation_of(message_id)
        return gr.update(visible=True), (
            f"Delete conversation `{conversation_id}`? Every turn, rating, flag, review and uploaded file "
            "of it is erased from the data dir and the dataset repo. This cannot be undone."
        )

    def delete_selected(
        self, message_id: str | None, request: gr.Request, profile: gr.OAuthProfile | None = None
    ) -> tuple[Any, ...]:
        """Delete the conversation of the selected reply, as the signed-in reviewer; clears the
        selection (the queue is reloaded after it)."""
        reviewer = self.reviewer(request, profile)
        conversation_id = self._conversation_of(message_id)
        self._delete(conversation_id, reviewer)
        return (
            f"Deleted conversation `{conversation_id}` (by {reviewer}).",
            gr.update(visible=False),
            None,
            [],
            "Select a row to review it.",
        )

    def _conversation_of(self, message_id: str | None) -> str:
        if self.eraser is None:
            raise gr.Error(NO_DELETION, print_exception=False)
        if not message_id:
            raise gr.Error("Select a flagged reply first.", print_exception=False)
        try:
            return self.desk.item(message_id).turn.conversation_id
        except FeedbackError as error:
            raise gr.Error("That row is gone; refresh the queue.", print_exception=False) from error

    def _delete(self, conversation_id: str, reviewer: str) -> None:
        if self.eraser is None:
            raise gr.Error(NO_DELETION, print_exception=False)
        try:
            self.eraser.forget(conversation_id, requested_by="reviewer", reviewer=reviewer)
        except (FeedbackError, SaveError) as error:
            raise refusal(error) from error

    # -- API -------------------------------------------------------------------------------

    def queue_items(
        self,
        reason: str = "",
        model: str = "",
        since: str = "",
        until: str = "",
        status: str = "open",
        page: int = 1,
        request: gr.Request = None,
    ) -> list[dict[str, Any]]:  # type: ignore[assignment]
        """A page of the queue as JSON (reviewers only): one :func:`item_summary` per flagged reply, newest
        first, ``PAGE_SIZE`` (50) per page; ``page`` counts from 1 (an empty list past the last page)."""
        self.reviewer(request)
        try:
            shown = self.desk.page(make_filter(reason, model, since, until, status or None), offset=page_offset(page))
        except FeedbackError as error:
            raise refusal(error) from error
        return [item_summary(item) for item in shown.items]

    def decide_api(
        self, message_id: str, decision: str, corrected_reply: str = "", note: str = "", request: gr.Request = None
    ) -> dict[str, Any]:  # type: ignore[assignment]
        """Record a decision (reviewers only); returns the stored review record."""
        return self._decide(message_id, decision, corrected_reply, note, request, None).model_dump(mode="json")

    def delete_api(self, conversation_id: str, request: gr.Request = None) -> dict[str, Any]:  # type: ignore[assignment]
        """Delete a conversation (reviewers only), as "Delete conversation" does; returns
        ``{"conversation_id": str, "deleted": true, "reviewer": str}``."""
        reviewer = self.reviewer(request)
        if not is_valid_id(conversation_id):
            raise gr.Error(
                f"conversation_id {clip(conversation_id)!r} is malformed: use 8-64 characters of "
                "A-Z, a-z, 0-9, '_' or '-'",
                print_exception=False,
            )
        self._delete(conversation_id, reviewer)
        return {"conversation_id": conversation_id, "deleted": True, "reviewer": reviewer}


def _reads_own_data_dir(desk: ReviewDesk) -> bool:
    """Whether the desk's queue is its recorder's own data dir (not a dataset repo read in place)."""
    source = desk.source
    return isinstance(source, ShardSource) and not source.prefix and source.root.resolve() == desk.store.root.resolve()
