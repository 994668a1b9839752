"""Memory left behind by refused oversized requests, against the app as served (``python app.py``).

Starts the app in a subprocess, reads its RSS (``/proc/<pid>/status``), sends N refused large
requests of each kind (with a Content-Length; streamed without one; a page event; an upload over
the limit; then 4 at once), and prints the RSS before and after each batch.

    python bench/bench_limits.py [--size-mb 50] [--count 8]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def start_app(data_dir: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "FEEDBACK_DATA_DIR": str(data_dir), "GRADIO_SERVER_PORT": str(port), "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, "app.py"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/gradio_api/info", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise TimeoutError("app did not start")


def chunks(total: int, size: int = 1 << 20) -> Iterator[bytes]:
    block = b"x" * size
    for _ in range(total // size):
        yield block


def send(url: str, kind: str, size: int) -> int:
    """One oversized request of ``kind``; returns the HTTP status (or -1 when the server closed early)."""
    message = b'{"data": [{"text": "' + b"y" * size + b'", "files": []}, ""]}'
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            if kind == "api, with Content-Length":
                return client.post(
                    "/gradio_api/run/chat", content=message, headers={"content-type": "application/json"}
                ).status_code
            if kind == "api, streamed":
                return client.post(
                    "/gradio_api/run/chat", content=chunks(size), headers={"content-type": "application/json"}
                ).status_code
            if kind == "page event":
                return client.post(
                    "/gradio_api/queue/join", content=message, headers={"content-type": "application/json"}
                ).status_code
            if kind == "upload":
                return client.post("/gradio_api/upload", files={"files": ("big.bin", b"0" * size)}).status_code
    except httpx.HTTPError:
        return -1
    raise ValueError(kind)


def batch(url: str, kind: str, size: int, count: int, parallel: bool) -> list[int]:
    statuses: list[int] = []
    if not parallel:
        return [send(url, kind, size) for _ in range(count)]
    threads = [threading.Thread(target=lambda: statuses.append(send(url, kind, size))) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--port", type=int, default=7931)
    args = parser.parse_args()
    size = args.size_mb * 1024 * 1024
    with tempfile.TemporaryDirectory() as tmp:
        process = start_app(Path(tmp) / "data", args.port)
        url = f"http://127.0.0.1:{args.port}"
        try:
            httpx.post(f"{url}/gradio_api/run/chat", json={"data": ["warm-up", ""]}, timeout=60)
            start = rss_mb(process.pid)
            print(f"RSS after start and one chat: {start:.1f} MiB")
            runs: list[tuple[str, bool, int]] = [
                ("api, with Content-Length", False, args.count),
                ("api, streamed", False, args.count),
                ("page event", False, args.count),
                ("upload", False, args.count),
                ("api, with Content-Length", True, 4),
                ("api, streamed", True, 4),
            ]
            for kind, parallel, count in runs:
                before = rss_mb(process.pid)
                statuses = batch(url, kind, size, count, parallel)
                after = rss_mb(process.pid)
                how = "at once" if parallel else "one by one"
                print(
                    f"{count} x {args.size_mb} MB {kind} ({how}): statuses {sorted(set(statuses))}, "
                    f"RSS {before:.1f} -> {after:.1f} MiB ({after - before:+.1f})"
                )
            end = rss_mb(process.pid)
            alive = httpx.get(f"{url}/gradio_api/info", timeout=10).status_code
            print(f"RSS at the end: {end:.1f} MiB ({end - start:+.1f} since start); app answers: {alive}")
        finally:
            process.terminate()
            process.wait(60)


if __name__ == "__main__":
    main()
