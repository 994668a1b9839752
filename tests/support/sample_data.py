"""Locate the shared sample data (real chat datasets used to run and test the app).

The shared directory holds ``hh-rlhf-harmless-base-test.jsonl.gz`` (Anthropic
hh-rlhf, harmless-base test split) and ``fastchat-dummy-conversation.json``
(FastChat sample conversations, ShareGPT format); see its ``README.md``.
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA_ENV = "FEEDBACK_SHARED_DATA"
HH_RLHF_TEST_NAME = "hh-rlhf-harmless-base-test.jsonl.gz"
FASTCHAT_DUMMY_NAME = "fastchat-dummy-conversation.json"

HH_RLHF_REPO_ID = "Anthropic/hh-rlhf"
HH_RLHF_TEST_FILENAME = "harmless-base/test.jsonl.gz"

_REPO_ROOT = Path(__file__).resolve().parents[2]  # tests/support/sample_data.py -> the repo root
_TRUE_VALUES = {"1", "ON", "YES", "TRUE"}  # as huggingface_hub reads HF_HUB_OFFLINE


def shared_data_dir() -> Path | None:
    """Return the shared data directory, or None when there is none.

    Candidates, first existing directory wins: ``$FEEDBACK_SHARED_DATA`` (when set
    and non-empty), then ``<repo root>/../shared/data`` where the repo root is
    the parent of the ``feedback`` package.
    """
    candidates = []
    from_env = os.environ.get(SHARED_DATA_ENV)
    if from_env:
        candidates.append(Path(from_env).expanduser())
    candidates.append(_REPO_ROOT.parent / "shared" / "data")
    return next((path for path in candidates if path.is_dir()), None)


def _shared_file(name: str) -> Path | None:
    """Return ``<shared data dir>/name`` if that file exists, else None."""
    directory = shared_data_dir()
    if directory is None or not (directory / name).is_file():
        return None
    return directory / name


def _where_looked(name: str) -> str:
    """Describe where ``name`` was looked for, for FileNotFoundError messages."""
    directory = shared_data_dir()
    place = (
        f"in {directory}"
        if directory
        else (f"(no shared data directory: set ${SHARED_DATA_ENV} or create {_REPO_ROOT.parent / 'shared' / 'data'})")
    )
    return f"{name} not found {place}"


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set to a true value (1/ON/YES/TRUE, any case)."""
    return os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE_VALUES


def hh_rlhf_test_file() -> Path:
    """Return the hh-rlhf harmless-base test file (``.jsonl.gz``).

    Looks in :func:`shared_data_dir`; when absent and not offline, downloads
    ``harmless-base/test.jsonl.gz`` from the ``Anthropic/hh-rlhf`` dataset on
    the Hugging Face Hub (into the Hub cache) and returns the cached path.

    Raises:
        FileNotFoundError: the file is not in the shared directory and
            ``HF_HUB_OFFLINE`` is set, or the download failed (reason included).
    """
    found = _shared_file(HH_RLHF_TEST_NAME)
    if found is not None:
        return found
    if hub_offline():
        raise FileNotFoundError(
            f"{_where_looked(HH_RLHF_TEST_NAME)}, and HF_HUB_OFFLINE is set so it is not downloaded"
        )
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id=HH_RLHF_REPO_ID, filename=HH_RLHF_TEST_FILENAME, repo_type="dataset"))
    except (OSError, ValueError) as exc:  # hub HTTP/entry errors are OSError, validation ValueError
        raise FileNotFoundError(
            f"{_where_looked(HH_RLHF_TEST_NAME)}, and downloading {HH_RLHF_TEST_FILENAME} "
            f"from {HH_RLHF_REPO_ID} failed: {exc}"
        ) from exc


def fastchat_dummy_file() -> Path:
    """Return FastChat's sample conversations (``fastchat-dummy-conversation.json``).

    Its public source is ``data/dummy_conversation.json`` in the GitHub repo
    lm-sys/FastChat; it is not on the Hugging Face Hub, so it is never downloaded.

    Raises:
        FileNotFoundError: the file is not in the shared data directory.
    """
    found = _shared_file(FASTCHAT_DUMMY_NAME)
    if found is None:
        raise FileNotFoundError(
            f"{_where_looked(FASTCHAT_DUMMY_NAME)}; copy data/dummy_conversation.json "
            f"from the GitHub repo lm-sys/FastChat there (it is not on the Hugging Face Hub)"
        )
    return found
