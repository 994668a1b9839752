"""No token, password or key fragment in any log line, record, shard, card, response or error message
(issue 9, finding 4).

Unit tests of the redaction rules, the loguru sink and the stream wrapper, then the app started the
production way (``python app.py``) against a hostile model server that echoes the request headers,
``Authorization`` included, with marker values for ``HF_TOKEN`` (also the model server's key) and the
reviewer passwords.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from conftest import AppProcess, hub_env
from gradio_client import Client
from gradio_client.exceptions import AppError
from loguru import logger
from openai_server import OpenAICompatServer

from feedback.logs import RedactingStream, setup_logging
from feedback.redaction import forget_secrets, redact_secrets, register_secret

KEY = "Zq7HfMarkerTokXw3Lp9Vb2Nc8"
"""HF_TOKEN of the app process: the Hub token and the model server's bearer key."""
PASSWORDS = {"ann": "PwAnnMarker9Xk2Lq7", "bob": "PwBobMarker4Rt8Yh1"}
MARKERS = (KEY, *PASSWORDS.values())


def pieces_of(secret: str, size: int = 8) -> set[str]:
    """Every `size`-character piece of `secret`."""
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def leaks(text: str) -> list[str]:
    """The 8-character pieces of any marker found in `text` (empty when nothing leaked)."""
    return sorted(piece for marker in MARKERS for piece in pieces_of(marker) if piece in text)


@pytest.fixture
def fresh_secrets() -> Iterator[None]:
    """An empty secret registry for the test, emptied again afterwards."""
    forget_secrets()
    try:
        yield
    finally:
        forget_secrets()


@pytest.fixture
def app_log(monkeypatch, fresh_secrets) -> Iterator[Callable[[], io.StringIO]]:
    """Call it in the test (pytest re-installs its own capture between setup and call): it runs
    ``setup_logging`` as ``python app.py`` does, with stdout and stderr going to one buffer."""

    def start() -> io.StringIO:
        buffer = io.StringIO()
        monkeypatch.setattr(sys, "stdout", buffer)
        monkeypatch.setattr(sys, "stderr", buffer)
        setup_logging("DEBUG")
        return buffer

    try:
        yield start
    finally:
        logger.remove()
        logger.add(sys.__stderr__, level="DEBUG")


# --- the rules -------------------------------------------------------------------------------------


def test_a_registered_secret_and_every_8_character_piece_of_it_are_redacted(fresh_secrets):
    assert register_secret(KEY) is True

    assert redact_secrets(f"key={KEY}.") == "key=***."
    assert redact_secrets(f"echoed {KEY[:12]}… and …{KEY[-9:]}") == "echoed ***… and …***"
    assert redact_secrets(f"short piece {KEY[:7]}") == f"short piece {KEY[:7]}"


@pytest.mark.parametrize(
    ("secret", "text", "expected"),
    [
        ("pw12345", "login pw12345 failed", "login *** failed"),  # 4-7 characters: as a whole word
        ("pw12345", "xpw12345 and pw12345x stay", "xpw12345 and pw12345x stay"),
        ("test", "the test_x.py test", "the ***_x.py ***"),
        ("abc", "abc abc", "abc abc"),  # shorter than 4: never redacted (it would blank ordinary text)
    ],
)
def test_short_secrets_are_redacted_as_whole_words_only(fresh_secrets, secret, text, expected):
    register_secret(secret)

    assert redact_secrets(text) == expected


