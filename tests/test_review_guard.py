"""The reviewer page against other sites and password guessing (issue 9, finding 5), attacked the way
the app is served in production: ``python app.py`` in a subprocess, driven with httpx.

Every test uses its own user name or its own client address (``X-Forwarded-For``, which uvicorn
honours from loopback, its default ``FORWARDED_ALLOW_IPS``), so the shared app's throttle state
never leaks from one test into another.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from conftest import AppProcess, free_port
from starlette.datastructures import Headers

from feedback.web.review_guard import LoginThrottle, is_cross_origin, parse_origin

USERS = {"ann": "pw-ann", "bob": "pw-bob", "cat": "pw-cat", "dan": "pw-dan", "eli": "pw-eli"}
EVIL = "https://evil.example"
REAL_HOST = "reviews.example.org"  # a real host name: Gradio's own CORS policy echoes every origin there


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> Iterator[AppProcess]:
    """``python app.py`` with five reviewer logins and a long cool-down (no test waits it out)."""
    folder = tmp_path_factory.mktemp("guard")
    env = {
        "FEEDBACK_DATA_DIR": str(folder / "data"),
        "FEEDBACK_REVIEW_AUTH": ",".join(f"{user}:{password}" for user, password in USERS.items()),
        "FEEDBACK_REVIEW_LOCKOUT": "600",
    }
    process = AppProcess(env, folder / "app.log")
    try:
        yield process.wait_ready()
    finally:
        process.kill()


def sign_in(app: AppProcess, user: str, password: str, **headers: str) -> httpx.Response:
    """``POST /review/login`` as Gradio's login form sends it (multipart form data)."""
    form = {"username": (None, user), "password": (None, password)}
    return httpx.post(f"{app.url}/review/login", files=form, headers=headers, timeout=10)


