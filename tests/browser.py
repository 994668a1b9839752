"""Real-browser test helpers: Debian's headless Chromium driven by Playwright, a second web server
for pages on another origin, and screenshots saved as test artefacts.

Nothing here downloads a browser: Playwright launches ``/usr/bin/chromium`` (``make test``
installs it), and tests skip with the reason when it is missing.
"""

from __future__ import annotations

import functools
import html
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support.waiting import wait_until  # noqa: F401 - the browser tests import it from here

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
WIDGET_DIST = ROOT / "feedback" / "web" / "widget_dist"
# Without the background-networking flags Chromium dials out at start, and a closed network
# refuses those connections.
EXPECT_TIMEOUT_MS = 15_000  # Playwright's 5 s default is short for a 2-core CI machine
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_browser() -> None:
    """Skip the calling test when Chromium or Playwright is not installed (``make test`` installs both)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium package (make test does)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright Python package is not installed (requirements-test.txt)")


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium, closed on exit."""
    require_browser()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Page, name: str) -> Path:
    """Save a screenshot of ``page`` as ``test-artifacts/<name>.png``; returns its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        pass


@contextmanager
def static_site(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1, a free port; yields its URL.

    The URL names the host ``localhost``, so its pages are on another origin (other host, other
    port) than an app at ``http://127.0.0.1:<port>``, and still one that Gradio accepts from a
    locally running app.
    """
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="static-site", daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def copy_widget(directory: Path) -> Path:
    """Copy the built widget (``feedback/web/widget_dist``) into ``directory``, as a site vendoring it would."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in WIDGET_DIST.iterdir():
        shutil.copy(path, directory / path.name)
    return directory


def embed_page(directory: Path, name: str, *, app_url: str, script: str, persist: bool) -> str:
    """Write ``directory/name``: a page embedding the widget with the README's snippet; returns ``name``."""
    persist_attr = " data-persist" if persist else ""
    directory.joinpath(name).write_text(
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'><title>Embedding site</title>"
        "<link rel='icon' href='data:,'></head>\n<body>\n<h1>Another site</h1>\n"
        f'<div data-feedback-chat data-app-url="{html.escape(app_url)}"{persist_attr}></div>\n'
        f'<script type="module" src="{html.escape(script)}"></script>\n</body></html>\n'
    )
    return name


def open_widget(browser, url: str, context=None):  # noqa: ANN001, ANN201 - playwright objects
    """A new page (in ``context``, or a new context) showing the widget at ``url``."""
    page = (context or browser.new_context()).new_page()
    page.goto(url)
    page.locator(".fw[data-conversation-id]").wait_for()
    return page


class Widget:
    """The widget on a page, driven as a user would; waits on what the widget shows."""

    def __init__(self, page) -> None:  # noqa: ANN001 - a playwright Page
        from playwright.sync_api import expect

        self.page, self.expect = page, expect
        self.root = page.locator(".fw")
        self.input = page.get_by_role("textbox", name="Message")
        self.error = page.get_by_role("alert")

    @property
    def conversation_id(self) -> str:
        return self.root.get_attribute("data-conversation-id")

    def replies(self):  # noqa: ANN201
        return self.page.locator(".fw-assistant")

    def send(self, text: str) -> str:
        """Send ``text``; wait for the finished reply; returns its ``message_id``."""
        count = self.replies().count()
        self.input.fill(text)
        self.input.press("Enter")
        reply = self.replies().nth(count)
        self.expect(reply).to_have_attribute("data-state", "done")
        self.expect(self.root).to_have_attribute("data-busy", "false")
        return reply.get_attribute("data-message-id")

    def reply(self, message_id: str):  # noqa: ANN201
        return self.page.locator(f'.fw-assistant[data-message-id="{message_id}"]')

    def like(self, message_id: str) -> None:
        button = self.reply(message_id).get_by_role("button", name="Like", exact=True)
        button.click()
        self.expect(button).to_have_attribute("aria-pressed", "true")  # set once the app stored it

    def flag(self, message_id: str, reasons: list[str], comment: str = "", screenshot_as: str = "") -> None:
        """Flag a reply through its flag menu (screenshot the open menu as ``screenshot_as``)."""
        reply = self.reply(message_id)
        reply.get_by_role("button", name="Flag", exact=True).click()
        for reason in reasons:
            reply.get_by_label(reason, exact=True).check()
        reply.get_by_role("textbox", name="Comment").fill(comment)
        if screenshot_as:
            screenshot(self.page, screenshot_as)
        reply.get_by_role("button", name="Send flag").click()
        self.expect(reply.get_by_role("button", name="Flag", exact=True)).to_have_attribute("aria-pressed", "true")

    def regenerate(self, message_id: str) -> str:
        """Regenerate the reply ``message_id`` (the last one); returns the new reply's id."""
        self.reply(message_id).get_by_role("button", name="Regenerate").click()
        last = self.replies().last
        self.expect(last).not_to_have_attribute("data-message-id", message_id)
        self.expect(last).to_have_attribute("data-state", "done")
        self.expect(self.root).to_have_attribute("data-busy", "false")
        return last.get_attribute("data-message-id")

    def message_ids(self) -> list[str]:
        return [r.get_attribute("data-message-id") for r in self.replies().all()]

    def reload(self) -> None:
        self.page.reload()
        self.page.locator(".fw[data-conversation-id]").wait_for()
