"""The consent step in real headless Chromium, for the app served as ``python app.py`` with
``FEEDBACK_CONSENT=required``, a policy link and ``FEEDBACK_REDACT=on``: the chat stays closed until
the user answers; declining chats without a record; agreeing records, with personal data replaced
in the records while the page shows what was said."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import chromium, screenshot, wait_until
from conftest import AppProcess, read_records

from feedback.web.page import AGREE, CHOOSE_PLACEHOLDER, DECLINE, NOT_RECORDED, RECORDED

POLICY = "https://example.com/privacy"


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def app(tmp_path: Path):
    env = {
        "FEEDBACK_DATA_DIR": str(tmp_path / "data"),
        "FEEDBACK_CONSENT": "required",
        "FEEDBACK_POLICY_URL": POLICY,
        "FEEDBACK_REDACT": "on",
    }
    process = AppProcess(env, tmp_path / "app.log").wait_ready(120)
    try:
        yield process
    finally:
        process.terminate(60)


def open_page(browser, url: str):  # noqa: ANN001, ANN201 - a playwright Browser, Page
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(url)
    step = page.locator(".feedback-consent").first  # Gradio puts the class on the group and its inner box
    expect(step).to_be_visible()
    expect(step.get_by_role("link", name="Privacy policy")).to_have_attribute("href", POLICY)
    field = page.get_by_role("group", name="Multimedia input field").get_by_role("textbox")
    expect(field).to_be_disabled()  # no first message before an answer
    expect(field).to_have_attribute("placeholder", CHOOSE_PLACEHOLDER)
    return page, step, field


def send(page, field, text: str) -> None:  # noqa: ANN001 - playwright objects
    from playwright.sync_api import expect

    field.fill(text)
    field.press("Enter")
    expect(page.get_by_test_id("bot").last).to_contain_text(f"You said: {text}")


def test_declining_chats_without_records_and_agreeing_records_with_placeholders(browser, app, tmp_path):
    from playwright.sync_api import expect

    data = tmp_path / "data"
    page, step, field = open_page(browser, app.url)
    screenshot(page, "privacy-consent-step")
    step.get_by_role("button", name=DECLINE).click()
    expect(step).to_be_hidden()
    expect(page.get_by_text(NOT_RECORDED)).to_be_visible()
    expect(field).to_be_enabled()
    send(page, field, "not for the records, mail me at jane@example.com")
    page.get_by_role("button", name="Like", exact=True).last.click()
    expect(page.get_by_role("button", name="Liked", exact=True)).to_be_visible()  # the click went through
    page.get_by_role("button", name="Clear", exact=True).click()  # a new conversation: the answer holds
    send(page, field, "still not recorded")
    screenshot(page, "privacy-declined")
    page.close()

    page, step, field = open_page(browser, app.url)
    step.get_by_role("button", name=AGREE).click()
    expect(page.get_by_text(RECORDED)).to_be_visible()
    send(page, field, "record this, mail me at jane@example.com")
    expect(page.get_by_test_id("bot").last).to_contain_text("jane@example.com")  # shown as said
    wait_until(lambda: read_records(data, "turns"), what="the agreed turn")
    page.close()

    (turn,) = read_records(data, "turns")  # the declined conversations left nothing
    assert turn["messages"][-1]["content"] == "record this, mail me at <EMAIL>"
    assert turn["response"].startswith("You said: record this, mail me at <EMAIL>")
    assert not read_records(data, "ratings")
    stored = b"".join(p.read_bytes() for p in data.rglob("*") if p.is_file())
    assert b"not for the records" not in stored and b"still not recorded" not in stored
    assert b"jane@example.com" not in stored
