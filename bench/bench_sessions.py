"""Memory held by open page sessions, and what expiring idle ones gives back.

Run (through the shared lock)::

    flock /tmp/bench.lock .venv/bin/python bench/bench_sessions.py --conversations 10000

Builds the app's chat page (``create_app``, echo responder, a temp data dir) and drives it in
process through Gradio's HTTP API (``fastapi.testclient``; the tests' ``PageSession``), the way a browser does: each
conversation is a new browser session (its own ``session_hash``) that sends ``--messages``
messages of ~200 characters through the page's submit chain. It prints the RSS of this process
and the number of sessions Gradio holds: after the app is built, after the conversations, after
the idle ones expire (the sweep the app runs every quarter of ``FEEDBACK_SESSION_TTL``, called here
with its clock advanced past the TTL rather than waiting for it), then once more after
``malloc_trim(0)`` hands the freed heap back to the OS (without it, freed memory stays in the
process for reuse), and after as many conversations again. ``--no-expiry`` shows Gradio's default
instead: sessions are only dropped past its capacity of 10,000.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import gc
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import gradio as gr  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from support.page import PageSession  # noqa: E402 - the tests' browser session over /gradio_api/run

from feedback.app import create_app  # noqa: E402
from feedback.logs import setup_logging  # noqa: E402
from feedback.web.sessions import expire_idle_sessions  # noqa: E402
from schemas.settings import Settings  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def trim_heap() -> bool:
    """Give the C heap's free memory back to the OS (glibc ``malloc_trim``), so RSS shows what
    is still in use; False where there is no glibc."""
    try:
        return bool(ctypes.CDLL("libc.so.6").malloc_trim(0) or True)
    except (OSError, AttributeError):
        return False


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}/{os.cpu_count()}"


def converse(http: TestClient, count: int, messages: int, first: int, rng: random.Random) -> float:
    """``count`` conversations, each a new session; returns the seconds taken."""
    words = [
        "the",
        "a",
        "of",
        "to",
        "and",
        "in",
        "is",
        "it",
        "you",
        "that",
        "was",
        "for",
        "on",
        "are",
        "with",
        "as",
        "his",
        "they",
        "be",
        "at",
        "one",
        "have",
        "this",
        "from",
    ]
    started = time.monotonic()
    for n in range(first, first + count):
        browser = PageSession(http, f"bench-session-{n:07d}")
        for _ in range(messages):
            browser.send(" ".join(rng.choices(words, k=50)))
    return time.monotonic() - started


def report(label: str, holder, seconds: float | None = None) -> None:  # noqa: ANN001 - a gradio StateHolder
    gc.collect()
    took = f"   ({seconds:.0f} s)" if seconds is not None else ""
    print(
        f"{label:<44} RSS {rss_mb():6.0f} MB   sessions held {len(holder.session_data):6d}{took}   [{load()}]",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=1, help="messages per conversation (default 1)")
    parser.add_argument("--ttl", type=float, default=3600.0, help="FEEDBACK_SESSION_TTL in seconds (default 3600)")
    parser.add_argument("--no-expiry", action="store_true", help="leave sessions to Gradio's defaults")
    args = parser.parse_args(argv)
    setup_logging("WARNING")
    work = Path(tempfile.mkdtemp(prefix="bench-sessions-"))
    try:
        app = create_app(Settings(data_dir=work / "data", session_ttl=args.ttl))
        with TestClient(gr.routes.App.create_app(app.demo)) as http:
            http.get("/gradio_api/startup-events")
            holder = app.demo.state_holder
            rng = random.Random(0)
            report("app built", holder)
            seconds = converse(http, args.conversations, args.messages, 0, rng)
            report(f"after {args.conversations:,} conversations", holder, seconds)
            if not args.no_expiry:
                later = datetime.datetime.now() + datetime.timedelta(seconds=args.ttl + 1)
                expire_idle_sessions(holder, args.ttl, now=later)
                report("after the idle sessions expired", holder)
                if trim_heap():
                    report("  then malloc_trim(0)", holder)
            seconds = converse(http, args.conversations, args.messages, args.conversations, rng)
            report(f"after {args.conversations:,} more conversations", holder, seconds)
        app.recorder.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
