"""Shared fixtures: every file in ``tmp_path``, real servers on 127.0.0.1, cleaned up on teardown."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ("support.review",)  # fixtures shared by test modules: the served review app

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")


def read_records(data_dir: Path, kind: str) -> list[dict]:
    """Every JSON line of ``data_dir/kind/*.jsonl``, in shard-name then line order."""
    rows = []
    for path in sorted((Path(data_dir) / kind).glob("*.jsonl")):
        rows.extend(json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return rows


def records_of(
    data: Path, conversation_id: str, kinds: tuple[str, ...] = ("turns", "ratings", "flags", "reviews")
) -> list[dict[str, Any]]:
    """Every record of ``conversation_id`` in the data dir's shards of ``kinds``."""
    return [r for kind in kinds for r in read_records(data, kind) if r["conversation_id"] == conversation_id]


def shard_bytes(data: Path) -> bytes:
    """Every byte of every shard (the records as stored)."""
    return b"".join(p.read_bytes() for p in sorted(data.glob("*/*.jsonl")))


def count_records(data_dir: Path) -> dict[str, int]:
    """How many records of each kind the data dir holds."""
    return {kind: len(read_records(data_dir, kind)) for kind in ("turns", "ratings", "flags")}


@dataclass
class RunningApp:
    """A launched app: its URL, its data dir and the Blocks object (to close it)."""

    demo: object
    url: str
    data_dir: Path

    def records(self, kind: str) -> list[dict]:
        return read_records(self.data_dir, kind)


def launch(demo) -> str:  # noqa: ANN001 - a gr.Blocks
    """Launch ``demo`` on a free 127.0.0.1 port without blocking; returns its URL."""
    demo.queue().launch(server_name="127.0.0.1", server_port=None, prevent_thread_lock=True, quiet=True)
    return demo.local_url


@pytest.fixture
def running_app(tmp_path: Path) -> Iterator[RunningApp]:
    """The real app (echo responder) serving on 127.0.0.1, logging to ``tmp_path/data``."""
    from feedback.app import build_app
    from schemas.settings import Settings

    data_dir = tmp_path / "data"
    demo = build_app(Settings(data_dir=data_dir))
    url = launch(demo)
    try:
        yield RunningApp(demo, url, data_dir)
    finally:
        demo.close()


@pytest.fixture
def client(running_app: RunningApp):  # noqa: ANN201 - gradio_client.Client
    """A ``gradio_client.Client`` connected to :func:`running_app`."""
    from gradio_client import Client

    return Client(running_app.url, verbose=False)


@pytest.fixture(scope="session")
def hh_rlhf_file() -> Path:
    """The hh-rlhf harmless-base test file from ``../shared/data`` (skips when it is not there)."""
    from support.sample_data import hh_rlhf_test_file

    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"  # tests never download: use ../shared/data or skip
    try:
        return hh_rlhf_test_file()
    except FileNotFoundError as error:
        pytest.skip(f"hh-rlhf sample data not available: {error}")
    finally:
        if previous is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = previous


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AppProcess:
    """``python app.py`` in its own process, configured by environment, on a free port. ``data`` is its data
    dir (``FEEDBACK_DATA_DIR``, else None). As a context manager: started, then terminated."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        import subprocess
        import sys

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.data = Path(env["FEEDBACK_DATA_DIR"]) if env.get("FEEDBACK_DATA_DIR") else None
        full_env = {**os.environ, **env, "GRADIO_SERVER_PORT": str(self.port), "GRADIO_SERVER_NAME": "127.0.0.1"}
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "app.py"],
            cwd=Path(__file__).resolve().parent.parent,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60) -> AppProcess:
        """Return once the app answers HTTP (or raise with its log)."""
        import time

        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"app exited {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/gradio_api/info", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError(f"app not ready after {timeout} s:\n{self.log()}")

    def __enter__(self) -> AppProcess:
        return self.wait_ready()

    def __exit__(self, *_: object) -> None:
        self.terminate(60)

    def wait_exit(self, timeout: float = 120) -> tuple[int, str]:
        """Wait for an app that is expected to stop by itself (e.g. a refused start); returns its exit
        code and its output."""
        code = self.process.wait(timeout)
        self._log.close()
        return code, self.log()

    def terminate(self, timeout: float = 120) -> int:
        """SIGTERM, then wait for the process to end; returns its exit code."""
        self.process.terminate()
        code = self.process.wait(timeout)
        self._log.close()
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        self._log.close()

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")


TOKEN = "hf_test_secret_token_123"
"""The token every test process sends to the test Hub (asserted never to appear in logs)."""


@pytest.fixture
def hub(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The local Hub-compatible test server (``tests/support/hub/``), data in ``tmp_path/hub``; the one
    ``hub`` fixture. A module or test sets the server's options with the ``hub_options`` marker, e.g.
    ``pytestmark = pytest.mark.hub_options(lfs_threshold=1024)`` (keyword arguments of ``HubServer``).
    The in-process ``huggingface_hub`` client sends no telemetry and uploads without Xet."""
    from huggingface_hub import constants
    from support.hub import running_hub

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    marker = request.node.get_closest_marker("hub_options")
    with running_hub(tmp_path / "hub", **(marker.kwargs if marker else {})) as server:
        yield server


def hub_env(hub, tmp_path: Path) -> dict[str, str]:  # noqa: ANN001 - a HubServer
    """Environment for a process that talks to the test Hub (read at import by huggingface_hub)."""
    return {
        "HF_ENDPOINT": hub.endpoint,
        "HF_TOKEN": TOKEN,
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_UPDATE_DOWNLOAD_COUNTS": "0",
        "HF_HUB_OFFLINE": "0",
    }