def cookies_of(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")


def signed_in(app: AppProcess, user: str = "eli") -> dict[str, str]:
    """A ``Cookie`` header of a signed-in reviewer (both of Gradio's access-token cookies)."""
    response = sign_in(app, user, USERS[user])
    assert response.status_code == 200, response.text
    return {"Cookie": "; ".join(c.split(";")[0] for c in cookies_of(response))}


class TestSameOriginOnly:
    @pytest.mark.parametrize(
        "headers",
        [
            {"Origin": EVIL},
            {"Origin": "null"},
            {"Origin": "http://127.0.0.1:{other_port}"},  # another port of the same host
            {"Origin": "https://127.0.0.1:{port}"},  # another scheme
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:{port}"},  # the browser's word wins
            {"Origin": EVIL, "Host": REAL_HOST},
        ],
        ids=["other-site", "null", "other-port", "other-scheme", "fetch-cross-site", "fetch-same-site", "real-host"],
    )
    def test_a_cross_origin_sign_in_is_refused_even_with_the_right_password(self, app, headers):
        headers = {k: v.format(port=app.port, other_port=free_port()) for k, v in headers.items()}
        response = sign_in(app, "ann", USERS["ann"], **headers)
        assert response.status_code == 403
        assert response.json() == {"detail": "Cross-origin requests to the reviewer page are not allowed."}
        assert cookies_of(response) == []
        assert "access-control-allow-origin" not in response.headers

    @pytest.mark.parametrize(
        "headers",
        [
            {},  # not a browser (gradio_client, curl)
            {"Origin": "http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"},  # the login form in a browser
            {"Origin": "http://127.0.0.1:{port}"},  # a browser without Sec-Fetch-Site
            {"Origin": "http://localhost:{port}", "Host": "localhost:{port}"},
            {"Origin": f"https://{REAL_HOST}", "Host": REAL_HOST, "X-Forwarded-Proto": "https"},  # behind a proxy
            {"Sec-Fetch-Site": "same-origin", "Origin": f"https://{REAL_HOST}"},  # a proxy that rewrote Host
        ],
        ids=["no-origin", "browser", "origin-only", "localhost", "proxied", "fetch-same-origin"],
    )
    def test_a_same_origin_sign_in_gets_lax_cookies(self, app, headers):
        headers = {k: v.format(port=app.port) for k, v in headers.items()}
        response = sign_in(app, "ann", USERS["ann"], **headers)
        assert response.status_code == 200, response.text
        cookies = cookies_of(response)
        assert len(cookies) == 2 and not cookies[0].startswith("access-token-unsecure-")
        assert cookies[0].startswith("access-token-") and cookies[1].startswith("access-token-unsecure-")
        for cookie in cookies:
            attributes = [a.strip().lower() for a in cookie.split(";")[1:]]
            assert "samesite=lax" in attributes and "samesite=none" not in attributes
            assert "httponly" in attributes
        assert "secure" in cookies[0].lower().split("; ")  # Gradio's choice, kept: the https cookie is Secure

    def test_the_cookie_still_signs_the_reviewer_in(self, app):
        cookie = signed_in(app)
        assert httpx.get(f"{app.url}/review/config", timeout=10).status_code == 401
        assert httpx.get(f"{app.url}/review/config", headers=cookie, timeout=10).status_code == 200
        call = httpx.post(
            f"{app.url}/review/gradio_api/call/queue_items",
            json={"data": []},
            headers={**cookie, "Origin": app.url, "Sec-Fetch-Site": "same-origin"},
            timeout=10,
        )
        assert call.status_code == 200 and "event_id" in call.json()

    @pytest.mark.parametrize(
        "path",
        [
            "/review/gradio_api/queue/join",
            "/review/gradio_api/call/decide",
            "/review/gradio_api/run/decide",
            "/review/gradio_api/upload",
            "/review/logout",
            "/review",
        ],
    )
    def test_cross_origin_state_changing_requests_are_refused_with_a_valid_cookie(self, app, path):
        cookie = signed_in(app)
        body = {"data": ["msg-x", "confirmed", "", ""], "fn_index": 0, "session_hash": "abcdefgh"}
        for method in ("POST", "PUT", "DELETE"):
            response = httpx.request(
                method, f"{app.url}{path}", json=body, headers={**cookie, "Origin": EVIL, "Host": REAL_HOST}, timeout=10
            )
            assert response.status_code == 403, (method, path, response.text)
            assert "access-control-allow-origin" not in response.headers

    def test_cross_origin_reads_get_no_cors_headers(self, app):
        cookie = signed_in(app)
        preflight = httpx.options(
            f"{app.url}/review/gradio_api/queue/join",
            timeout=10,
            headers={
                **cookie,
                "Origin": EVIL,
                "Host": REAL_HOST,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert preflight.status_code == 403
        assert not {"access-control-allow-origin", "access-control-allow-credentials"} & set(preflight.headers)
        for path in ("/review/gradio_api/info", "/review/config", "/review/"):
            response = httpx.get(f"{app.url}{path}", headers={**cookie, "Origin": EVIL, "Host": REAL_HOST}, timeout=10)
            assert response.status_code == 200, path
            assert not {"access-control-allow-origin", "access-control-allow-credentials"} & set(response.headers)
        proxied = {"Origin": f"https://{REAL_HOST}", "Host": REAL_HOST, "X-Forwarded-Proto": "https"}
        same = httpx.get(f"{app.url}/review/gradio_api/info", headers={**cookie, **proxied}, timeout=10)
        assert same.headers["access-control-allow-origin"] == f"https://{REAL_HOST}"  # same origin: Gradio's, as is

    def test_the_chat_api_and_widget_keep_their_cors_policy(self, app):
        """README, "Cross-origin use (CORS)": under a real host name Gradio echoes every origin; as
        127.0.0.1 only localhost origins; the widget's files are ``*``; cross-origin calls work."""
        shop = "https://shop.example"
        info = httpx.get(f"{app.url}/gradio_api/info", headers={"Origin": shop, "Host": REAL_HOST}, timeout=10)
        assert info.headers["access-control-allow-origin"] == shop
        assert info.headers["access-control-allow-credentials"] == "true"
        preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
        join = f"{app.url}/gradio_api/queue/join"
        allowed = httpx.options(join, headers={**preflight, "Origin": shop, "Host": REAL_HOST}, timeout=10)
        assert allowed.headers["access-control-allow-origin"] == shop
        local = httpx.options(join, headers={**preflight, "Origin": shop}, timeout=10)
        assert "access-control-allow-origin" not in local.headers
        localhost = httpx.options(join, headers={**preflight, "Origin": "http://localhost:8000"}, timeout=10)
        assert localhost.headers["access-control-allow-origin"] == "http://localhost:8000"
        call = httpx.post(
            f"{app.url}/gradio_api/call/feedback_options",
            json={"data": []},
            headers={"Origin": shop, "Host": REAL_HOST},
            timeout=10,
        )
        assert call.status_code == 200 and call.headers["access-control-allow-origin"] == shop
        widget = httpx.get(f"{app.url}/widget/feedback-widget.js", headers={"Origin": shop}, timeout=10)
        assert widget.status_code == 200 and widget.headers["access-control-allow-origin"] == "*"


def test_in_a_browser_another_site_cannot_act_or_read_as_the_signed_in_reviewer(app, tmp_path):
    """Real Chromium: the reviewer signs in through Gradio's login form, then a page of another
    origin on the same site (127.0.0.1, another port: the reviewer's cookie does go with its
    requests) posts to and reads from the review API; the guard refuses the post, CORS the read."""
    from browser import chromium, static_site
    from playwright.sync_api import expect

    (tmp_path / "evil.html").write_text("<!doctype html><title>elsewhere</title>")
    attack = """async (app) => {
        const api = app + "/review/gradio_api/call/queue_items", out = {};
        const simple = await fetch(api, {method: "POST", mode: "no-cors", credentials: "include",
                                         headers: {"Content-Type": "text/plain"}, body: '{"data": []}'});
        out.simple = simple.type;  // sent without a preflight; its answer is opaque
        for (const [name, init] of [["read", {}], ["json", {method: "POST", body: '{"data": []}',
                                     headers: {"Content-Type": "application/json"}}]]) {
            try { await fetch(name === "read" ? app + "/review/config" : api, {...init, credentials: "include"});
                  out[name] = "answered"; } catch (error) { out[name] = "blocked"; }
        }
        return out;
    }"""
    with chromium() as browser, static_site(tmp_path) as site:
        page = browser.new_context().new_page()
        page.goto(f"{app.url}/review/")
        page.get_by_label("username").fill("eli")
        page.get_by_label("password").fill(USERS["eli"])
        page.get_by_role("button", name="Login").click()
        expect(page.get_by_text("Review flagged replies")).to_be_visible()
        refused_before = app.log().count("refused a cross-origin")

        evil = page.context.new_page()
        evil.goto(site.replace("localhost", "127.0.0.1") + "/evil.html")
        assert evil.evaluate(attack, app.url) == {"simple": "opaque", "read": "blocked", "json": "blocked"}
        assert app.log().count("refused a cross-origin") - refused_before == 2  # the simple POST and the preflight

        same = page.evaluate("""async () => (await fetch("gradio_api/call/queue_items", {method: "POST",
            headers: {"Content-Type": "application/json"}, body: '{"data": []}'})).status""")
        assert same == 200  # the reviewer's own page still works


class TestSignInThrottle:
    def test_five_failures_lock_the_user_out_at_that_address_even_with_the_right_password(self, app):
        here = {"X-Forwarded-For": "203.0.113.1"}
        for _ in range(5):
            assert sign_in(app, "bob", "wrong-guess-7", **here).status_code == 400
        locked = sign_in(app, "bob", USERS["bob"], **here)
        assert locked.status_code == 429 and cookies_of(locked) == []
        assert locked.json() == {"detail": f"Too many failed sign-ins. Try again in {locked.headers['retry-after']} s."}
        assert 590 <= int(locked.headers["retry-after"]) <= 600
        assert sign_in(app, "bob", "wrong-guess-7", **here).status_code == 429
        # another user at that address, and the same user elsewhere, are not locked out
        assert sign_in(app, "cat", USERS["cat"], **here).status_code == 200
        assert sign_in(app, "bob", USERS["bob"], **{"X-Forwarded-For": "203.0.113.2"}).status_code == 200
        log = app.log()
        assert log.count("reviewer sign-in locked for 600 s after 5 failed attempts (user name 'bob')") == 1
        assert "wrong-guess-7" not in log and USERS["bob"] not in log and "203.0.113.1" not in log

    def test_a_success_clears_the_count(self, app):
        here = {"X-Forwarded-For": "203.0.113.3"}
        for _ in range(2):
            for _ in range(4):
                assert sign_in(app, "cat", "nope", **here).status_code == 400
            assert sign_in(app, "cat", USERS["cat"], **here).status_code == 200

    def test_concurrent_guesses_cannot_overtake_the_limit(self, app):
        async def guesses() -> list[int]:
            form = {"username": "dan", "password": "nope"}
            async with httpx.AsyncClient(base_url=app.url, headers={"X-Forwarded-For": "203.0.113.4"}) as http:
                posts = [http.post("/review/login", data=form, timeout=30) for _ in range(20)]
                responses = await asyncio.gather(*posts)
            return sorted(r.status_code for r in responses)

        assert asyncio.run(guesses()) == [400] * 5 + [429] * 15
        assert sign_in(app, "dan", USERS["dan"], **{"X-Forwarded-For": "203.0.113.4"}).status_code == 429

    def test_an_oversized_sign_in_body_is_refused(self, app):
        response = httpx.post(
            f"{app.url}/review/login", timeout=10, data={"username": "ann", "password": "x" * 100_000}
        )
        assert response.status_code == 413


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestLoginThrottle:
    def test_a_lock_out_ends_after_the_cool_down(self):
        clock = FakeClock()
        throttle = LoginThrottle(max_failures=3, lockout=60, clock=clock)
        key = ("ann", "192.0.2.1")
        for _ in range(3):
            assert throttle.begin(key) == 0
            throttle.end(key, success=False)
        assert throttle.begin(key) == 60
        clock.now += 59.5
        assert throttle.begin(key) == pytest.approx(0.5)
        clock.now += 0.5
        assert throttle.begin(key) == 0  # a fresh count after the cool-down

    def test_failures_are_forgotten_after_a_quiet_spell(self):
        clock = FakeClock()
        throttle = LoginThrottle(max_failures=2, lockout=60, clock=clock)
        key = ("ann", "192.0.2.1")
        for _ in range(3):
            assert throttle.begin(key) == 0
            throttle.end(key, success=False)
            clock.now += 60

    def test_memory_is_bounded(self):
        throttle = LoginThrottle(max_keys=100, clock=FakeClock())
        for n in range(1000):
            throttle.begin((f"user{n}", "192.0.2.1"))
            throttle.end((f"user{n}", "192.0.2.1"), success=False)
        assert len(throttle) == 100

    def test_a_success_forgets_the_key(self):
        throttle = LoginThrottle(clock=FakeClock())
        throttle.begin(("ann", "a"))
        throttle.end(("ann", "a"), success=True)
        assert len(throttle) == 0

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"max_failures": 0}, "'max_failures'"),
            ({"lockout": float("inf")}, "'lockout'"),
            ({"lockout": -1}, "'lockout'"),
            ({"max_keys": 0}, "'max_keys'"),
        ],
    )
    def test_bad_arguments_are_refused(self, kwargs, message):
        with pytest.raises(ValueError, match=message):
            LoginThrottle(**kwargs)


