"""A data dir that is read-only or full: one clear line at start, or 'could not save' while serving.

The data dir is a small tmpfs mounted for the test (root only: as root, file permissions do not
stop writes, so only a read-only or full file system shows what users see), and the app is the
production one, ``python app.py`` in a subprocess.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import AppProcess, read_records
from gradio_client import Client, handle_file

from schemas.records import RECORD_TYPES

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mount") is None,
    reason="needs root and mount(8) to make a small tmpfs data dir (CI runs as root)",
)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, unmounted after the test."""
    mount = tmp_path / "fs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` to the last byte; returns the filler file."""
    filler = folder / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        size = 1 << 20
        while size:
            try:
                os.write(fd, b"\0" * size)
            except OSError:
                size //= 2
    finally:
        os.close(fd)
    return filler


def start_fails(env: dict[str, str], log: Path) -> tuple[int, str]:
    """Start ``python app.py`` expecting it to refuse: its exit code and output."""
    return AppProcess(env, log / "refused-start.log").wait_exit()


def test_a_read_only_data_dir_stops_the_start_with_one_clear_line(small_fs, tmp_path):
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    code, output = start_fails({"FEEDBACK_DATA_DIR": str(small_fs / "data"), "GRADIO_SERVER_PORT": "1"}, tmp_path)
    assert code == 1
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "cannot start" in line]
    assert len(errors) == 1 and "cannot be written" in errors[0] and "Read-only file system" in errors[0]


def test_a_full_data_dir_stops_the_start(small_fs, tmp_path):
    (small_fs / "data").mkdir()
    fill(small_fs)
    code, output = start_fails({"FEEDBACK_DATA_DIR": str(small_fs / "data"), "GRADIO_SERVER_PORT": "1"}, tmp_path)
    assert code == 1 and "Traceback" not in output
    assert "No space left on device" in output and "serving on" not in output


def test_bad_settings_name_the_variable_in_one_line_each(tmp_path):
    code, output = start_fails({"FEEDBACK_SYNC_EVERY": "1e-9", "FEEDBACK_MAX_UPLOAD_BYTES": "lots"}, tmp_path)
    assert code == 2 and "Traceback" not in output
    lines = sorted(output.strip().splitlines())
    assert len(lines) == 2 and lines[0].startswith("FEEDBACK_MAX_UPLOAD_BYTES='lots': ")
    assert lines[1] == "FEEDBACK_SYNC_EVERY='1e-9': Input should be greater than or equal to 0.005"
    code, output = start_fails({"FEEDBACK_SYNC_EVERY": "inf"}, tmp_path)
    assert code == 2 and output.startswith("FEEDBACK_SYNC_EVERY='inf': ")
    code, output = start_fails({"FEEDBACK_RESPONDER": "gpt"}, tmp_path)
    assert code == 2 and output.strip() == "FEEDBACK_RESPONDER='gpt': Input should be 'echo', 'openai' or 'replay'"
    code, output = start_fails({"FEEDBACK_REVIEW_AUTH": "ann-without-a-password"}, tmp_path)
    assert code == 2 and output.startswith("FEEDBACK_REVIEW_AUTH: entries must be user:password")
    assert "ann-without-a-password" not in output  # a secret is never echoed


def test_a_disk_that_fills_up_mid_run_says_could_not_save_and_recovers(small_fs, tmp_path):
    data = small_fs / "data"
    upload = tmp_path / "photo.bin"
    upload.write_bytes(os.urandom(300_000))
    env = {
        "FEEDBACK_DATA_DIR": str(data),
        "GRADIO_TEMP_DIR": str(tmp_path / "uploads"),
        "FEEDBACK_SHARD_MAX_BYTES": "1024",  # every record needs a new block: a full disk refuses it at once
    }
    app = AppProcess(env, tmp_path / "app.log")
    try:
        client = Client(app.wait_ready().url, verbose=False)
        first = client.predict({"text": "before", "files": []}, "", api_name="/chat")
        cid = first["conversation_id"]
        filler = fill(small_fs)
        with pytest.raises(Exception, match="could not save"):
            client.predict({"text": "while full", "files": []}, cid, api_name="/chat")
        with pytest.raises(Exception, match="could not save"):
            client.predict({"text": "a file", "files": [handle_file(str(upload))]}, cid, api_name="/chat")
        with pytest.raises(Exception, match="could not save"):
            client.predict(cid, first["message_id"], "like", "", "", api_name="/rate")
        assert not list(data.rglob(".tmp-*"))  # the failed upload copy is gone
        filler.unlink()  # space returns
        after = client.predict({"text": "after", "files": [handle_file(str(upload))]}, cid, api_name="/chat")
        client.predict(cid, after["message_id"], "like", "", "", api_name="/rate")
    finally:
        app.terminate(60)
    turns = read_records(data, "turns")
    assert [t["messages"][-1]["content"] for t in turns if t["conversation_id"] == cid] == ["before", "after"]
    assert (data / turns[-1]["messages"][-1]["files"][0]).read_bytes() == upload.read_bytes()
    assert [r["message_id"] for r in read_records(data, "ratings")] == [after["message_id"]]
    log = app.log()
    assert "could not write" in log and "Traceback" not in log
    for kind, model in RECORD_TYPES.items():
        for shard in (data / kind).glob("*.jsonl"):
            for line in shard.read_bytes().splitlines():
                model.model_validate_json(line)
