"""Attacks on the app as it is served in production (``python app.py``: uvicorn + ``gr.mount_gradio_app``).

One app process serves the whole module, with a reviewer page, a small upload limit, its own
Gradio upload folder (``GRADIO_TEMP_DIR``) and marker secrets: a server file outside the data dir,
``HF_TOKEN`` and reviewer passwords (visible in ``/proc/self/environ``). Every page event
(``/gradio_api/queue/join`` with each ``fn_index`` of the chat page and of the review page,
anonymous and as a signed-in non-reviewer), every API endpoint and Gradio's file routes get
hostile input. Each test asserts a refusal or a correct record; the module's last test checks
that no server file reached the data dir or Gradio's cache, that every shard parses, and that
the app still chats.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import AppProcess, read_records
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.records import RECORD_TYPES

TOKEN_MARKER = "hf_attackmarkerTOKEN0123456789"
PASSWORD_MARKER = "pw-marker-Reviewer-98765"
FILE_MARKER = "SERVER-SECRET-FILE-CONTENT-4f1c"
MAX_UPLOAD = 64 * 1024
MAX_REQUEST = 256 * 1024
PASSWD_LINE = "root:x:0:0"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("attacks")
    secret = root / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text(FILE_MARKER)
    upload_dir = root / "gradio-uploads"
    (upload_dir / "planted").mkdir(parents=True)
    os.symlink(secret, upload_dir / "planted" / "link.txt")  # a symlink inside the upload folder
    os.symlink(secret.parent, upload_dir / "dirlink")  # a symlinked directory inside it
    env = {
        "FEEDBACK_DATA_DIR": str(root / "data"),
        "GRADIO_TEMP_DIR": str(upload_dir),
        "HF_TOKEN": TOKEN_MARKER,
        "FEEDBACK_REVIEW_AUTH": f"ann:{PASSWORD_MARKER},eve:eve-password-123",
        "FEEDBACK_REVIEWERS": "ann",
        "FEEDBACK_MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
        "FEEDBACK_MAX_REQUEST_BYTES": str(MAX_REQUEST),
        "FEEDBACK_MAX_MESSAGE_CHARS": "2000",
        "HF_HUB_OFFLINE": "1",
    }
    app = AppProcess(env, root / "app.log").wait_ready()
    try:
        yield {"app": app, "url": app.url, "root": root, "data": root / "data", "uploads": upload_dir, "secret": secret}
    finally:
        app.terminate(60)


# -- driving Gradio's page events over plain HTTP ---------------------------------------------


def page_event(
    client: httpx.Client, fn_index: int, data: list[Any], event_data: Any = None, prefix: str = ""
) -> tuple[int, str]:
    """Send one page event through Gradio's queue and read its stream to the end.

    Returns ``(status of the join, every text the server sent back)``.
    """
    session = uuid.uuid4().hex[:12]
    body = {"data": data, "fn_index": fn_index, "session_hash": session, "event_data": event_data, "trigger_id": None}
    joined = client.post(f"{prefix}/gradio_api/queue/join", json=body)
    texts = [joined.text]
    if joined.status_code == 200:
        with client.stream("GET", f"{prefix}/gradio_api/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                texts.append(line)
                message = json.loads(line[5:])
                if message.get("msg") in ("process_completed", "close_stream", "unexpected_error"):
                    break
    return joined.status_code, "\n".join(texts)


PARAMETERS = {"chat": 3, "regenerate": 3}
"""How many parameters the endpoints with optional trailing ones take (Gradio's ``/run`` wants a
value for each; ``null`` for ``consent`` means "not given")."""


def api_call(client: httpx.Client, name: str, data: list[Any]) -> tuple[int, Any]:
    """``POST /gradio_api/run/<name>``: the plain API, as any HTTP client can call it."""
    data = [*data, *[None] * (PARAMETERS.get(name, len(data)) - len(data))]
    response = client.post(f"/gradio_api/run/{name}", json={"data": data})
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def refused(status: int, body: Any) -> bool:
    """True for a clear refusal: the request guard's 400/413, or the app's own ``gr.Error``
    (Gradio answers those with status 500 and ``{"error": "<message>"}``), never a crash."""
    if status in (400, 413):
        return True
    error = body.get("error") if isinstance(body, dict) else None
    return status == 500 and isinstance(error, str) and bool(error) and "failed on the server" not in error


def error_text(body: Any) -> str:
    """The refusal message in a guard (``detail``) or app (``error``) answer."""
    return str(body.get("error") or body.get("detail")) if isinstance(body, dict) else str(body)


def hostile_files(site: dict[str, Any]) -> list[dict[str, Any]]:
    """``FileData`` values naming server files a client never uploaded."""
    uploads: Path = site["uploads"]
    paths = [
        "/etc/passwd",
        "/proc/self/environ",
        str(site["secret"]),
        str(uploads / "planted" / "link.txt"),
        str(uploads / "dirlink" / "secret.txt"),
        str(uploads / ".." / "outside" / "secret.txt"),
        str(site["data"] / "turns"),
        "https://example.com/x.png",
        "file:///etc/passwd",
    ]
    return [{"path": p, "meta": {"_type": "gradio.FileData"}, "orig_name": "x.txt"} for p in paths]


def value_for(component: str, file: dict[str, Any]) -> Any:
    """A hostile value for an input of type ``component`` carrying ``file``."""
    if component == "chatbot":
        return [
            {"role": "user", "content": [{"type": "file", "file": file}]},
            {"role": "assistant", "content": [{"type": "text", "text": "hi"}]},
        ]
    if component == "multimodaltextbox":
        return {"text": "look", "files": [file]}
    return file


def assert_clean(text: str, site: dict[str, Any]) -> None:
    """No server file content, secret, traceback or server path in what a client got back."""
    for marker in (FILE_MARKER, PASSWD_LINE, TOKEN_MARKER, PASSWORD_MARKER, "Traceback", str(site["root"])):
        assert marker not in text, f"{marker!r} leaked: {text[:500]}"


def dependencies(client: httpx.Client, prefix: str = "") -> list[tuple[int, list[str]]]:
    """``(fn_index, input component types)`` of every event of the page at ``prefix``."""
    config = client.get(f"{prefix}/config").json()
    types = {c["id"]: c["type"] for c in config["components"]}
    return [(d["id"], [types.get(i, "?") for i in d["inputs"]]) for d in config["dependencies"]]


# -- 1. server files through page events, the API and Gradio's file routes ----------------------


def test_every_chat_page_event_refuses_server_files(site):
    with httpx.Client(base_url=site["url"], timeout=30) as client:
        events = dependencies(client)
        assert len(events) > 30  # the whole page: submit, retry, undo, like, clear, edit, API, ...
        for file in hostile_files(site):
            for fn_index, inputs in events:
                data = [value_for(kind, file) for kind in inputs]
                event_data = {"index": 1, "value": "hi", "liked": True}
                status, text = page_event(client, fn_index, data, event_data)
                assert_clean(text, site)
                if inputs:  # any value: the guard reads the whole body
                    assert status == 400, (fn_index, file["path"], text[:300])
                    assert "not uploaded to this app" in text or "URL" in text
        assert client.get("/gradio_api/info").status_code == 200


def test_review_page_events_refuse_anonymous_and_non_reviewers(site):
    file = hostile_files(site)[0]
    with httpx.Client(base_url=site["url"], timeout=30) as anonymous:
        assert anonymous.get("/review/config").status_code in (401, 403)
        for fn_index in range(25):
            status, text = page_event(anonymous, fn_index, [file, file, file, file, file], prefix="/review")
            assert status in (400, 401, 403, 404, 422), (fn_index, status, text[:200])
            assert_clean(text, site)
    with httpx.Client(base_url=site["url"], timeout=30) as eve:
        login = eve.post("/review/login", data={"username": "eve", "password": "eve-password-123"})
        assert login.status_code == 200
        events = dependencies(eve, "/review")
        assert events
        for fn_index, inputs in events:
            data = [value_for(kind, file) for kind in inputs]
            status, text = page_event(eve, fn_index, data, prefix="/review")
            assert_clean(text, site)
        for fn_index, inputs in events:  # plain values: the desk refuses a non-reviewer
            status, text = page_event(eve, fn_index, ["" for _ in inputs], prefix="/review")
            assert_clean(text, site)
    assert not read_records(site["data"], "reviews")
    assert not read_records(site["data"], "deletions")  # nor "Delete conversation"


def test_api_refuses_server_files_and_urls(site):
    with httpx.Client(base_url=site["url"], timeout=30) as client:
        for file in hostile_files(site):
            for message in ({"text": "see", "files": [file]}, {"text": "see", "files": [file["path"]]}):
                status, body = api_call(client, "chat", [message, ""])
                assert refused(status, body), (file["path"], body)
                assert "uploaded to this app" in error_text(body) or "URL" in error_text(body)
                assert_clean(json.dumps(body), site)


def test_gradio_file_routes_serve_no_server_file(site):
    with httpx.Client(base_url=site["url"], timeout=30) as client:
        shard = next(iter(site["data"].glob("*/*.jsonl")), site["data"] / "turns" / "x.jsonl")
        for path in (
            "/etc/passwd",
            str(site["secret"]),
            str(shard),
            str(site["uploads"] / "planted" / "link.txt"),
            "https://example.com/",
            "http://127.0.0.1:1/",
        ):
            for route in (f"/gradio_api/file={path}", f"/review/gradio_api/file={path}", f"/gradio_api/proxy={path}"):
                response = client.get(route)
                assert response.status_code in (400, 401, 403, 404), (route, response.status_code)
                assert_clean(response.text.replace(path, "<the path asked for>"), site)  # Gradio echoes it


def test_a_real_upload_is_accepted_and_stored_inside_the_data_dir(site, tmp_path):
    from gradio_client import Client, handle_file

    picture = tmp_path / "note.txt"
    picture.write_text("an honest upload")
    client = Client(site["url"], verbose=False)
    reply = client.predict({"text": "what is this?", "files": [handle_file(str(picture))]}, "", api_name="/chat")
    turn = next(t for t in read_records(site["data"], "turns") if t["message_id"] == reply["message_id"])
    stored = site["data"] / turn["messages"][-1]["files"][0]
    assert stored.read_text() == "an honest upload"
    assert stored.resolve().is_relative_to(site["data"].resolve()) and not stored.is_symlink()


# -- 2. sizes: bodies, messages, uploads -----------------------------------------------------------


def test_oversized_bodies_are_refused_before_they_are_read(site):
    big = b"x" * (MAX_REQUEST + 1)
    with httpx.Client(base_url=site["url"], timeout=30) as client:
        for path in ("/gradio_api/queue/join", "/gradio_api/run/chat", "/gradio_api/call/chat", "/review/login"):
            response = client.post(path, content=big, headers={"content-type": "application/json"})
            assert response.status_code == 413, path
        chunked = client.post(
            "/gradio_api/run/chat", content=iter([big[:100_000]] * 4), headers={"content-type": "application/json"}
        )  # no Content-Length
        assert chunked.status_code == 413
        upload = client.post("/gradio_api/upload", files={"files": ("big.bin", b"0" * (MAX_UPLOAD + 10))})
        assert upload.status_code == 413
        status, body = api_call(client, "chat", [{"text": "y" * 2001, "files": []}, ""])
        assert refused(status, body) and "limit is 2,000" in error_text(body)
        assert client.get("/gradio_api/info").status_code == 200


def test_an_overlong_page_message_is_refused_before_the_session_keeps_it(site):
    with httpx.Client(base_url=site["url"], timeout=30) as client:
        submit = next(i for i, inputs in dependencies(client) if inputs == ["multimodaltextbox"])
        status, text = page_event(client, submit, [{"text": "z" * 2001, "files": []}])
        assert status == 422  # Gradio's validator answer, before the event is queued
        assert "limit is 2,000" in text and '"is_valid":false' in text


# -- 6. wrong JSON types and hostile ids: refused, never coerced -------------------------------


@pytest.fixture(scope="module")
def reply(site) -> dict[str, Any]:
    with httpx.Client(base_url=site["url"], timeout=30) as client:
        status, body = api_call(client, "chat", [{"text": "hello", "files": []}, ""])
        assert status == 200
        return body["data"][0]


WRONG_TYPES = [0, 1, False, True, [], {}, ["like"], {"a": 1}, 1.5, None]


@pytest.mark.parametrize("value", WRONG_TYPES, ids=repr)
def test_rating_of_a_wrong_type_is_refused_not_stored_as_an_undo(site, reply, value):
    before = len(read_records(site["data"], "ratings"))
    with httpx.Client(base_url=site["url"], timeout=30) as client:
        status, body = api_call(client, "rate", [reply["conversation_id"], reply["message_id"], value, "", ""])
    if value is None:  # JSON null: the parameter's "no value", an undo like ""
        assert status == 200 and body["data"][0]["rating"] is None
    else:
        assert refused(status, body), body
        assert "rating must be" in error_text(body)
    assert len(read_records(site["data"], "ratings")) == before + (status == 200)


@pytest.mark.parametrize("text", [0, False, [], {}, None, 12.5, ["hi"]], ids=repr)
def test_message_text_of_a_wrong_type_is_refused(site, text):
    before = len(read_records(site["data"], "turns"))
    with httpx.Client(base_url=site["url"], timeout=30) as client:
        status, body = api_call(client, "chat", [{"text": text, "files": []}, ""])
        bare_status, _ = api_call(client, "chat", [text, ""])
    assert refused(status, body) and bare_status in (400, 500), body
    assert len(read_records(site["data"], "turns")) == before


@pytest.mark.parametrize(
    "conversation_id", ["abcdefgh\n", "abcdefgh\r", " abcdefgh", "../../etc/x", "a" * 65, "short", 12345678, ["a" * 8]]
)
def test_hostile_conversation_ids_get_a_clear_refusal(site, conversation_id):
    with httpx.Client(base_url=site["url"], timeout=30) as client:
        status, body = api_call(client, "chat", [{"text": "hi", "files": []}, conversation_id])
    assert refused(status, body), body
    assert "conversation_id" in error_text(body)


def test_reasons_nested_or_many_are_refused_with_a_short_message(site, reply):
    ids = [reply["conversation_id"], reply["message_id"]]
    with httpx.Client(base_url=site["url"], timeout=30) as client:
        for reasons in (
            [["Harmful"]],
            [{"r": 1}],
            [1, 2],
            "x" * 5000,
            [f"r{i}" for i in range(20_000)],
            {"Harmful": 1},
        ):
            status, body = api_call(client, "flag", [*ids, reasons, ""])
            assert refused(status, body), (reasons, body)
            assert len(error_text(body)) <= 300
    assert not [f for f in read_records(site["data"], "flags") if f["message_id"] == reply["message_id"]]


# -- property-based fuzzing of the API --------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def fuzz_settings():  # noqa: ANN201 - hypothesis settings
    return settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def check_answer(site: dict[str, Any], status: int, body: Any) -> None:
    """A fuzzed call gets a record back or a short, clean refusal; never a server error."""
    text = json.dumps(body)
    assert_clean(text, site)
    if status == 200:
        return
    assert refused(status, body), (status, text[:300])
    assert len(error_text(body)) <= 300


@fuzz_settings()
@given(message=json_values, conversation_id=json_values)
def test_fuzz_chat(site, message, conversation_id):
    with httpx.Client(base_url=site["url"], timeout=30) as client:
        status, body = api_call(client, "chat", [message, conversation_id])
    check_answer(site, status, body)
    if status == 200:
        assert isinstance(message, str | dict) and body["data"][0]["message_id"]  # /run returns the first item


@fuzz_settings()
@given(conversation_id=json_values, message_id=json_values)
def test_fuzz_regenerate(site, reply, conversation_id, message_id):
    with httpx.Client(base_url=site["url"], timeout=30) as client:
        status, body = api_call(client, "regenerate", [conversation_id, message_id])
    check_answer(site, status, body)
    assert status != 200, body  # random ids never name a reply


@fuzz_settings()
@given(use_ids=st.booleans(), rating=json_values, option=json_values, comment=json_values)
def test_fuzz_rate(site, reply, use_ids, rating, option, comment):
    ids = [reply["conversation_id"], reply["message_id"]] if use_ids else [rating, option]
    with httpx.Client(base_url=site["url"], timeout=30) as client:
        status, body = api_call(client, "rate", [*ids, rating, option, comment])
    check_answer(site, status, body)
    if status == 200:
        record = body["data"][0]
        assert rating in ("like", "dislike", "", None) and record["rating"] == (rating or None)
        assert isinstance(comment, str | None) and isinstance(option, str | None)


@fuzz_settings()
@given(use_ids=st.booleans(), reasons=json_values, comment=json_values)
def test_fuzz_flag(site, reply, use_ids, reasons, comment):
    ids = [reply["conversation_id"], reply["message_id"]] if use_ids else [reasons, comment]
    with httpx.Client(base_url=site["url"], timeout=30) as client:
        status, body = api_call(client, "flag", [*ids, reasons, comment])
    check_answer(site, status, body)
    if status == 200:
        assert set(body["data"][0]["reasons"]) <= {"Inaccurate", "Harmful", "Off-topic", "Other"}


@fuzz_settings()
@given(conversation_id=json_values)
def test_fuzz_forget(site, reply, conversation_id):
    with httpx.Client(base_url=site["url"], timeout=30) as client:
        status, body = api_call(client, "forget", [conversation_id])
    check_answer(site, status, body)
    assert status != 200, body  # random values never name a recorded conversation


def test_no_chat_page_event_deletes_a_conversation_without_its_id(site, reply):
    """Every event of the chat page, "Forget this conversation" among them, with plain values (a
    chat whose replies name ids of no reply, or the conversation's id where a reply's belongs):
    none deletes the conversation of ``reply``, whose ids they do not carry."""
    chats = [
        [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hi", "metadata": {"id": uuid.uuid4().hex}},
        ],
        [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hi", "metadata": {"id": reply["conversation_id"]}},
        ],
        [],
    ]
    with httpx.Client(base_url=site["url"], timeout=30) as client:
        config = client.get("/config").json()
        assert any(d.get("api_name") == "forget_ui" for d in config["dependencies"])  # the page's forget event
        events = dependencies(client)
        for chat in chats:
            for fn_index, inputs in events:
                data = [
                    chat if kind == "chatbot" else "" if kind in ("textbox", "markdown") else None for kind in inputs
                ]
                status, text = page_event(client, fn_index, data, {"index": 1, "value": "hi", "liked": True})
                assert_clean(text, site)
    assert not read_records(site["data"], "deletions")
    assert reply["message_id"] in [t["message_id"] for t in read_records(site["data"], "turns")]


# -- after everything: nothing leaked, nothing corrupted, still serving ------------------------


def test_zz_after_the_attacks_nothing_leaked_every_shard_parses_and_the_app_chats(site):
    from gradio_client import Client

    leaked = []
    for folder in (site["data"], site["uploads"]):
        for path in folder.rglob("*"):
            if path.is_symlink() or not path.is_file():
                continue
            content = path.read_bytes()
            if FILE_MARKER.encode() in content or PASSWD_LINE.encode() in content or TOKEN_MARKER.encode() in content:
                leaked.append(path)
    assert not leaked
    assert not list(site["data"].rglob(".tmp-*"))
    for kind, model in RECORD_TYPES.items():
        for shard in (site["data"] / kind).glob("*.jsonl"):
            for line in shard.read_text().splitlines():
                model.model_validate_json(line)
    log = site["app"].log()
    assert TOKEN_MARKER not in log and PASSWORD_MARKER not in log
    reply = Client(site["url"], verbose=False).predict({"text": "still there?", "files": []}, "", api_name="/chat")
    assert reply["response"].startswith("You said: still there?")