@pytest.mark.parametrize(
    ("headers", "scheme", "cross"),
    [
        ({}, "http", False),
        ({"host": "a.example", "origin": "http://a.example"}, "http", False),
        ({"host": "a.example:80", "origin": "http://a.example"}, "http", False),
        ({"host": "A.example", "origin": "http://a.EXAMPLE:80"}, "http", False),
        ({"host": "a.example", "origin": "https://a.example"}, "http", True),
        ({"host": "a.example", "origin": "https://a.example", "x-forwarded-proto": "https"}, "http", False),
        (
            {
                "host": "internal:7860",
                "origin": "https://a.example",
                "x-forwarded-host": "a.example",
                "x-forwarded-proto": "https",
            },
            "http",
            False,
        ),
        ({"host": "a.example", "origin": "http://a.example:8080"}, "http", True),
        ({"host": "a.example", "origin": "http://b.example"}, "http", True),
        ({"host": "a.example", "origin": "http://a.example.evil"}, "http", True),
        ({"host": "a.example", "origin": "null"}, "http", True),
        ({"host": "a.example", "origin": "http://a.example/path"}, "http", True),
        ({"host": "[::1]:7860", "origin": "http://[::1]:7860"}, "http", False),
        ({"host": "a.example", "origin": "http://a.example", "sec-fetch-site": "cross-site"}, "http", True),
        ({"host": "a.example", "origin": "http://b.example", "sec-fetch-site": "same-origin"}, "http", False),
        ({"sec-fetch-site": "none"}, "http", False),
        ({"host": "a.example", "origin": "https://a.example"}, "wss", False),
    ],
)
def test_is_cross_origin(headers, scheme, cross):
    assert is_cross_origin(Headers(headers), scheme) is cross


def test_parse_origin():
    assert parse_origin("https://Chat.Example.org") == ("https", "chat.example.org", 443)
    assert parse_origin("http://127.0.0.1:7860") == ("http", "127.0.0.1", 7860)
    assert parse_origin("null") is None and parse_origin("ftp://a.example") is None
    assert parse_origin("http://a.example:99999") is None