@pytest.mark.parametrize("value", [None, "", "abc"])
def test_registering_nothing_or_a_too_short_value_says_so(fresh_secrets, value):
    assert register_secret(value) is False
    assert redact_secrets("abc None") == "abc None"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("authorization: Bearer some-other-key-1", "authorization: Bearer ***"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic ***"),
        ("{'authorization': 'Bearer k1'}", "{'authorization': 'Bearer ***'}"),
        ('{\\"api_key\\": \\"k1k2\\"}', '{\\"api_key\\": \\"***\\"}'),
        ("x-api-key=abcd1234&b=1", "x-api-key=***&b=1"),
        ("HF_TOKEN=whatever password: hunter2", "HF_TOKEN=*** password: ***"),
        ("sent Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", "sent Bearer ***"),
        ("token hf_" + "a1B2" * 9 + " expired", "token *** expired"),
        ("key sk-proj-" + "x9" * 10 + ".", "key ***."),
        ("https://ann:s3cret@example.org/v1", "https://***@example.org/v1"),
    ],
)
def test_credentials_the_app_never_saw_are_redacted_by_their_shape(fresh_secrets, text, expected):
    assert redact_secrets(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "max_tokens=64 tokens",
        "the bearer instrument",
        "hf_hub_download failed",
        "password for alice was wrong",
        "basic settings",
        "POST http://127.0.0.1:8000/v1/chat/completions",
        "feedback.responders.openai:_generate:157 - request model=m messages=1",
    ],
)
def test_ordinary_text_is_left_alone(fresh_secrets, text):
    assert redact_secrets(text) == text


# --- the log sink and the std streams --------------------------------------------------------------


def test_the_log_sink_redacts_the_traceback_and_its_cause_chain(app_log):
    log = app_log()
    register_secret(KEY)
    try:
        try:
            raise ValueError(f"server said: received {KEY}; Authorization: Bearer other-key-0123456789")
        except ValueError as error:
            raise RuntimeError("HTTP 401 from the model server") from error
    except RuntimeError:
        logger.exception("chat failed")

    text = log.getvalue()
    assert "The above exception was the direct cause of the following exception" in text
    assert "ValueError: server said: received ***; Authorization: Bearer ***" in text
    assert "RuntimeError: HTTP 401 from the model server" in text
    assert not leaks(text) and "other-key" not in text


def test_the_log_sink_redacts_messages_and_bound_values(app_log):
    log = app_log()
    register_secret(PASSWORDS["ann"])

    logger.bind(conversation_id=PASSWORDS["ann"]).info("login ann:{}", PASSWORDS["ann"])

    line = log.getvalue()
    assert "| *** | login ann:***" in line and not leaks(line)


def test_stdlib_logging_routed_into_loguru_is_redacted(app_log):
    log = app_log()
    register_secret(KEY)

    logging.getLogger("huggingface_hub").warning("push failed for token %s", KEY)

    text = log.getvalue()
    assert "push failed for token ***" in text and not leaks(text)


def test_what_libraries_print_to_stderr_is_redacted(app_log):
    """Gradio prints a failed event's traceback itself (``traceback.print_exc()``), bypassing loguru."""
    log = app_log()
    register_secret(KEY)
    assert isinstance(sys.stderr, RedactingStream) and isinstance(sys.stdout, RedactingStream)
    try:
        raise RuntimeError(f"echo {KEY}")
    except RuntimeError:
        traceback.print_exc()
    print(KEY[:5], end="")
    print(KEY[5:])

    text = log.getvalue()
    assert "RuntimeError: echo ***" in text and "***\n" in text and not leaks(text)


def test_the_stream_holds_a_partial_line_until_its_end_or_a_flush(fresh_secrets):
    register_secret(KEY)
    target = io.StringIO()
    stream = RedactingStream(target)

    assert stream.write(f"a {KEY[:10]}") == 12
    assert target.getvalue() == ""
    stream.write(f"{KEY[10:]} b\nc {KEY}")
    assert target.getvalue() == "a *** b\n"
    stream.flush()
    assert target.getvalue() == "a *** b\nc ***"
    assert stream.getvalue() == target.getvalue()  # other attributes are the wrapped stream's


def test_setting_up_logging_twice_wraps_the_streams_once(app_log):
    app_log()
    wrapped = sys.stderr
    setup_logging("INFO")

    assert sys.stderr is wrapped and not isinstance(sys.stderr.stream, RedactingStream)


