"""The sync against a faulty network: ``python app.py`` talks to the test Hub through a TCP fault
proxy (``tests/faultproxy.py``) that passes bytes, swallows them (a connection accepted and never
answered), resets connections or refuses them, switched while the app runs.

What must hold: a dead connection costs one push, later pushes happen and every record arrives
exactly once; SIGTERM ends the app within 30 s whatever the Hub does, naming what was not pushed in
one line, and the next run pushes it; one warning line per failed push.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import TOKEN, AppProcess, hub_env
from faultproxy import FaultProxy
from support.hub import HubServer
from support.sync import chat_rate_flag, local_records, repo_records, same_records
from support.waiting import wait_until

EVERY = "0.01"
"""Minutes between pushes in these tests (0.6 s)."""
HUB_TIMEOUT = "1"
"""Seconds a Hub call may wait on the network in these tests (FEEDBACK_HUB_TIMEOUT)."""
EXIT_BOUND = 30.0
"""SIGTERM must end the app within this many seconds, whatever the Hub does."""
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \| (\w+) +\| ")
RETRY_LINE = re.compile(r"thrown while requesting|Retrying in|Rate limited")


@pytest.fixture
def proxy(hub: HubServer):
    """A fault proxy in front of the test Hub, passing bytes until told otherwise."""
    fault_proxy = FaultProxy(("127.0.0.1", hub.port)).start()
    try:
        yield fault_proxy
    finally:
        fault_proxy.stop()


def start_app(
    hub: HubServer,
    endpoint: str,
    tmp_path: Path,
    log_name: str,
    repo_id: str,
    *,
    hub_timeout: str = HUB_TIMEOUT,
    log_level: str = "INFO",
    ready: bool = True,
) -> AppProcess:
    """``python app.py`` syncing ``tmp_path/data`` to ``repo_id`` through ``endpoint``."""
    env = {
        **hub_env(hub, tmp_path),
        "HF_ENDPOINT": endpoint,
        "FEEDBACK_DATA_DIR": str(tmp_path / "data"),
        "FEEDBACK_DATASET_REPO": repo_id,
        "FEEDBACK_SYNC_EVERY": EVERY,
        "FEEDBACK_HUB_TIMEOUT": hub_timeout,
        "FEEDBACK_LOG_LEVEL": log_level,
    }
    app = AppProcess(env, tmp_path / f"{log_name}.log")
    return app.wait_ready() if ready else app


def timed_terminate(app: AppProcess) -> tuple[int, float]:
    """SIGTERM ``app``; returns its exit code and the seconds it took to exit."""
    start = time.monotonic()
    code = app.terminate(timeout=2 * EXIT_BOUND)
    return code, time.monotonic() - start


def failed_push_lines(log: str, repo_id: str) -> list[str]:
    return [line for line in log.splitlines() if f"push to {repo_id} failed" in line]


def unpushed_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "did not finish" in line or "not pushed" in line]


def assert_one_unpushed_line(log: str, repo_id: str, data_dir: Path) -> str:
    """The log names what was not pushed in exactly one line, with a reason; returns the reason."""
    lines = unpushed_lines(log)
    assert len(lines) == 1, log
    match = re.search(
        rf"final push to {re.escape(repo_id)} did not finish: (.+) stay in "
        rf"{re.escape(str(data_dir.resolve()))} and go with the next run's push; reason: (.+)$",
        lines[0],
    )
    assert match, lines[0]
    assert re.search(r"^\d+ turns shards, \d+ ratings shards", match[1]), lines[0]
    assert match[2].strip()
    return match[2]


def assert_clean_log(log: str) -> None:
    """No traceback, no token, no raw (non-loguru) line, no huggingface_hub retry line above DEBUG."""
    assert "Traceback" not in log and TOKEN not in log
    for line in log.splitlines():
        if not line.strip():
            continue
        match = LOG_LINE.match(line)
        assert match, f"a raw line in the log: {line!r}"
        if RETRY_LINE.search(line):
            assert match[1] == "DEBUG", line


def assert_exactly_once(hub: HubServer, repo_id: str, data_dir: Path) -> None:
    """The repo holds every local record once: same multiset, and no message id twice."""
    remote = repo_records(hub, repo_id)
    assert same_records(remote, local_records(data_dir))
    for kind in ("turns", "ratings", "flags"):
        keys = Counter((r["message_id"], r.get("timestamp")) for r in remote[kind])
        assert all(n == 1 for n in keys.values()), kind


def settled(app: AppProcess, hub: HubServer, repo_id: str, data_dir: Path) -> bool:
    """The repo holds every local record and the app has had the answer of every commit (a
    "pushed" line each): no push is in flight, so breaking the network now loses no answer."""
    pushed = sum(1 for line in app.log().splitlines() if f"to {repo_id} (" in line and "| pushed " in line)
    return same_records(repo_records(hub, repo_id), local_records(data_dir)) and pushed == len(hub.commits(repo_id)) - 1


def restart_and_push_everything(hub: HubServer, tmp_path: Path, repo_id: str) -> AppProcess:
    """Run the app again with the Hub healthy (no proxy): its first push sends what was left."""
    app = start_app(hub, hub.endpoint, tmp_path, "restart", repo_id)
    try:
        wait_until(
            lambda: same_records(repo_records(hub, repo_id), local_records(tmp_path / "data")),
            what="the next run to push what was left",
        )
        assert app.terminate() == 0, app.log()
    finally:
        app.kill()
    assert not unpushed_lines(app.log()), app.log()
    return app


def test_a_dead_connection_costs_one_push_and_later_pushes_happen(hub, proxy, tmp_path):
    repo_id = "test-user/dead-connection"
    app = start_app(hub, proxy.endpoint, tmp_path, "app", repo_id)
    try:
        chat_rate_flag(app.url, 2)
        wait_until(lambda: settled(app, hub, repo_id, tmp_path / "data"), what="the first pushes")

        proxy.set_mode("dead")  # the Hub accepts connections and never answers
        chat_rate_flag(app.url, 2)  # chatting goes on meanwhile
        assert proxy.wait_swallowed(3, timeout=60), app.log()  # three pushes went into the dead network...
        wait_until(lambda: len(failed_push_lines(app.log(), repo_id)) >= 3, what="three failed pushes")
        assert len(repo_records(hub, repo_id)["turns"]) == 2

        proxy.set_mode("pass")  # ...and once it heals, the next push sends everything
        chat_rate_flag(app.url, 2)
        wait_until(
            lambda: same_records(repo_records(hub, repo_id), local_records(tmp_path / "data")),
            what="every record after the network healed",
        )
        assert app.terminate() == 0, app.log()
    finally:
        app.kill()
    assert_exactly_once(hub, repo_id, tmp_path / "data")
    log = app.log()
    failures = failed_push_lines(log, repo_id)
    assert len(failures) == proxy.swallowed  # one hung request per failed push: no retries inside a push
    assert all("no answer from the Hub within 1 s" in line for line in failures), failures
    assert_clean_log(log)
    assert not unpushed_lines(log)


@pytest.mark.parametrize("hub_timeout", ["1", "120"], ids=["short-timeout", "timeout-longer-than-exit-bound"])
def test_sigterm_while_a_push_hangs_exits_in_time_and_the_next_run_pushes_the_rest(hub, proxy, tmp_path, hub_timeout):
    repo_id = "test-user/sigterm-hang"
    app = start_app(hub, proxy.endpoint, tmp_path, "app", repo_id, hub_timeout=hub_timeout)
    try:
        chat_rate_flag(app.url, 2)
        wait_until(lambda: settled(app, hub, repo_id, tmp_path / "data"), what="the first pushes")
        proxy.set_mode("dead")
        chat_rate_flag(app.url, 3)
        assert proxy.wait_swallowed(1, timeout=60), app.log()  # a push hangs now
        code, elapsed = timed_terminate(app)
    finally:
        app.kill()
    print(f"exit after SIGTERM with a hanging push (FEEDBACK_HUB_TIMEOUT={hub_timeout}): {elapsed:.1f} s")
    assert code == 0, app.log()
    assert elapsed < EXIT_BOUND, app.log()
    reason = assert_one_unpushed_line(app.log(), repo_id, tmp_path / "data")
    assert "no answer from the Hub within" in reason
    assert_clean_log(app.log())
    assert not same_records(repo_records(hub, repo_id), local_records(tmp_path / "data"))

    proxy.set_mode("pass")
    restart_and_push_everything(hub, tmp_path, repo_id)
    assert_exactly_once(hub, repo_id, tmp_path / "data")


@pytest.mark.parametrize(
    ("mode", "when", "expected"),
    [
        ("refuse", "after-connecting", "Connection refused"),
        ("refuse", "from-the-start", "the repo was never reached: cannot reach the Hub: ConnectError"),
        ("dead", "from-the-start", "the repo was never reached: no answer from the Hub within 1 s"),
    ],
    ids=["down-after-connecting", "down-from-the-start", "dead-from-the-start"],
)
def test_sigterm_with_the_hub_down_exits_quickly_and_loses_nothing(hub, proxy, tmp_path, mode, when, expected):
    repo_id = "test-user/hub-down"
    if when == "from-the-start":
        proxy.set_mode(mode)
    app = start_app(hub, proxy.endpoint, tmp_path, "app", repo_id)
    try:
        if when == "after-connecting":
            chat_rate_flag(app.url, 1)
            wait_until(lambda: settled(app, hub, repo_id, tmp_path / "data"), what="the first pushes")
            proxy.set_mode(mode)  # the Hub goes down
        chat_rate_flag(app.url, 2)
        code, elapsed = timed_terminate(app)
    finally:
        app.kill()
    print(f"exit after SIGTERM with the Hub {mode} ({when}): {elapsed:.1f} s")
    assert code == 0, app.log()
    assert elapsed < 10, app.log()
    reason = assert_one_unpushed_line(app.log(), repo_id, tmp_path / "data")
    assert expected in reason, reason
    assert_clean_log(app.log())

    proxy.set_mode("pass")
    restart_and_push_everything(hub, tmp_path, repo_id)
    assert_exactly_once(hub, repo_id, tmp_path / "data")


def test_one_warning_line_per_failed_push_and_hub_retries_only_at_debug(hub, proxy, tmp_path):
    repo_id = "test-user/one-line-each"
    app = start_app(hub, proxy.endpoint, tmp_path, "app", repo_id, log_level="DEBUG")

    def answered(status: int, path: str) -> int:
        return sum(1 for r in hub.request_log if r.status == status and path in r.path)

    try:
        data_dir = tmp_path / "data"
        chat_rate_flag(app.url, 1)
        wait_until(lambda: settled(app, hub, repo_id, data_dir), what="the first pushes")

        hub.fail(500, times=1, paths=r"/preupload/")  # huggingface_hub retries this one, and it succeeds
        chat_rate_flag(app.url, 1)
        wait_until(lambda: settled(app, hub, repo_id, data_dir), what="the push after a retry")
        assert answered(500, "/preupload/") == 1

        hub.fail(500, paths=r"/commit/")  # the Hub refuses every commit (not retried by the client)
        chat_rate_flag(app.url, 1)
        wait_until(lambda: answered(500, "/commit/") >= 3, what="three refused commits")
        hub.clear_faults()
        wait_until(lambda: settled(app, hub, repo_id, data_dir), what="every record once the Hub accepts commits")

        proxy.set_mode("reset")  # the network resets every connection
        chat_rate_flag(app.url, 1)
        wait_until(lambda: proxy.resets >= 3, what="three reset connections")
        proxy.set_mode("pass")
        wait_until(lambda: settled(app, hub, repo_id, data_dir), what="every record once the network heals")
        assert app.terminate() == 0, app.log()
    finally:
        app.kill()
    log = app.log()
    failed_pushes = answered(500, "/commit/") + proxy.resets
    assert len(failed_push_lines(log, repo_id)) == failed_pushes, log
    retries = [line for line in log.splitlines() if RETRY_LINE.search(line)]
    assert retries and all(LOG_LINE.match(line)[1] == "DEBUG" for line in retries), retries
    assert_clean_log(log)
    assert_exactly_once(hub, repo_id, tmp_path / "data")
