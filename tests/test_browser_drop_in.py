"""The page in real headless Chromium: clicks recorded as the user meant them, for the app served as
``python app.py`` and for a ``FeedbackChatInterface(..., save_history=True, editable=True,
additional_inputs=[slider])`` user app."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import pytest
from browser import chromium, screenshot, wait_until
from conftest import AppProcess, launch, read_records

from feedback import FeedbackChatInterface


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


class UserApp:
    """A library user's app whose replies stream until the test releases them."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.release = threading.Event()
        self.release.set()
        self.demo = FeedbackChatInterface(
            self.reply,
            data_dir=data_dir,
            multimodal=True,
            save_history=True,
            editable=True,
            additional_inputs=[gr.Slider(0, 2, value=0.7, label="Temperature")],
            flagging_options=["Like", "Dislike", "Spam", "Wrong"],
        )
        self.url = launch(self.demo)

    def reply(self, message: dict, history: list, temperature: float) -> Iterator[str]:
        yield f"part of {message['text']}"
        self.release.wait(30)
        yield f"part of {message['text']}, whole at {temperature}"

    def records(self, kind: str) -> list[dict]:
        return read_records(self.data_dir, kind)


@pytest.fixture
def user_app(tmp_path: Path) -> Iterator[UserApp]:
    app = UserApp(tmp_path / "data")
    try:
        yield app
    finally:
        app.release.set()
        app.demo.close()


class Page:
    def __init__(self, page, url: str, records) -> None:  # noqa: ANN001 - a playwright Page, a records reader
        from playwright.sync_api import expect

        self.page, self.records, self.expect = page, records, expect
        page.goto(url)
        self.input = page.get_by_role("group", name="Multimedia input field").get_by_role("textbox")
        self.comment = page.get_by_role("textbox", name="Comment")
        self.replies = page.get_by_test_id("bot")
        self.input.wait_for()

    def send(self, text: str, *, whole: bool = True) -> None:
        turns = len(self.records("turns"))
        self.input.fill(text)
        self.input.press("Enter")
        if whole:
            wait_until(lambda: len(self.records("turns")) == turns + 1, what=f"the turn for {text!r}")
            self.expect(self.replies.last).to_have_text(self.records("turns")[-1]["response"])
        else:
            self.expect(self.replies.last).to_contain_text(f"part of {text}")

    def reply_button(self, reply: int, name: str):  # noqa: ANN201 - a playwright Locator
        """Button ``name`` of the ``reply``-th reply shown (0-based)."""
        return self.page.locator(".message-buttons-left").nth(reply).get_by_role("button", name=name, exact=True)

    def button(self, name: str):  # noqa: ANN201
        return self.page.get_by_role("button", name=name, exact=True).last


def test_a_like_while_the_reply_streams_is_recorded_and_stays_shown(browser, user_app):
    page = Page(browser.new_page(), user_app.url, user_app.records)
    user_app.release.clear()
    page.send("hello", whole=False)
    page.button("Like").click()  # while the reply streams
    user_app.release.set()
    wait_until(lambda: len(user_app.records("ratings")) == 1, what="the like, written after its turn")
    (turn,) = user_app.records("turns")
    (rating,) = user_app.records("ratings")
    assert rating["message_id"] == turn["message_id"] and rating["rating"] == "like"
    assert turn["params"]["temperature"] == 0.7  # the slider's value, by label
    page.expect(page.button("Liked")).to_be_visible()  # still shown once the reply is whole
    page.expect(page.page.get_by_text("Error")).to_have_count(0)
    page.button("Liked").click()  # un-like: an undo of a like that exists
    wait_until(lambda: len(user_app.records("ratings")) == 2, what="the undo")
    assert user_app.records("ratings")[-1]["rating"] is None
    page.page.close()


