"""The embeddable chat widget (``widget/``) in real headless Chromium, on a page of another origin
than the app, checked against the records the app writes."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from browser import ROOT, WIDGET_DIST, Widget, chromium, copy_widget, embed_page, open_widget, screenshot, static_site
from conftest import AppProcess, free_port, read_records


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A second web server (the embedding site) with a vendored copy of the widget: (its folder, its URL)."""
    folder = copy_widget(tmp_path / "site")
    with static_site(folder) as url:
        yield folder, url


def by_conversation(records: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for record in records:
        grouped.setdefault(record["conversation_id"], []).append(record)
    return grouped


def test_widget_on_another_origin_records_every_action(browser, running_app, site):
    folder, site_url = site
    embed_page(folder, "chat.html", app_url=running_app.url, script="./feedback-widget.js", persist=True)
    widget = Widget(open_widget(browser, f"{site_url}/chat.html"))
    conversation = widget.conversation_id
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", conversation)

    first = widget.send("What is the capital of France?")
    second = widget.send("And of Italy?")
    widget.like(first)
    widget.flag(second, ["Inaccurate", "Off-topic"], comment="it did not answer", screenshot_as="widget-flag-menu")
    third = widget.regenerate(second)
    assert widget.message_ids() == [first, third]
    widget.expect(widget.reply(third)).to_contain_text("(take 2)")
    screenshot(widget.page, "widget")
    widget.reload()  # persistence on: the same conversation goes on, transcript and all
    assert widget.conversation_id == conversation and widget.message_ids() == [first, third]
    fourth = widget.send("And of Spain?")

    turns = running_app.records("turns")
    assert [(t["message_id"], t["turn_index"], t["regenerated_from"]) for t in turns] == [
        (first, 0, None),
        (second, 1, None),
        (third, 1, second),
        (fourth, 2, None),
    ]
    assert {t["conversation_id"] for t in turns} == {conversation} and {t["source"] for t in turns} == {"api"}
    prompt = [m["content"] for m in turns[3]["messages"]]
    assert prompt[::2] == ["What is the capital of France?", "And of Italy?", "And of Spain?"]
    assert prompt[3] == turns[2]["response"]  # the regenerated reply is what the conversation goes on from
    assert [(r["message_id"], r["rating"], r["conversation_id"]) for r in running_app.records("ratings")] == [
        (first, "like", conversation)
    ]
    (flag,) = running_app.records("flags")
    assert (flag["message_id"], flag["reasons"], flag["comment"], flag["conversation_id"]) == (
        second,
        ["Inaccurate", "Off-topic"],
        "it did not answer",
        conversation,
    )
    widget.page.context.close()


def test_without_persistence_a_reload_starts_a_new_conversation(browser, running_app, site):
    folder, site_url = site
    embed_page(folder, "kept.html", app_url=running_app.url, script="./feedback-widget.js", persist=True)
    embed_page(folder, "fresh.html", app_url=running_app.url, script="./feedback-widget.js", persist=False)
    kept = Widget(open_widget(browser, f"{site_url}/kept.html"))
    kept.send("stored in this browser")  # a persisted conversation the fresh widget must not pick up
    fresh = Widget(open_widget(browser, f"{site_url}/fresh.html", kept.page.context))
    assert fresh.conversation_id != kept.conversation_id and fresh.message_ids() == []
    reply = fresh.send("Hello")
    before = fresh.conversation_id
    fresh.reload()
    assert fresh.conversation_id not in (before, kept.conversation_id) and fresh.message_ids() == []
    again = fresh.send("Hello again")

    turns = running_app.records("turns")[1:]
    assert [(t["message_id"], t["conversation_id"], t["turn_index"]) for t in turns] == [
        (reply, before, 0),
        (again, fresh.conversation_id, 0),
    ]
    kept.page.context.close()


def test_new_conversation_button_starts_a_new_id(browser, running_app, site):
    folder, site_url = site
    embed_page(folder, "chat.html", app_url=running_app.url, script="./feedback-widget.js", persist=True)
    widget = Widget(open_widget(browser, f"{site_url}/chat.html"))
    before = widget.conversation_id
    first = widget.send("one")
    widget.page.get_by_role("button", name="New conversation").click()
    assert widget.message_ids() == [] and widget.conversation_id != before
    second = widget.send("two")

    turns = running_app.records("turns")
    assert [(t["message_id"], t["conversation_id"], t["turn_index"]) for t in turns] == [
        (first, before, 0),
        (second, widget.conversation_id, 0),
    ]
    widget.page.reload()  # the new conversation is the one persisted
    widget.page.locator(".fw[data-conversation-id]").wait_for()
    assert widget.message_ids() == [second]
    widget.page.context.close()


def test_two_browser_contexts_keep_their_conversations_apart(browser, running_app, site):
    folder, site_url = site
    embed_page(folder, "chat.html", app_url=running_app.url, script="./feedback-widget.js", persist=True)
    a = Widget(open_widget(browser, f"{site_url}/chat.html"))
    b = Widget(open_widget(browser, f"{site_url}/chat.html"))
    assert a.conversation_id != b.conversation_id

    for n in (1, 2):  # both send before either reply is awaited, so the turns interleave
        for widget, name in ((a, "a"), (b, "b")):
            widget.input.fill(f"{name}{n}")
            widget.input.press("Enter")
        for widget in (a, b):
            widget.expect(widget.replies()).to_have_count(n)
            widget.expect(widget.replies().nth(n - 1)).to_have_attribute("data-state", "done")
            widget.expect(widget.root).to_have_attribute("data-busy", "false")
    a.like(a.message_ids()[0])
    b.flag(b.message_ids()[1], ["Harmful"])

    turns = by_conversation(running_app.records("turns"))
    assert set(turns) == {a.conversation_id, b.conversation_id}
    for widget, name in ((a, "a"), (b, "b")):
        mine = turns[widget.conversation_id]
        assert [t["message_id"] for t in mine] == widget.message_ids()
        assert [t["messages"][-1]["content"] for t in mine] == [f"{name}1", f"{name}2"]
        assert all(m["content"].startswith(name) for t in mine for m in t["messages"] if m["role"] == "user")
    (rating,) = running_app.records("ratings")
    assert (rating["conversation_id"], rating["message_id"]) == (a.conversation_id, a.message_ids()[0])
    (flag,) = running_app.records("flags")
    assert (flag["conversation_id"], flag["message_id"]) == (b.conversation_id, b.message_ids()[1])
    for widget in (a, b):
        widget.page.context.close()


@contextmanager
def app_on(port: int, data_dir: Path) -> Iterator[str]:
    """The app in this process on ``port`` (fixed, so it can come back where the page expects it)."""
    from feedback.app import build_app
    from schemas.settings import Settings

    demo = build_app(Settings(data_dir=data_dir))
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield demo.local_url.rstrip("/")
    finally:
        demo.close(verbose=False)


def test_widget_shows_an_error_while_the_app_is_down_and_recovers(browser, site, tmp_path):
    folder, site_url = site
    port, data_dir = free_port(), tmp_path / "data"
    app_url = f"http://127.0.0.1:{port}"
    embed_page(folder, "chat.html", app_url=app_url, script="./feedback-widget.js", persist=True)
    with app_on(port, data_dir):
        widget = Widget(open_widget(browser, f"{site_url}/chat.html"))
        before = widget.send("before the outage")

    widget.input.fill("sent during the outage")
    widget.input.press("Enter")
    widget.expect(widget.error).to_be_visible()
    widget.expect(widget.error).to_contain_text("Cannot reach the chat service")
    widget.expect(widget.root).to_have_attribute("data-busy", "false")
    widget.expect(widget.input).to_have_value("sent during the outage")  # nothing typed is lost
    assert widget.message_ids() == [before]
    widget.expect(widget.page.locator(".fw-user")).to_have_count(1)
    screenshot(widget.page, "widget-app-down")

    with app_on(port, data_dir):
        widget.page.get_by_role("button", name="Send").click()
        widget.expect(widget.replies()).to_have_count(2)
        widget.expect(widget.replies().nth(1)).to_have_attribute("data-state", "done")
        widget.expect(widget.error).to_be_hidden()
        widget.expect(widget.input).to_have_value("")
        after = widget.message_ids()[1]
        widget.like(after)

    turns = read_records(data_dir, "turns")
    assert [(t["message_id"], t["turn_index"], t["conversation_id"]) for t in turns] == [
        (before, 0, widget.conversation_id),
        (after, 1, widget.conversation_id),
    ]
    assert turns[1]["messages"][-1]["content"] == "sent during the outage"
    assert [r["message_id"] for r in read_records(data_dir, "ratings")] == [after]
    widget.page.context.close()


def test_widget_shows_the_apps_refusal_and_keeps_the_message(browser, running_app, site):
    folder, site_url = site
    embed_page(folder, "chat.html", app_url=running_app.url, script="./feedback-widget.js", persist=False)
    widget = Widget(open_widget(browser, f"{site_url}/chat.html"))
    too_long = "x" * 100_001  # the default FEEDBACK_MAX_MESSAGE_CHARS is 100000
    widget.input.fill(too_long)
    widget.input.press("Enter")
    widget.expect(widget.error).to_be_visible()
    widget.expect(widget.error).to_contain_text("the limit is 100,000")  # the app's own words
    widget.expect(widget.input).to_have_value(too_long)
    assert widget.message_ids() == [] and running_app.records("turns") == []
    widget.page.context.close()


@pytest.fixture(scope="module")
def app_process(tmp_path_factory) -> Iterator[AppProcess]:
    """``python app.py``: the app as deployed, serving the page, the API and the widget."""
    folder = tmp_path_factory.mktemp("app")
    app = AppProcess({"FEEDBACK_DATA_DIR": str(folder / "data")}, folder / "app.log")
    try:
        yield app.wait_ready()
    finally:
        app.kill()


def assert_widget_served(app_url: str) -> None:
    for name in ("", "feedback-widget.js", "feedback-widget.css"):
        response = httpx.get(f"{app_url}/widget/{name}", headers={"Origin": "https://shop.example"}, timeout=10)
        assert response.status_code == 200, (
            f"GET /widget/{name} -> {response.status_code}: the server must call feedback.web.widget.mount_widget"
        )
        assert response.headers["access-control-allow-origin"] == "*"  # any site may load the files


def test_app_serves_the_widget_demo_page(browser, app_process):
    assert_widget_served(app_process.url)
    assert httpx.get(f"{app_process.url}/widget", timeout=10).headers["location"] == "widget/"
    assert "data-feedback-chat" in httpx.get(f"{app_process.url}/widget/", timeout=10).text

    widget = Widget(open_widget(browser, f"{app_process.url}/widget/"))
    reply = widget.send("Hello from the demo page")
    widget.like(reply)
    screenshot(widget.page, "widget-demo")
    widget.page.context.close()
    data_dir = Path(app_process.log_path).parent / "data"
    assert [t["message_id"] for t in read_records(data_dir, "turns")] == [reply]


def test_readme_snippet_loads_the_widget_from_the_app(browser, app_process, site):
    """The embed snippet as the README gives it: the module comes from the app, the page is elsewhere."""
    assert_widget_served(app_process.url)
    folder, site_url = site
    script = f"{app_process.url}/widget/feedback-widget.js"
    embed_page(folder, "snippet.html", app_url=app_process.url, script=script, persist=False)
    widget = Widget(open_widget(browser, f"{site_url}/snippet.html"))
    reply = widget.send("Hello from another site")
    widget.expect(widget.root).to_have_css("border-top-style", "solid")  # the stylesheet came along
    widget.page.context.close()
    data_dir = Path(app_process.log_path).parent / "data"
    assert reply in [t["message_id"] for t in read_records(data_dir, "turns")]


def test_gradio_cors_policy_for_a_local_app(app_process):
    """What the README says about cross-origin calls: an app reached as 127.0.0.1/localhost answers
    pages from localhost origins only; reached by any other host name, every origin."""
    join = f"{app_process.url}/gradio_api/queue/join"
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}

    def allowed(origin: str, host: str | None = None) -> str | None:
        headers = {**preflight, "Origin": origin, **({"Host": host} if host else {})}
        return httpx.options(join, headers=headers, timeout=10).headers.get("access-control-allow-origin")

    assert allowed("http://localhost:8000") == "http://localhost:8000"
    assert allowed("https://shop.example") is None
    assert allowed("https://shop.example", host="chat.example.org") == "https://shop.example"


