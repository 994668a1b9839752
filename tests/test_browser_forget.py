"""Deleting a conversation in real headless Chromium: the chat page's "Forget this conversation"
(for the app as deployed, ``python app.py``, and for a library page with ``save_history``), the
reviewer's "Delete conversation", and the widget's "Forget this conversation" on another origin.
Each is checked against the data dir: the deletion record, then the conversation's records gone
from the shards once the eraser has run, and every other record still there."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import Widget, chromium, copy_widget, open_widget, screenshot, static_site, wait_until
from conftest import AppProcess, launch, read_records, records_of, shard_bytes
from gradio_client import Client

from feedback import FeedbackChatInterface
from feedback.web.page import (
    AGREE,
    ALREADY_FORGOTTEN,
    CONFIRM_FORGET,
    DECLINE,
    FORGET,
    FORGET_QUESTION,
    FORGOTTEN,
    KEEP,
    NOTHING_TO_FORGET,
)
from feedback.web.review_page import CONFIRM_DELETE, DELETE

REVIEWER = ("ann", "pw-ann-browser-forget-1")


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    """``python app.py`` asking for consent, with a reviewer page."""
    folder = tmp_path_factory.mktemp("browser-forget")
    env = {
        "FEEDBACK_DATA_DIR": str(folder / "data"),
        "FEEDBACK_CONSENT": "required",
        "FEEDBACK_REVIEW_AUTH": f"{REVIEWER[0]}:{REVIEWER[1]}",
        "HF_HUB_OFFLINE": "1",
    }
    with AppProcess(env, folder / "app.log") as process:
        yield process


class ChatPage:
    """The chat page, driven as a user would."""

    def __init__(self, page, url: str, data: Path) -> None:  # noqa: ANN001 - a playwright Page
        from playwright.sync_api import expect

        self.page, self.data, self.expect = page, data, expect
        page.goto(url)
        self.input = page.get_by_role("group", name="Multimedia input field").get_by_role("textbox")
        self.replies = page.get_by_test_id("bot")
        self.input.wait_for()

    def answer(self, choice: str) -> None:
        self.page.locator(".feedback-consent").first.get_by_role("button", name=choice).click()
        self.expect(self.input).to_be_enabled()

    def send(self, text: str) -> None:
        self.input.fill(text)
        self.input.press("Enter")
        self.expect(self.replies.last).to_contain_text(f"You said: {text}")

    def button(self, name: str):  # noqa: ANN201 - a playwright Locator
        return self.page.get_by_role("button", name=name, exact=True)

    def forget(self, cancel_first: bool = False) -> None:
        """Click "Forget this conversation", then confirm (after a first try that cancels)."""
        question = self.page.get_by_text(FORGET_QUESTION)
        if cancel_first:
            self.button(FORGET).click()
            self.expect(question).to_be_visible()
            self.button(KEEP).click()
            self.expect(question).to_be_hidden()
        self.button(FORGET).click()
        self.expect(question).to_be_visible()
        self.button(CONFIRM_FORGET).click()
        self.expect(question).to_be_hidden()


def test_the_page_forgets_its_conversation_and_the_next_message_starts_a_new_one(browser, app):
    data = app.data
    other = Client(app.url, verbose=False)
    kept, _ = converse_with_consent(other)
    kept_before = records_of(data, kept)

    page = ChatPage(browser.new_page(), app.url, data)
    page.answer(AGREE)
    page.send("page forget 5a1e")
    page.send("page forget 5a1e again")
    ratings = len(read_records(data, "ratings"))
    page.button("Like").last.click()
    wait_until(lambda: len(read_records(data, "ratings")) == ratings + 1, what="the like")
    (turn, *_) = [t for t in read_records(data, "turns") if "5a1e" in t["messages"][-1]["content"]]
    forgotten = turn["conversation_id"]
    assert len(records_of(data, forgotten)) == 3

    page.forget(cancel_first=True)
    page.expect(page.page.get_by_text(FORGOTTEN)).to_be_visible()
    page.expect(page.replies).to_have_count(0)  # the chat is cleared
    screenshot(page.page, "page-forgotten")
    (deletion,) = read_records(data, "deletions")
    assert (deletion["conversation_id"], deletion["requested_by"]) == (forgotten, "user")
    wait_until(lambda: not records_of(data, forgotten), timeout=30, what="the forgotten records to go")
    assert b"5a1e" not in shard_bytes(data)
    assert records_of(data, kept) == kept_before

    page.send("after forgetting 0b3d")  # a new conversation, recorded as agreed
    wait_until(
        lambda: [t for t in read_records(data, "turns") if "0b3d" in t["messages"][-1]["content"]], what="the next turn"
    )
    (after,) = [t for t in read_records(data, "turns") if "0b3d" in t["messages"][-1]["content"]]
    assert after["conversation_id"] != forgotten and after["turn_index"] == 0
    assert [m["content"] for m in after["messages"]] == ["after forgetting 0b3d"]  # nothing of the old chat
    page.page.close()


def converse_with_consent(client: Client, marker: str = "8d2c") -> tuple[str, list[str]]:
    """A recorded conversation (two turns, a like, a flag; texts ending in ``marker``) through the
    API of an app that asks first."""
    first = client.predict(f"kept one {marker}", "", consent=True, api_name="/chat")
    cid = first["conversation_id"]
    second = client.predict(f"kept two {marker}", cid, api_name="/chat")
    client.predict(cid, first["message_id"], "like", "", "", api_name="/rate")
    client.predict(cid, second["message_id"], ["Harmful"], f"kept flag {marker}", api_name="/flag")
    return cid, [first["message_id"], second["message_id"]]


def test_a_declined_chat_has_nothing_to_forget_and_is_cleared(browser, app):
    page = ChatPage(browser.new_page(), app.url, app.data)
    page.answer(DECLINE)
    page.send("declined 2e6f")
    deletions = read_records(app.data, "deletions")
    page.forget()
    page.expect(page.page.get_by_text(NOTHING_TO_FORGET)).to_be_visible()
    page.expect(page.replies).to_have_count(0)
    page.send("declined again 2e6f")  # the answer holds for the new conversation
    assert read_records(app.data, "deletions") == deletions
    assert b"2e6f" not in shard_bytes(app.data)
    page.page.close()


def test_a_chat_deleted_elsewhere_is_reported_as_already_deleted(browser, app):
    page = ChatPage(browser.new_page(), app.url, app.data)
    page.answer(AGREE)
    page.send("deleted in another tab 9a3f")
    wait_until(
        lambda: [t for t in read_records(app.data, "turns") if "9a3f" in t["messages"][-1]["content"]], what="the turn"
    )
    (turn,) = [t for t in read_records(app.data, "turns") if "9a3f" in t["messages"][-1]["content"]]
    Client(app.url, verbose=False).predict(turn["conversation_id"], api_name="/forget")
    deletions = read_records(app.data, "deletions")
    page.forget()
    page.expect(page.page.get_by_text(ALREADY_FORGOTTEN)).to_be_visible()
    page.expect(page.replies).to_have_count(0)
    assert read_records(app.data, "deletions") == deletions  # one deletion record, not two
    page.page.close()


def test_a_chat_reopened_from_the_history_panel_is_the_one_forgotten(browser, tmp_path):
    data = tmp_path / "data"
    demo = FeedbackChatInterface(
        lambda message, history: f"You said: {message['text']}", data_dir=data, multimodal=True, save_history=True
    )
    url = launch(demo)
    try:
        page = ChatPage(browser.new_page(), url, data)
        panel = page.page.locator(".table")  # the history panel's rows
        page.send("about owls")
        page.expect(panel.get_by_text("about owls", exact=True)).to_be_visible()
        page.page.get_by_role("button", name="New chat").click()
        page.expect(page.replies).to_have_count(0)
        page.send("about bats")
        page.expect(panel.get_by_text("about bats", exact=True)).to_be_visible()
        owls, bats = read_records(data, "turns")
        panel.get_by_text("about owls", exact=True).click()
        page.expect(page.replies.last).to_contain_text("You said: about owls")
        page.forget()
        page.expect(page.page.get_by_text(FORGOTTEN)).to_be_visible()
        page.expect(panel.get_by_text("about owls", exact=True)).to_have_count(0)  # gone from the panel
        page.expect(panel.get_by_text("about bats", exact=True)).to_be_visible()
        assert demo.eraser.wait(30)
        assert [t["message_id"] for t in read_records(data, "turns")] == [bats["message_id"]]
        assert [d["conversation_id"] for d in read_records(data, "deletions")] == [owls["conversation_id"]]
        page.send("about moths")
        moths = read_records(data, "turns")[-1]
        assert moths["conversation_id"] not in (owls["conversation_id"], bats["conversation_id"])
        page.page.close()
    finally:
        demo.close()


def test_a_signed_in_reviewer_deletes_the_conversation_of_a_flagged_reply(browser, app):
    from playwright.sync_api import expect

    data = app.data
    client = Client(app.url, verbose=False)
    flagged, _ = converse_with_consent(client, "e5b0")
    first = client.predict("reviewed kept 4c1a", "", consent=True, api_name="/chat")
    client.predict(first["conversation_id"], first["message_id"], ["Inaccurate"], "", api_name="/flag")
    kept_before = records_of(data, first["conversation_id"])

    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(f"{app.url}/review/")
    page.get_by_label("username").fill(REVIEWER[0])
    page.get_by_label("password").fill(REVIEWER[1])
    page.get_by_role("button", name="Login").click()
    table = page.get_by_role("grid", name="Queue (newest first)")
    reply = records_of(data, flagged, ("turns",))[-1]["response"]
    table.get_by_role("gridcell", name=reply).click()
    expect(page.get_by_text("kept flag e5b0")).to_be_visible()  # the row's details are shown
    page.get_by_role("button", name=DELETE, exact=True).click()
    expect(page.get_by_text(f"Delete conversation {flagged}?")).to_be_visible()
    screenshot(page, "review-delete-confirm")
    page.get_by_role("button", name=CONFIRM_DELETE, exact=True).click()
    expect(page.get_by_text(f"Deleted conversation {flagged} (by {REVIEWER[0]}).")).to_be_visible()
    wait_until(lambda: not records_of(data, flagged), timeout=30, what="the deleted conversation's records to go")
    deletion = read_records(data, "deletions")[-1]
    assert (deletion["conversation_id"], deletion["requested_by"], deletion["reviewer"]) == (
        flagged,
        "reviewer",
        REVIEWER[0],
    )
    assert records_of(data, first["conversation_id"]) == kept_before
    expect(table.get_by_role("gridcell", name=first["response"])).to_be_visible()
    page.close()


# -- the widget ---------------------------------------------------------------------------------


def widget_page(folder: Path, name: str, app_url: str, **attributes: str) -> str:
    """A page of the embedding site with the widget and ``data-*`` attributes; returns its name."""
    extra = "".join(f' data-{key}="{html.escape(value)}"' for key, value in attributes.items())
    folder.joinpath(name).write_text(
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'><title>Embedding site</title>"
        "<link rel='icon' href='data:,'></head>\n<body>\n"
        f'<div data-feedback-chat data-app-url="{html.escape(app_url)}"{extra}></div>\n'
        '<script type="module" src="./feedback-widget.js"></script>\n</body></html>\n'
    )
    return name


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    folder = copy_widget(tmp_path / "site")
    with static_site(folder) as url:
        yield folder, url


def test_the_widget_forgets_its_conversation(browser, running_app, site):

    folder, site_url = site
    data = running_app.data_dir
    widget_page(folder, "chat.html", running_app.url, persist="")
    widget = Widget(open_widget(browser, f"{site_url}/chat.html"))
    kept = Client(running_app.url, verbose=False).predict("kept 1f9a", "", api_name="/chat")
    first = widget.send("widget forget 6c0e")
    widget.like(first)
    widget.send("widget forget 6c0e more")
    forgotten = widget.conversation_id
    assert len(records_of(data, forgotten)) == 3

    forget = widget.page.get_by_role("button", name=FORGET, exact=True)
    confirm = widget.page.get_by_role("group", name="Forget this conversation?")
    forget.click()
    widget.expect(confirm).to_be_visible()
    confirm.get_by_role("button", name="Cancel").click()
    widget.expect(confirm).to_be_hidden()
    assert widget.conversation_id == forgotten and len(records_of(data, forgotten)) == 3
    forget.click()
    confirm.get_by_role("button", name="Delete it").click()
    widget.expect(widget.page.get_by_role("status").filter(has_text="was deleted")).to_be_visible()
    widget.expect(widget.replies()).to_have_count(0)
    screenshot(widget.page, "widget-forgotten")
    assert widget.conversation_id != forgotten
    assert running_app.demo.eraser.wait(30)
    assert not records_of(data, forgotten) and b"6c0e" not in shard_bytes(data)
    assert [d["conversation_id"] for d in read_records(data, "deletions")] == [forgotten]
    assert [t["message_id"] for t in read_records(data, "turns")] == [kept["message_id"]]

    widget.reload()  # persisted: the new, empty conversation, not the forgotten one
    assert widget.conversation_id not in (forgotten, "") and widget.message_ids() == []
    widget.send("after 6c0e")
    assert read_records(data, "turns")[-1]["conversation_id"] == widget.conversation_id != forgotten
    widget.page.context.close()


def test_the_widget_sends_the_embedding_pages_consent(browser, running_app, site):

    folder, site_url = site
    data = running_app.data_dir
    widget_page(folder, "declined.html", running_app.url, consent="false")
    widget = Widget(open_widget(browser, f"{site_url}/declined.html"))
    widget.expect(widget.page.get_by_text("This chat is not recorded.")).to_be_visible()
    widget.send("declined 7a4b")
    assert b"7a4b" not in shard_bytes(data)  # the reply came after the app's gate kept the turn out
    widget.page.get_by_role("button", name=FORGET, exact=True).click()
    widget.page.get_by_role("button", name="Delete it").click()
    widget.expect(widget.page.get_by_role("status").filter(has_text="nothing to delete")).to_be_visible()
    assert read_records(data, "deletions") == []
    widget.page.context.close()

    widget_page(folder, "agreed.html", running_app.url, consent="true")
    widget = Widget(open_widget(browser, f"{site_url}/agreed.html"))
    reply = widget.send("agreed 7a4b")
    assert [t["message_id"] for t in read_records(data, "turns")] == [reply]
    widget.page.context.close()


def test_the_widget_shows_a_refused_forget_and_keeps_the_conversation(browser, running_app, site):

    folder, site_url = site
    widget_page(folder, "chat.html", running_app.url)
    widget = Widget(open_widget(browser, f"{site_url}/chat.html"))
    widget.send("deleted elsewhere 2d9c")
    conversation = widget.conversation_id
    Client(running_app.url, verbose=False).predict(conversation, api_name="/forget")  # e.g. from another tab
    widget.page.get_by_role("button", name=FORGET, exact=True).click()
    widget.page.get_by_role("button", name="Delete it").click()
    widget.expect(widget.error).to_contain_text(f"conversation {conversation} was already deleted")  # the app's words
    assert widget.conversation_id == conversation and len(widget.message_ids()) == 1
    assert len(read_records(running_app.data_dir, "deletions")) == 1
    widget.page.context.close()