def test_a_comment_goes_with_one_flag_only_and_the_box_empties(browser, tmp_path):
    app = AppProcess({"FEEDBACK_DATA_DIR": str(tmp_path / "data")}, tmp_path / "app.log").wait_ready()
    try:
        page = Page(browser.new_page(), app.url, lambda kind: read_records(tmp_path / "data", kind))
        page.send("first question")
        page.send("second question")
        page.comment.fill("wrong year")
        page.comment.blur()  # as a person moving to the reply does: the box commits its value
        page.reply_button(0, "Feedback").click()
        page.reply_button(0, "Inaccurate").click()
        wait_until(lambda: read_records(tmp_path / "data", "flags"), what="the flag")
        page.expect(page.comment).to_have_value("")
        page.reply_button(1, "Like").click()
        wait_until(lambda: read_records(tmp_path / "data", "ratings"), what="the like")
        page.expect(page.comment).to_have_value("")  # the repeat of the flag pick did not put it back
        screenshot(page.page, "page-comment")
    finally:
        app.terminate(60)
    (flag,) = read_records(tmp_path / "data", "flags")
    (rating,) = read_records(tmp_path / "data", "ratings")
    first, second = read_records(tmp_path / "data", "turns")
    assert (flag["message_id"], flag["comment"], flag["reasons"]) == (first["message_id"], "wrong year", ["Inaccurate"])
    assert (rating["message_id"], rating["comment"]) == (second["message_id"], None)


def test_new_chat_and_a_reopened_chat_keep_their_own_conversations(browser, user_app):
    page = Page(browser.new_page(), user_app.url, user_app.records)
    page.send("about cats")
    panel = page.page.locator(".table")  # the history panel's rows
    page.expect(panel.get_by_text("about cats", exact=True)).to_be_visible()  # saved before "New chat"
    page.page.get_by_role("button", name="New chat").click()
    page.expect(page.replies).to_have_count(0)
    page.send("about dogs")
    page.button("Dislike").click()
    wait_until(lambda: len(user_app.records("ratings")) == 1, what="the dislike")
    page.expect(panel.get_by_text("about dogs", exact=True)).to_be_visible()
    panel.get_by_text("about cats", exact=True).click()
    page.expect(page.replies.last).to_contain_text("part of about cats")
    page.button("Like").click()
    wait_until(lambda: len(user_app.records("ratings")) == 2, what="the like in the reopened chat")
    page.send("more about cats")
    page.button("Retry").click()
    wait_until(lambda: len(user_app.records("turns")) == 4, what="the retried turn")
    page.expect(page.reply_button(0, "Liked")).to_be_visible()  # the earlier like still shown after the retry
    screenshot(page.page, "page-history")
    cats, dogs, more, retried = user_app.records("turns")
    assert cats["conversation_id"] != dogs["conversation_id"]
    assert dogs["turn_index"] == 0 and dogs["edited_from"] is None
    assert more["conversation_id"] == retried["conversation_id"] == cats["conversation_id"]
    assert more["turn_index"] == retried["turn_index"] == 1 and retried["regenerated_from"] == more["message_id"]
    dislike, like = user_app.records("ratings")
    assert (dislike["conversation_id"], dislike["message_id"]) == (dogs["conversation_id"], dogs["message_id"])
    assert (like["conversation_id"], like["message_id"]) == (cats["conversation_id"], cats["message_id"])
    page.page.close()


def test_the_apps_flagging_options_are_the_flag_menu_and_each_pick_is_recorded(browser, user_app):
    page = Page(browser.new_page(), user_app.url, user_app.records)
    page.send("buy now")
    page.reply_button(0, "Feedback").click()
    page.expect(page.reply_button(0, "Inaccurate")).to_have_count(0)  # the app's menu, not the defaults
    page.reply_button(0, "Spam").click()
    wait_until(lambda: len(user_app.records("flags")) == 1, what="the Spam flag")
    page.reply_button(0, "Feedback").click()
    page.reply_button(0, "Wrong").click()
    wait_until(lambda: len(user_app.records("flags")) == 2, what="the Wrong flag")
    page.page.keyboard.press("Escape")  # close the flag menu
    page.reply_button(0, "Like").click()  # handled after both picks: every event of them is in by now
    page.expect(page.reply_button(0, "Liked")).to_be_visible()
    wait_until(lambda: len(user_app.records("ratings")) == 1, timeout=40, what="the like")
    (turn,) = user_app.records("turns")
    assert [(f["message_id"], f["reasons"]) for f in user_app.records("flags")] == [
        (turn["message_id"], ["Spam"]),
        (turn["message_id"], ["Wrong"]),
    ]
    page.page.close()