def test_create_app_registers_hf_token_and_reviewer_passwords(fresh_secrets, tmp_path, monkeypatch):
    from feedback.app import create_app
    from schemas.settings import Settings

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no locally saved token
    monkeypatch.setenv("HF_TOKEN", KEY)
    auth = ",".join(f"{user}:{password}" for user, password in PASSWORDS.items())
    assert redact_secrets(" ".join(MARKERS)) == " ".join(MARKERS)

    create_app(Settings(data_dir=tmp_path / "data", review_auth=auth))

    assert redact_secrets(" ".join(MARKERS)) == "*** *** ***"


def test_a_reviewer_password_too_short_to_redact_is_warned_about(fresh_secrets, tmp_path, monkeypatch):
    from feedback.app import create_app
    from schemas.settings import Settings

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    lines: list[str] = []
    sink = logger.add(lines.append, level="WARNING", format="{message}")
    try:
        create_app(Settings(data_dir=tmp_path / "data", review_auth="ann:Zq7,bob:long-enough-pw"))
    finally:
        logger.remove(sink)

    assert any("password is shorter than 4 characters" in line for line in lines)
    assert redact_secrets("long-enough-pw Zq7") == "*** Zq7"


# --- the app, served as in production, against a hostile model server ------------------------------


@dataclass
class Run:
    """What one session against ``python app.py`` left behind, for the tests below to search."""

    log: str = ""
    errors: dict[str, str] = field(default_factory=dict)  # what the client was told, by request
    responses: list[str] = field(default_factory=list)  # every other answer the client got
    files: dict[str, str] = field(default_factory=dict)  # the data dir, by relative path
    repo: dict[str, str] = field(default_factory=dict)  # the synced dataset repo, by path
    base_url: str = ""
    auth_headers: list[str | None] = field(default_factory=list)


def page_chat(url: str, message: str) -> str:
    """Send `message` through the chat page's own event (``POST /gradio_api/queue/join`` with its
    ``fn_index``, as the browser does) and return the whole event stream the page receives."""
    config = httpx.get(f"{url}/config", timeout=10).json()
    fn_index = next(dep["id"] for dep in config["dependencies"] if dep.get("api_name") == "chat_ui")
    session = "secretsession01"
    body = {"data": [{"text": message, "files": []}, [], None], "fn_index": fn_index, "session_hash": session}
    joined = httpx.post(f"{url}/gradio_api/queue/join", json=body, timeout=10)
    assert joined.status_code == 200, joined.text
    lines = [joined.text]
    with httpx.stream("GET", f"{url}/gradio_api/queue/data", params={"session_hash": session}, timeout=60) as stream:
        for line in stream.iter_lines():
            lines.append(line)
            if line.startswith("data:") and json.loads(line[5:]).get("msg") == "process_completed":
                break
    return "\n".join(lines)


def api_error(client: Client, *args: object, api_name: str) -> str:
    """The error text an API client gets for a request that must fail."""
    with pytest.raises(AppError) as caught:
        client.predict(*args, api_name=api_name)
    return str(caught.value)


