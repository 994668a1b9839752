"""What redaction (``FEEDBACK_REDACT=on``) costs: per turn in the write gate, and in chat throughput.

    flock /tmp/bench.lock python bench/bench_redaction.py [--conversations N] [--chat-turns T] [--concurrency C]

1. In process: hh-rlhf harmless-base conversations (``../shared/data``; synthetic ones if absent)
   as the turns the app records (turn ``i`` carries the whole prompt so far and the reply), every
   fifth user message (``--personal-every``) carrying personal data from the test corpus. Each
   turn goes through the :class:`~feedback.privacy.redaction.Redactor` gate step, with its cache
   (as in the app: earlier messages come back in every prompt) and without it (every text
   analysed). Prints ms per turn (mean, p50, p95, max), ms per text Presidio analyses, and the
   time one message of 1k, 10k and 100k characters full of personal data takes.
2. The real app (``python app.py``, echo responder) twice, redaction off and on, alternating:
   ``/chat`` turns from ``C`` clients at once. Prints turns/s each round and the on/off ratio.
   With the echo responder the app's own work is small, so the ratio is the worst case: a real
   model's seconds per reply make redaction's milliseconds vanish.

The machine's load (``uptime``) is printed before and after: the figures are only comparable
under the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from feedback.privacy.redaction import Redactor, build_analyzer  # noqa: E402
from schemas.records import ChatMessage, Turn  # noqa: E402

CORPUS = REPO / "tests" / "data" / "redaction_corpus.jsonl"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def personal_sentences() -> list[str]:
    """The test corpus's texts that hold personal data."""
    rows = [json.loads(line) for line in CORPUS.read_text().splitlines()]
    return [row["text"] for row in rows if row["entities"]]


def conversations(limit: int) -> list[list[tuple[str, str]]]:
    """``[[(role, content), ...], ...]``: hh-rlhf's chosen transcripts, or synthetic ones."""
    try:
        from feedback.replay_data import load_pairs
        from tests.support.sample_data import hh_rlhf_test_file

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        pairs = load_pairs(hh_rlhf_test_file())[:limit]
        return [list(pair.chosen) for pair in pairs]
    except (FileNotFoundError, OSError, ValueError) as error:
        print(f"hh-rlhf sample not available ({error}); synthetic conversations")
        prose = "Could you explain how photosynthesis works in plants and why leaves are green? " * 3
        return [[("user", prose), ("assistant", prose * 2)] * 4 for _ in range(limit)]


def with_personal_data(convs: list[list[tuple[str, str]]], every: int) -> list[list[tuple[str, str]]]:
    """``convs`` with a corpus text holding personal data appended to every ``every``-th user message."""
    sentences = personal_sentences()
    out, n = [], 0
    for conv in convs:
        changed = []
        for role, content in conv:
            if role == "user":
                n += 1
                if n % every == 0:
                    content = f"{content} {sentences[n % len(sentences)]}"
            changed.append((role, content))
        out.append(changed)
    return out


def turns_of(conv: list[tuple[str, str]], cid: str) -> list[Turn]:
    """The turns the app records for one conversation: each with the whole prompt so far."""
    turns, prompt = [], []
    for i, (role, content) in enumerate(conv):
        if role == "user":
            prompt.append(ChatMessage(role="user", content=content))
            reply = conv[i + 1][1] if i + 1 < len(conv) and conv[i + 1][0] == "assistant" else ""
            turns.append(
                Turn(
                    conversation_id=cid,
                    turn_index=len(turns),
                    messages=tuple(prompt),
                    response=reply,
                    model="bench",
                    latency_ms=1.0,
                )
            )
            prompt.append(ChatMessage(role="assistant", content=reply))
    return turns


