"""The app's own Gradio page in real headless Chromium: every way a user gives feedback there,
checked against the records the app writes."""

from __future__ import annotations

import pytest
from browser import chromium, screenshot, wait_until


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


class ChatPage:
    """The Gradio chat page, driven as a user would (Gradio's own labels: "Like", "Retry", ...)."""

    def __init__(self, page, app) -> None:  # noqa: ANN001 - a playwright Page and conftest's RunningApp
        from playwright.sync_api import expect

        self.page, self.app, self.expect = page, app, expect
        page.goto(app.url)
        self.input = page.get_by_role("group", name="Multimedia input field").get_by_role("textbox")
        self.comment = page.get_by_role("textbox", name="Comment")
        self.replies = page.get_by_test_id("bot")
        self.input.wait_for()

    def count(self, kind: str) -> int:
        return len(self.app.records(kind))

    def send(self, text: str) -> str:
        """Send ``text``; wait until the reply is logged and shown whole; returns the reply's text."""
        turns = self.count("turns")
        self.input.fill(text)
        self.input.press("Enter")
        return self.shown_reply(turns, f"the turn for {text!r}")

    def shown_reply(self, turns: int, what: str) -> str:
        wait_until(lambda: self.count("turns") == turns + 1, what=f"{what} to be logged")
        response = self.app.records("turns")[-1]["response"]
        self.expect(self.replies.last).to_have_text(response)  # the page shows what was recorded
        return response

    def button(self, name: str):  # noqa: ANN201 - a playwright Locator
        """The button ``name`` of the last reply (the last such button on the page)."""
        return self.page.get_by_role("button", name=name, exact=True).last

    def rate(self, name: str, comment: str = "") -> None:
        """Click "Like" or "Dislike" on the last reply (with ``comment`` in the comment box) and
        wait until the rating is stored and the comment box emptied."""
        ratings = self.count("ratings")
        self.comment.fill(comment)
        self.button(name).click()
        self.expect(self.button(f"{name}d")).to_be_visible()  # Gradio relabels the pressed thumb
        self.expect(self.comment).to_have_value("")
        wait_until(lambda: self.count("ratings") == ratings + 1, what=f"the {name} to be stored")

    def flag(self, reason: str) -> None:
        """Pick ``reason`` in the flag menu of the last reply; wait until the flag is stored.

        Gradio 6.31's page sends the like event twice for one pick (see
        :func:`test_a_flag_menu_pick_is_recorded_once`), so this waits for at least one record.
        """
        flags = self.count("flags")
        self.button("Feedback").click()
        self.button(reason).click()
        wait_until(lambda: self.count("flags") > flags, what=f"the {reason!r} flag to be stored")

    def retry(self) -> str:
        """Click "Retry" on the last reply; returns the new reply's text, once logged and shown."""
        turns = self.count("turns")
        self.button("Retry").click()
        return self.shown_reply(turns, "the regenerated turn")


def test_every_feedback_action_on_the_page_is_recorded(browser, running_app):
    page = ChatPage(browser.new_page(), running_app)
    first = page.send("How tall is Mont Blanc?")
    page.rate("Like", comment="clear answer")
    page.flag("Inaccurate")
    again = page.retry()
    page.expect(page.button("Like")).to_be_visible()  # the new reply is not rated yet
    page.rate("Like")
    screenshot(page.page, "page")
    page.button("Clear").click()
    page.expect(page.replies).to_have_count(0)
    after = page.send("A new topic")

    turns = running_app.records("turns")
    assert [(t["response"], t["turn_index"]) for t in turns] == [(first, 0), (again, 0), (after, 0)]
    assert again.endswith("(take 2)") and after.startswith("You said: A new topic")
    original, regenerated, fresh = (t["message_id"] for t in turns)
    assert turns[1]["regenerated_from"] == original and turns[1]["messages"] == turns[0]["messages"]
    conversation = turns[0]["conversation_id"]
    assert turns[1]["conversation_id"] == conversation != turns[2]["conversation_id"]
    assert [m["content"] for m in turns[2]["messages"]] == ["A new topic"]  # nothing of the cleared chat
    assert all(t["source"] == "ui" for t in turns)
    ratings = running_app.records("ratings")
    assert [(r["message_id"], r["rating"], r["comment"], r["conversation_id"]) for r in ratings] == [
        (original, "like", "clear answer", conversation),
        (regenerated, "like", None, conversation),
    ]
    # like events are handled one at a time, so every flag is stored once the later like is
    flags = {(f["message_id"], tuple(f["reasons"]), f["conversation_id"]) for f in running_app.records("flags")}
    assert flags == {(original, ("Inaccurate",), conversation)}
    page.page.close()


def test_a_flag_menu_pick_is_recorded_once(browser, running_app):
    """Gradio 6.31's Chatbot sends the like event twice when a flag-menu option is clicked (its
    option click handler calls handle_action after the toggle that already called it); the app
    records the pick once."""
    page = ChatPage(browser.new_page(), running_app)
    page.send("Is the sky green?")
    page.flag("Harmful")
    page.rate("Like")  # handled after every event of the pick, so the flags are all stored by now
    assert len(running_app.records("flags")) == 1
    assert [r["rating"] for r in running_app.records("ratings")] == ["like"]
    page.page.close()


def test_two_browser_sessions_get_their_own_conversations(browser, running_app):
    contexts = [browser.new_context(), browser.new_context()]
    pages = [ChatPage(context.new_page(), running_app) for context in contexts]
    for page, name in zip(pages, ("ann", "bob"), strict=True):
        page.send(f"{name} says hello")
    pages[0].rate("Dislike")
    pages[1].send("bob again")
    pages[1].rate("Like")

    turns = running_app.records("turns")
    ids = {t["messages"][-1]["content"].split()[0]: t["conversation_id"] for t in turns}
    assert ids["ann"] != ids["bob"]
    assert [t["conversation_id"] for t in turns] == [ids["ann"], ids["bob"], ids["bob"]]
    ann, bob = running_app.records("ratings")
    assert (ann["conversation_id"], ann["message_id"], ann["rating"]) == (ids["ann"], turns[0]["message_id"], "dislike")
    assert (bob["conversation_id"], bob["message_id"], bob["rating"]) == (ids["bob"], turns[2]["message_id"], "like")
    for context in contexts:
        context.close()
