"""Deleting a conversation over the API: the user's ``/forget`` and the reviewers' ``/delete_conversation``,
against the app as deployed (``python app.py``) driven by ``gradio_client`` and plain HTTP.

A deleted conversation's deletion record is written at once; its turns, ratings, flags, reviews
and uploaded files leave the data dir's shards when the app's eraser has run (the tests poll the
files); continuing it is refused. A malformed or unknown id is refused with a clear message and
nothing is written. The page's button, the reviewer's action and the widget are in
``test_browser_forget.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import wait_until
from conftest import AppProcess, read_records, records_of, shard_bytes
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

USER_KINDS = ("turns", "ratings", "flags", "reviews")
REVIEWERS = {"ann": "pw-ann-forget-1234", "eve": "pw-eve-forget-1234"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    folder = tmp_path_factory.mktemp("forget")
    env = {
        "FEEDBACK_DATA_DIR": str(folder / "data"),
        "FEEDBACK_REVIEW_AUTH": ",".join(f"{user}:{password}" for user, password in REVIEWERS.items()),
        "FEEDBACK_REVIEWERS": "ann",
        "HF_HUB_OFFLINE": "1",
    }
    with AppProcess(env, folder / "app.log") as process:
        yield process


@pytest.fixture
def client(app: AppProcess) -> Iterator[Client]:
    client = Client(app.url, verbose=False)
    try:
        yield client
    finally:
        client.close()


def deletions(data: Path) -> list[dict[str, Any]]:
    return read_records(data, "deletions")


def erased(data: Path, conversation_id: str) -> bool:
    return not records_of(data, conversation_id)


def converse(client: Client, text: str, upload: Path | None = None) -> tuple[str, list[str]]:
    """A conversation of two turns (the first with ``upload``), its first reply liked and its last
    flagged; returns ``(conversation_id, message ids)``."""
    files = [handle_file(str(upload))] if upload else []
    first = client.predict({"text": f"{text} one", "files": files}, "", api_name="/chat")
    cid = first["conversation_id"]
    second = client.predict({"text": f"{text} two", "files": []}, cid, api_name="/chat")
    client.predict(cid, first["message_id"], "like", "", f"{text} comment", api_name="/rate")
    client.predict(cid, second["message_id"], ["Harmful"], f"{text} flag", api_name="/flag")
    return cid, [first["message_id"], second["message_id"]]


def run(app: AppProcess, name: str, data: list[Any], prefix: str = "", **kwargs: Any) -> tuple[int, Any]:
    """``POST <prefix>/gradio_api/run/<name>`` as any HTTP client can (every parameter given)."""
    response = httpx.post(f"{app.url}{prefix}/gradio_api/run/{name}", json={"data": data}, timeout=30, **kwargs)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def test_forget_deletes_the_conversation_and_keeps_every_other_record(app, client, tmp_path):
    data = app.data
    upload = tmp_path / "forget-me.txt"
    upload.write_text("uploaded file 61d0, only in the forgotten conversation")
    kept_upload = tmp_path / "keep-me.txt"
    kept_upload.write_text("uploaded file 9e7b, in a kept conversation")
    forgotten, forgotten_ids = converse(client, "forget 61d0", upload)
    kept, kept_ids = converse(client, "keep 9e7b", kept_upload)
    (stored,) = {f for t in records_of(data, forgotten, ("turns",)) for m in t["messages"] for f in m["files"]}
    assert (data / stored).read_text().startswith("uploaded file 61d0")
    kept_before = records_of(data, kept)
    assert len(kept_before) == 4 and len(records_of(data, forgotten)) == 4

    assert client.predict(forgotten, api_name="/forget") == {"conversation_id": forgotten, "deleted": True}

    (deletion,) = deletions(data)  # written at once, before the erasure
    assert deletion["conversation_id"] == forgotten
    assert (deletion["requested_by"], deletion["reviewer"]) == ("user", None)
    wait_until(lambda: erased(data, forgotten), timeout=30, what="the forgotten conversation's records to go")
    wait_until(lambda: not (data / stored).exists(), timeout=30, what="its uploaded file to go")
    assert b"61d0" not in shard_bytes(data)
    assert sorted(map(json.dumps, records_of(data, kept))) == sorted(map(json.dumps, kept_before))  # once each
    kept_files = {f for t in records_of(data, kept, ("turns",)) for m in t["messages"] for f in m["files"]}
    assert all((data / f).read_text().startswith("uploaded file 9e7b") for f in kept_files) and kept_files

    with pytest.raises(AppError) as refused:  # continuing it is refused, and writes nothing
        client.predict({"text": "forget 61d0 three", "files": []}, forgotten, api_name="/chat")
    assert "delete" in str(refused.value).lower()
    for call in (
        lambda: client.predict(forgotten, forgotten_ids[-1], "like", "", "", api_name="/rate"),
        lambda: client.predict(forgotten, forgotten_ids[-1], ["Harmful"], "", api_name="/flag"),
        lambda: client.predict(forgotten, forgotten_ids[-1], api_name="/regenerate"),
        lambda: client.predict(forgotten, api_name="/forget"),  # already deleted
    ):
        with pytest.raises(AppError):
            call()
    assert erased(data, forgotten) and b"61d0" not in shard_bytes(data)
    assert len(deletions(data)) == 1
    again = client.predict({"text": "keep 9e7b three", "files": []}, kept, api_name="/chat")
    assert again["turn_index"] == 2  # the other conversation goes on


@pytest.mark.parametrize(
    ("conversation_id", "words"),
    [
        ("", "conversation_id is required"),
        ("short", "malformed"),
        ("../../etc/passwd", "malformed"),
        ("a" * 65, "malformed"),
        ("abcdefgh\n", "malformed"),
        ("never-seen-0123456789", "never-seen-0123456789"),  # well formed, but nothing recorded of it
    ],
)
def test_a_malformed_or_unknown_id_is_refused_with_a_clear_message_and_nothing_written(
    app, client, conversation_id, words
):
    before = shard_bytes(app.data)
    with pytest.raises(AppError) as refused:
        client.predict(conversation_id, api_name="/forget")
    message = str(refused.value)
    assert words in message and len(message) <= 300 and "Traceback" not in message
    assert shard_bytes(app.data) == before


@pytest.mark.parametrize("value", [None, 0, 12345678, True, [], ["abcdefgh"], {"id": "abcdefgh"}], ids=repr)
def test_a_raw_call_with_a_wrong_type_is_refused(app, value):
    before = shard_bytes(app.data)
    status, body = run(app, "forget", [value])
    assert status == 500 and isinstance(body, dict), body  # Gradio's answer to the app's refusal
    assert "conversation_id" in body["error"] and "failed on the server" not in body["error"]
    assert shard_bytes(app.data) == before


def test_a_declined_conversation_has_nothing_to_forget(app, client):
    declined = client.predict("declined 3c8a", "", consent=False, api_name="/chat")
    before = shard_bytes(app.data)
    with pytest.raises(AppError) as refused:
        client.predict(declined["conversation_id"], api_name="/forget")
    assert declined["conversation_id"] in str(refused.value)
    assert shard_bytes(app.data) == before and b"3c8a" not in before


def test_forget_is_listed_in_the_api(app, client):
    info = client.view_api(print_info=False, return_format="dict")
    (parameter,) = info["named_endpoints"]["/forget"]["parameters"]
    assert parameter["parameter_name"] == "conversation_id"


def test_a_reviewer_deletes_a_conversation_and_nobody_else_can(app, client):
    data = app.data
    cid, _ = converse(client, "reviewed 7f21")
    before = len(deletions(data))
    anonymous, _ = run(app, "delete_conversation", [cid], prefix="/review")
    assert anonymous in (401, 403)
    eve = Client(f"{app.url}/review/", auth=("eve", REVIEWERS["eve"]), verbose=False)
    with pytest.raises(AppError, match="not a reviewer"):
        eve.predict(cid, api_name="/delete_conversation")
    assert len(deletions(data)) == before and len(records_of(data, cid)) == 4

    ann = Client(f"{app.url}/review/", auth=("ann", REVIEWERS["ann"]), verbose=False)
    for bad in ("", "short", "../etc/passwd"):
        with pytest.raises(AppError, match="malformed"):
            ann.predict(bad, api_name="/delete_conversation")
    with pytest.raises(AppError):
        ann.predict("never-seen-reviewed-0001", api_name="/delete_conversation")
    assert len(deletions(data)) == before
    result = ann.predict(cid, api_name="/delete_conversation")
    assert result == {"conversation_id": cid, "deleted": True, "reviewer": "ann"}
    deletion = deletions(data)[-1]
    assert (deletion["conversation_id"], deletion["requested_by"], deletion["reviewer"]) == (cid, "reviewer", "ann")
    wait_until(lambda: erased(data, cid), timeout=30, what="the reviewer-deleted conversation's records to go")
    assert b"7f21" not in shard_bytes(data)