def drive(app: AppProcess, model: OpenAICompatServer, run: Run) -> None:
    """Chat with the app while the model server echoes the headers in every way it can fail."""
    client = Client(app.url, verbose=False)
    model.echo_headers_next(401, body="json")
    run.errors["api 401 json"] = api_error(client, {"text": "hello", "files": []}, "", api_name="/chat")
    model.echo_headers_next(500, body="text")
    run.errors["api 500 text"] = api_error(client, "hello again", "", api_name="/chat")
    reply = client.predict("a good one", "", api_name="/chat")
    run.responses.append(json.dumps(reply))
    model.error_mid_next_stream(after=1, echo_headers=True)
    run.errors["api regenerate mid-stream"] = api_error(
        client, reply["conversation_id"], reply["message_id"], api_name="/regenerate"
    )
    model.echo_headers_next(401, body="json")
    run.errors["page 401 json"] = page_chat(app.url, "from the page")
    sign_in = {"username": (None, "ann"), "password": (None, PASSWORDS["ann"])}
    run.responses.append(httpx.post(f"{app.url}/review/login", files=sign_in, timeout=10).text)
    wrong = {"username": (None, "bob"), "password": (None, PASSWORDS["bob"][:-1] + "!")}
    run.responses.append(httpx.post(f"{app.url}/review/login", files=wrong, timeout=10).text)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    """One session against ``python app.py`` (openai responder on the hostile server, sync to a
    local Hub, reviewer logins), stopped with SIGTERM, and everything it left behind."""
    from support.hub import HubServer

    folder = tmp_path_factory.mktemp("secrets")
    repo_id = "test-user/feedback"
    result = Run()
    with OpenAICompatServer(model="tiny-chat") as model:
        hub = HubServer(folder / "hub").start()
        env = {
            **hub_env(hub, folder),
            "HF_TOKEN": KEY,
            "FEEDBACK_DATA_DIR": str(folder / "data"),
            "FEEDBACK_RESPONDER": "openai",
            "FEEDBACK_MODEL": "tiny-chat",
            "FEEDBACK_BASE_URL": model.base_url,
            "FEEDBACK_DATASET_REPO": repo_id,
            "FEEDBACK_REVIEW_AUTH": ",".join(f"{user}:{password}" for user, password in PASSWORDS.items()),
            "FEEDBACK_LOG_LEVEL": "DEBUG",
        }
        app = AppProcess(env, folder / "app.log")
        try:
            app.wait_ready()
            drive(app, model, result)
            assert app.terminate() == 0, app.log()
            result.repo = {path: data.decode(errors="replace") for path, data in hub.files(repo_id).items()}
        finally:
            app.kill()
            hub.stop()
        result.log = app.log()
        result.base_url, result.auth_headers = model.base_url, list(model.auth_headers)
    data_dir = folder / "data"
    result.files = {
        str(path.relative_to(data_dir)): path.read_bytes().decode(errors="replace")
        for path in sorted(data_dir.rglob("*"))
        if path.is_file()
    }
    return result


class TestAgainstAHostileModelServer:
    def test_the_model_server_got_the_key_and_echoed_it(self, run):
        """The attack happened: without redaction the key would have been everywhere below."""
        assert run.auth_headers and set(run.auth_headers) == {f"Bearer {KEY}"}
        assert "authorization: Bearer ***" in run.log and "received key ***" in run.log

    def test_no_marker_in_the_log(self, run):
        assert run.log and not leaks(run.log)

    def test_no_marker_in_any_answer_or_error_the_client_got(self, run):
        for text in [*run.errors.values(), *run.responses]:
            assert not leaks(text), text

    def test_the_user_is_told_what_failed_in_a_few_generic_words(self, run):
        expected = {
            "api 401 json": "The model could not answer: HTTP 401 from the model server",
            "api 500 text": "The model could not answer: HTTP 500 from the model server",
            "api regenerate mid-stream": "The model could not answer: the model server reported an error in the "
            "middle of the reply",
            "page 401 json": "The model could not answer: HTTP 401 from the model server",
        }
        for name, message in expected.items():
            assert message in run.errors[name], (name, run.errors[name])

    def test_no_error_names_the_model_server(self, run):
        host = run.base_url.removeprefix("http://").removesuffix("/v1")
        for name, text in run.errors.items():
            assert host not in text and "received headers" not in text.lower(), (name, text)

    def test_no_marker_in_the_data_dir(self, run):
        assert any(path.startswith("turns/") for path in run.files)  # the good chat was recorded
        for path, text in run.files.items():
            assert not leaks(text), path

    def test_no_marker_in_the_synced_repo_and_its_card(self, run):
        assert "README.md" in run.repo and any(path.startswith("turns/") for path in run.repo)
        for path, text in run.repo.items():
            assert not leaks(text), path