def test_mount_widget_serves_the_build_or_nothing(tmp_path):
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from feedback.web.widget import mount_widget

    server = Starlette()
    assert mount_widget(server)
    http = TestClient(server)
    assert http.get("/widget/feedback-widget.js").content == (WIDGET_DIST / "feedback-widget.js").read_bytes()
    assert (
        http.get("/widget/", headers={"Origin": "https://shop.example"}).headers["access-control-allow-origin"] == "*"
    )
    assert http.get("/widget/missing.js").status_code == 404
    assert not mount_widget(empty := Starlette(), directory=tmp_path) and empty.routes == []


def test_committed_bundle_is_what_the_build_makes(tmp_path):
    """``feedback/web/widget_dist`` is committed; it must be the build of ``widget/src`` (needs ``npm ci`` in
    widget/)."""
    node = shutil.which("node")
    if node is None or not (ROOT / "widget" / "node_modules" / "esbuild").exists():
        pytest.skip("node or widget/node_modules missing: run `npm ci` in widget/ to check the bundle")
    subprocess.run([node, "build.mjs", str(tmp_path)], cwd=ROOT / "widget", check=True, capture_output=True)
    for name in ("feedback-widget.js", "feedback-widget.css", "index.html"):
        assert (tmp_path / name).read_bytes() == (WIDGET_DIST / name).read_bytes(), f"make widget: {name} differs"