def gate_cost(limit: int, every: int) -> None:
    convs = with_personal_data(conversations(limit), every)
    turns = [t for i, conv in enumerate(convs) for t in turns_of(conv, f"conversation-{i:06d}")]
    started = time.perf_counter()
    analyzer = build_analyzer()
    print(f"redactor built in {time.perf_counter() - started:.2f} s (Presidio + spaCy blank pipeline)")
    calls = 0
    analyze = analyzer.analyze

    def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - Presidio's own signature
        nonlocal calls
        calls += 1
        return analyze(*args, **kwargs)

    analyzer.analyze = counted  # type: ignore[method-assign]
    warm = Redactor(analyzer)
    for text in personal_sentences():  # first calls load libphonenumber's metadata and compile patterns
        warm.text(text)
    for label, cached in (("with cache (as in the app)", True), ("without cache (every text analysed)", False)):
        redactor = Redactor(analyzer)
        if not cached:
            redactor._cached = redactor._redact  # type: ignore[method-assign]
        times, chars, replaced, calls = [], 0, 0, 0
        for turn in turns:
            t0 = time.perf_counter()
            out = redactor(turn)
            times.append((time.perf_counter() - t0) * 1000)
            chars += sum(len(m.content) for m in turn.messages) + len(turn.response)
            replaced += out is not turn
        times.sort()
        total = sum(times)
        print(
            f"gate, {label}: {len(turns)} turns of {len(convs)} conversations ({replaced} changed), "
            f"mean {statistics.mean(times):.2f} ms, p50 {times[len(times) // 2]:.2f} ms, "
            f"p95 {times[int(len(times) * 0.95)]:.2f} ms, max {times[-1]:.1f} ms per turn; "
            f"{calls} texts analysed by Presidio ({total / max(calls, 1):.2f} ms each, the rest skipped: "
            f"no digit, '@' or ':'); {chars / total:,.0f} chars/ms of prompt+reply"
        )
    sample = " ".join(personal_sentences())
    for size in (1_000, 10_000, 100_000):
        text = (sample * (size // len(sample) + 1))[:size]
        t0 = time.perf_counter()
        warm._redact(text)
        print(f"one message of {size:,} characters full of personal data: {(time.perf_counter() - t0) * 1000:.0f} ms")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(data_dir: Path, redact: bool) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    env = {
        **os.environ,
        "FEEDBACK_DATA_DIR": str(data_dir),
        "FEEDBACK_REDACT": "on" if redact else "off",
        "GRADIO_SERVER_PORT": str(port),
        "FEEDBACK_LOG_LEVEL": "WARNING",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    env.pop("FEEDBACK_DATASET_REPO", None)
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "app.py"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    while time.perf_counter() - started < 180:
        try:
            if httpx.get(f"{url}/gradio_api/info", timeout=2).status_code == 200:
                return process, url, time.perf_counter() - started
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the app did not start")


def drive(url: str, convs: list[list[tuple[str, str]]], turns_per_conv: int, concurrency: int) -> tuple[int, float]:
    """``/chat`` every conversation's first user messages from ``concurrency`` clients at once
    (connected before the clock starts); returns turns and seconds."""
    from gradio_client import Client

    clients = [Client(url, verbose=False) for _ in range(concurrency)]

    def worker(k: int) -> int:
        n = 0
        for conv in convs[k::concurrency]:
            cid, turns = "", 0
            for role, content in conv:
                if role == "user" and turns < turns_per_conv:
                    cid = clients[k].predict(content[:2000], cid, api_name="/chat")["conversation_id"]
                    turns += 1
            n += turns
        return n

    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            done = sum(pool.map(worker, range(concurrency)))
        return done, time.perf_counter() - started
    finally:
        for client in clients:
            client.close()


def throughput(n_convs: int, turns_per_conv: int, concurrency: int, rounds: int, every: int) -> None:
    convs = with_personal_data(conversations(n_convs), every)
    rates: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for redact in (False, True):
                process, url, start_s = start_app(Path(tmp) / f"data-{r}-{redact}", redact)
                try:
                    drive(url, convs[:concurrency], 2, concurrency)  # warm up (first requests, caches)
                    turns, seconds = drive(url, convs, turns_per_conv, concurrency)
                finally:
                    process.terminate()
                    process.wait(60)
                rates[redact].append(turns / seconds)
                print(
                    f"app round {r + 1}, redaction {'on ' if redact else 'off'}: {turns} turns in {seconds:.1f} s = "
                    f"{turns / seconds:.1f} turns/s (started in {start_s:.1f} s)"
                )
    off, on = statistics.mean(rates[False]), statistics.mean(rates[True])
    print(f"chat throughput, redaction on / off: {on:.1f} / {off:.1f} turns/s = {on / off:.2f}")


def main() -> None:
    from loguru import logger

    logger.remove()  # the redactor's per-record debug lines would be timed too
    logger.add(sys.stderr, level="WARNING")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=300, help="conversations for the gate cost")
    parser.add_argument("--chat-conversations", type=int, default=40, help="conversations driven through the app")
    parser.add_argument("--chat-turns", type=int, default=4, help="turns per driven conversation (at most)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2, help="off/on rounds through the app")
    parser.add_argument("--personal-every", type=int, default=5, help="personal data in every N-th user message")
    args = parser.parse_args()
    print(f"load before: {uptime()}")
    print(f"personal data added to 1 in {args.personal_every} user messages")
    gate_cost(args.conversations, args.personal_every)
    throughput(args.chat_conversations, args.chat_turns, args.concurrency, args.rounds, args.personal_every)
    print(f"load after: {uptime()}")


if __name__ == "__main__":
    main()
