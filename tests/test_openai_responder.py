"""OpenAIResponder against the real OpenAI-compatible test server (tests/openai_server.py).

No mocks: every test streams through huggingface_hub.InferenceClient over HTTP
to a uvicorn server on 127.0.0.1.
"""

from __future__ import annotations

import json
import math
import urllib.request
from collections.abc import Iterator

import pytest
from huggingface_hub import InferenceClient
from loguru import logger
from openai_server import OpenAICompatServer

from feedback.responders.errors import ResponderError, redact
from feedback.responders.openai import OpenAIResponder

TOKEN = "sk-test-SECRET-0123456789abcdef"
MODEL = "test-model"
CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "You said: hi"},
    {"role": "user", "content": "how are you today"},
]


@pytest.fixture
def server() -> Iterator[OpenAICompatServer]:
    """A fresh test server per test (faults and recorded requests never leak)."""
    with OpenAICompatServer(model=MODEL) as running:
        yield running


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Every loguru record (DEBUG and up) emitted during the test, formatted."""
    lines: list[str] = []
    sink_id = logger.add(lines.append, level="DEBUG", format="{level} {message}")
    yield lines
    logger.remove(sink_id)


def responder(server: OpenAICompatServer, **overrides) -> OpenAIResponder:
    """An OpenAIResponder on `server` with a token, temperature and max_tokens."""
    kwargs = {"model": MODEL, "base_url": server.base_url, "token": TOKEN, "temperature": 0.7, "max_tokens": 64}
    return OpenAIResponder(**{**kwargs, **overrides})


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# --- streaming ---------------------------------------------------------------


def test_stream_yields_several_deltas_forming_the_reply(server):
    deltas = list(responder(server).stream(CONVERSATION))

    assert len(deltas) >= 3
    assert all(isinstance(delta, str) and delta for delta in deltas)
    assert "".join(deltas) == "You said: how are you today"


def test_server_receives_messages_model_params_and_bearer_token(server):
    list(responder(server).stream(CONVERSATION))

    body = server.requests[-1]
    assert body["model"] == MODEL
    assert body["messages"] == CONVERSATION
    assert body["temperature"] == 0.7
    assert body["max_tokens"] == 64
    assert body["stream"] is True
    assert "top_p" not in body
    assert server.auth_headers[-1] == f"Bearer {TOKEN}"


def test_recorded_attributes_hold_only_the_params_set(server):
    bot = responder(server, temperature=None, top_p=0.9)

    assert bot.name == "openai"
    assert bot.model == MODEL
    assert bot.params == {"max_tokens": 64, "top_p": 0.9}
    list(bot.stream(user("x")))
    assert server.requests[-1]["top_p"] == 0.9
    assert "temperature" not in server.requests[-1]


def test_max_tokens_caps_the_reply(server):
    assert "".join(responder(server, max_tokens=2).stream(user("a long question"))) == "You said:"


def test_stream_does_not_modify_the_callers_messages(server):
    messages = user("hello")
    list(responder(server, system_prompt="Be kind.").stream(messages))

    assert messages == user("hello")


def test_system_prompt_is_prepended(server):
    list(responder(server, system_prompt="Be kind.").stream(user("hello")))

    assert server.requests[-1]["messages"] == [{"role": "system", "content": "Be kind."}, *user("hello")]


def test_system_prompt_does_not_replace_a_leading_system_message(server):
    list(responder(server, system_prompt="Be kind.").stream(CONVERSATION))

    assert server.requests[-1]["messages"] == CONVERSATION


def test_regenerate_is_accepted_and_resends_the_conversation(server):
    bot = responder(server)
    first = "".join(bot.stream(CONVERSATION))
    again = "".join(bot.stream(CONVERSATION, regenerate=True))

    assert first == again == "You said: how are you today"  # the test server is deterministic
    assert server.requests[-1] == server.requests[-2]


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/", "/v1/chat/completions"])
def test_base_url_with_or_without_v1_reaches_chat_completions(server, suffix):
    root = server.base_url.removesuffix("/v1")

    assert "".join(responder(server, base_url=root + suffix).stream(user("yo"))) == "You said: yo"


def test_without_token_no_authorization_is_sent_even_if_hf_token_is_set(server, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_local_secret_token")

    list(responder(server, token=None).stream(user("x")))

    assert server.auth_headers[-1] is None


def test_injected_client_is_used(server):
    client = InferenceClient(base_url=server.base_url, api_key="injected-key")
    bot = OpenAIResponder(model=MODEL, client=client)

    assert "".join(bot.stream(user("x"))) == "You said: x"
    assert server.auth_headers[-1] == "Bearer injected-key"


def test_closing_the_stream_early_leaves_the_responder_usable(server):
    bot = responder(server)
    stream = bot.stream(user("one two three four"))
    assert next(stream) == "You"
    stream.close()

    assert "".join(bot.stream(user("again"))) == "You said: again"


# --- errors ------------------------------------------------------------------


def pieces_of(secret: str, size: int = 8) -> set[str]:
    """Every `size`-character piece of `secret` (none of them may leak)."""
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def leaked(text: str, secret: str = TOKEN) -> list[str]:
    """The 8-character pieces of `secret` found in `text`."""
    return sorted(piece for piece in pieces_of(secret) if piece in text)


@pytest.mark.parametrize("status", [400, 429, 500, 503])
def test_http_error_status_tells_the_user_only_the_status(server, log_lines, status):
    server.fail_next(status)

    with pytest.raises(ResponderError) as caught:
        list(responder(server).stream(user("x")))

    assert str(caught.value) == f"HTTP {status} from the model server"
    detail = caught.value.detail
    assert f"HTTP {status}: Injected failure with status {status}" in detail
    assert server.base_url in detail and MODEL in detail
    assert not leaked(detail) and not any(leaked(line) for line in log_lines)
    assert any(detail in line for line in log_lines)


def test_server_echoing_the_token_in_its_error_is_redacted(log_lines):
    with OpenAICompatServer(model=MODEL, api_key="the-right-key") as strict, pytest.raises(ResponderError) as caught:
        list(responder(strict).stream(user("x")))

    assert str(caught.value) == "HTTP 401 from the model server"
    assert "HTTP 401: Incorrect API key provided: Bearer ***" in caught.value.detail
    assert TOKEN in str(caught.value.__cause__)  # the server did echo it: redaction was needed
    assert not leaked(caught.value.detail) and not any(leaked(line) for line in log_lines)


@pytest.mark.parametrize("body", ["json", "text"])
def test_server_echoing_every_header_leaks_nothing_to_the_user_or_the_log(server, log_lines, body):
    server.echo_headers_next(401, body=body)

    with pytest.raises(ResponderError) as caught:
        list(responder(server).stream(user("x")))

    assert server.auth_headers[-1] == f"Bearer {TOKEN}"
    assert TOKEN in str(caught.value.__cause__)  # the echo carried the key
    assert str(caught.value) == "HTTP 401 from the model server"
    assert "authorization: Bearer ***" in caught.value.detail
    assert not leaked(caught.value.detail) and not any(leaked(line) for line in log_lines)


def test_long_error_bodies_are_clipped_in_the_log(server):
    client = InferenceClient(base_url=server.base_url, api_key=TOKEN, headers={"x-padding": "y" * 3000})
    server.echo_headers_next(500, body="text")

    with pytest.raises(ResponderError) as caught:
        list(OpenAIResponder(model=MODEL, client=client).stream(user("x")))

    assert "y" * 3000 in str(caught.value.__cause__)
    assert len(caught.value.detail) < 800 and caught.value.detail.endswith("characters)")
    assert not leaked(caught.value.detail)


def test_closed_port_says_cannot_connect_without_the_url(log_lines):
    stopped = OpenAICompatServer().start()
    base_url = stopped.base_url
    stopped.stop()

    with pytest.raises(ResponderError) as caught:
        list(OpenAIResponder(model=MODEL, base_url=base_url, token=TOKEN).stream(user("x")))

    assert str(caught.value) == "cannot connect to the model server"
    assert "cannot connect" in caught.value.detail and base_url in caught.value.detail
    assert not leaked(caught.value.detail) and not any(leaked(line) for line in log_lines)


def test_timeout_says_timed_out(server):
    server.delay_next(1.0)

    with pytest.raises(ResponderError) as caught:
        list(responder(server, timeout=0.2).stream(user("x")))

    assert str(caught.value) == "the model server did not answer in time (timed out)"
    assert "0.2s timeout" in caught.value.detail and not leaked(caught.value.detail)


def test_error_in_the_middle_of_the_stream_raises_after_the_first_deltas(server):
    server.error_mid_next_stream(after=2)
    received: list[str] = []

    with pytest.raises(ResponderError) as caught:
        for delta in responder(server).stream(user("one two three")):
            received.append(delta)

    assert received == ["You", " said:"]
    assert str(caught.value) == "the model server reported an error in the middle of the reply"
    assert "Injected error in the middle of the stream" in caught.value.detail


def test_an_error_event_echoing_the_headers_leaks_nothing(server, log_lines):
    server.error_mid_next_stream(after=1, echo_headers=True)

    with pytest.raises(ResponderError) as caught:
        list(responder(server).stream(user("one two")))

    assert TOKEN in str(caught.value.__cause__)
    assert "authorization: Bearer ***" in caught.value.detail
    assert not leaked(str(caught.value)) and not leaked(caught.value.detail)
    assert not any(leaked(line) for line in log_lines)


def test_the_token_is_registered_for_log_redaction(server):
    from feedback.redaction import redact_secrets

    responder(server)

    assert redact_secrets(f"x {TOKEN[3:15]} y") == "x *** y"


def test_responder_error_is_a_runtime_error_whose_detail_defaults_to_its_message():
    assert issubclass(ResponderError, RuntimeError)
    assert ResponderError("short").detail == "short"
    assert ResponderError("short", detail="long").detail == "long"


def test_redact_replaces_every_secret():
    assert redact("a hf_x b hf_x", "hf_x", None, "") == "a *** b ***"


def test_repr_never_shows_the_token(server):
    bot = responder(server)

    assert TOKEN not in repr(bot) and server.base_url in repr(bot)


# --- argument validation ---------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "error", "named"),
    [
        ({"model": ""}, ValueError, "model"),
        ({"model": " padded"}, ValueError, "' padded'"),
        ({"model": 42}, TypeError, "42"),
        ({"model": "http://127.0.0.1:1/v1"}, ValueError, "base_url"),
        ({"base_url": "ftp://example.org"}, ValueError, "'ftp://example.org'"),
        ({"base_url": "localhost:8080"}, ValueError, "'localhost:8080'"),
        ({"base_url": 8080}, TypeError, "8080"),
        ({"temperature": -0.1}, ValueError, "-0.1"),
        ({"temperature": 2.5}, ValueError, "2.5"),
        ({"temperature": "hot"}, ValueError, "'hot'"),
        ({"temperature": True}, ValueError, "True"),
        ({"temperature": math.nan}, ValueError, "nan"),
        ({"max_tokens": 0}, ValueError, "max_tokens"),
        ({"max_tokens": 1.5}, ValueError, "1.5"),
        ({"max_tokens": True}, ValueError, "True"),
        ({"top_p": 0}, ValueError, "top_p"),
        ({"top_p": 1.5}, ValueError, "1.5"),
        ({"timeout": 0}, ValueError, "timeout"),
        ({"timeout": -1}, ValueError, "-1"),
        ({"timeout": "slow"}, ValueError, "'slow'"),
        ({"system_prompt": "   "}, ValueError, "system_prompt"),
        ({"system_prompt": 3}, ValueError, "3"),
        ({"client": object()}, TypeError, "client"),
    ],
)
def test_bad_arguments_are_rejected_naming_the_value(overrides, error, named):
    kwargs = {"model": MODEL, "base_url": None, **overrides}

    with pytest.raises(error) as caught:
        OpenAIResponder(**kwargs)

    assert named in str(caught.value)
    assert next(iter(overrides)) in str(caught.value)


@pytest.mark.parametrize("token", ["", "has space", "new\nline"])
def test_bad_token_is_rejected_without_echoing_it(token):
    with pytest.raises(ValueError, match="token") as caught:
        OpenAIResponder(model=MODEL, token=token)

    assert not token or token not in str(caught.value)


def test_non_string_token_is_rejected():
    with pytest.raises(TypeError, match="token must be a str or None, got int"):
        OpenAIResponder(model=MODEL, token=12345)


def test_client_together_with_base_url_or_token_is_rejected(server):
    client = InferenceClient(base_url=server.base_url)

    with pytest.raises(ValueError, match="either client or base_url/token"):
        OpenAIResponder(model=MODEL, base_url=server.base_url, client=client)
    with pytest.raises(ValueError, match="either client or base_url/token"):
        OpenAIResponder(model=MODEL, token=TOKEN, client=client)


def test_arguments_are_keyword_only():
    with pytest.raises(TypeError):
        OpenAIResponder(MODEL)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("messages", "named"),
    [
        ([], "non-empty list"),
        ("hello", "'hello'"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "'assistant'"),
        ([{"role": "tool", "content": "x"}], "'tool'"),
        ([{"role": "user", "content": None}], "messages[0]['content']"),
        ([{"role": "user"}], "messages[0]['content']"),
        (["hello"], "messages[0]"),
    ],
)
def test_bad_messages_raise_before_any_request(server, messages, named):
    with pytest.raises(ValueError) as caught:
        responder(server).stream(messages)  # raises at call time, not on first next()

    assert named in str(caught.value)
    assert server.requests == []


# --- the test server itself ----------------------------------------------------


def test_server_non_stream_answer_has_the_openai_shape(server):
    client = InferenceClient(base_url=server.base_url, api_key=TOKEN)

    output = client.chat_completion(user("ping pong"), model=MODEL, max_tokens=10)

    assert output.object == "chat.completion" and output.model == MODEL
    assert output.choices[0].message.role == "assistant"
    assert output.choices[0].message.content == "You said: ping pong"
    assert output.choices[0].finish_reason == "stop"
    assert output.usage.completion_tokens == 4


def test_server_stream_chunks_have_the_openai_shape_and_optional_usage(server):
    client = InferenceClient(base_url=server.base_url, api_key=TOKEN)

    chunks = list(
        client.chat_completion(user("ping"), model=MODEL, stream=True, stream_options={"include_usage": True})
    )

    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 4


def test_server_lists_its_model(server):
    with urllib.request.urlopen(f"{server.base_url}/models", timeout=5) as response:
        listing = json.load(response)

    assert listing["object"] == "list"
    assert [entry["id"] for entry in listing["data"]] == [MODEL]
