"""A dataset repo as a source of records: read in place, or a working copy.

- :func:`resolve_source` (exports): a local data dir as is, or, for a repo, a small folder standing
  for it (:func:`feedback.hub.remote.remote_stub`) that the export's reader reads through
  ``HfFileSystem``: only the files and columns it needs, nothing downloaded whole.
- :func:`snapshot`: the repo's record files downloaded into the Hub cache (kept for callers that
  want a local copy).
- :func:`working_copy` (``stats --data-dir``): the repo pulled into a folder of its own, ``--data-dir``
  or :func:`review_dir`, as JSONL shards.
- ``review``/``stats --source owner/name`` read the repo in place too (``feedback.cli.review``).

Nothing is ever written to the current directory.
"""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import constants, snapshot_download
from huggingface_hub.errors import HfHubHTTPError
from loguru import logger

from feedback.hub.client import hub_endpoint, hub_token, is_repo_id, use_hub_timeout
from feedback.hub.transfer import pull_repo
from schemas.records import RECORD_TYPES

SOURCE_KINDS = tuple(RECORD_TYPES)
"""The record folders a source is read from."""
SOURCE_PATTERNS = [f"{kind}/**" for kind in SOURCE_KINDS]
REVIEW_FOLDER = "chat-feedback-review"
"""The folder under ``$HF_HOME`` that holds the working copies of :func:`review_dir`."""


def require_source(source: str) -> Path | None:
    """``source`` as a local directory, or None when it is a Hub dataset repo id (``owner/name``).

    Raises:
        ValueError: "SOURCE is neither a data dir nor a Hub dataset repo id".
    """
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if not is_repo_id(source):
        raise ValueError(f"SOURCE {source!r} is neither a data dir nor a Hub dataset repo id (owner/name)")
    return None


def resolve_source(
    source: str,
    *,
    token: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
) -> Path:
    """A local data dir for ``source``: the folder itself, or a folder standing for a Hub dataset repo
    at its current commit (see :func:`feedback.hub.remote.remote_stub`; ``cache_dir`` is unused).

    Args:
        source: a directory holding ``turns/``, ``ratings/``, ``flags/``, ``reviews/`` or ``deletions/``, or a dataset
            repo id (``owner/name``), read in place through ``HfFileSystem``.
        token: a Hub token (see :func:`~feedback.hub.client.hub_token`).
        timeout: seconds a Hub call may wait on the network (default ``$FEEDBACK_HUB_TIMEOUT``, else 30).
    Raises:
        ValueError: "SOURCE is neither a data dir nor a Hub dataset repo id", or a directory with
            none of the record folders.
        FileNotFoundError: the Hub has no such dataset repo (or refuses the token).
    """
    path = require_source(source)
    if path is not None:
        if not any((path / kind).is_dir() for kind in SOURCE_KINDS):
            raise ValueError(f"SOURCE {source!r} is a directory without {', '.join(f'{k}/' for k in SOURCE_KINDS)}")
        return path
    from feedback.hub.remote import HubRepo, remote_stub

    use_hub_timeout(timeout)
    logger.info("reading {} in place from {}", source, hub_endpoint() or "the Hub")
    return remote_stub(HubRepo(source, token=token))


def snapshot(
    repo_id: str,
    *,
    token: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
) -> Path:
    """The record folders of dataset repo ``repo_id``, downloaded into the Hub cache (or ``cache_dir``);
    returns the snapshot folder (its files are links into the cache: read, never write).

    Raises:
        FileNotFoundError: the Hub has no such dataset repo (or refuses the token).
        ValueError: for a bad ``timeout``.
    """
    use_hub_timeout(timeout)
    logger.info("downloading {} from {} into the Hugging Face cache", repo_id, hub_endpoint() or "the Hub")
    try:
        folder = snapshot_download(
            repo_id,
            repo_type="dataset",
            allow_patterns=SOURCE_PATTERNS,
            token=hub_token(token),
            cache_dir=cache_dir,
            endpoint=hub_endpoint(),
        )
    except (HfHubHTTPError, OSError) as error:
        raise FileNotFoundError(
            f"SOURCE {repo_id!r} is not a local data dir, and reading it as a Hub dataset repo failed: {error}"
        ) from error
    return Path(folder)


def review_dir(repo_id: str) -> Path:
    """Where :func:`working_copy` puts ``repo_id`` by default: ``$HF_HOME/chat-feedback-review/<owner>__<name>``
    (``$HF_HOME`` defaults to ``~/.cache/huggingface``); beside the Hub cache, not inside it, whose
    layout belongs to ``huggingface_hub``."""
    return Path(constants.HF_HOME) / REVIEW_FOLDER / repo_id.replace("/", "__")


def working_copy(
    source: str, data_dir: Path | None = None, *, token: str | None = None, timeout: float | None = None
) -> Path:
    """A data dir for ``source`` that records can be appended to: the directory itself, or the dataset
    repo ``source`` pulled into ``data_dir`` (default :func:`review_dir`; pulling again updates it
    and keeps what was added locally).

    Raises:
        ValueError: when ``source`` is neither a directory nor an ``owner/name`` repo id.
        huggingface_hub.errors.HfHubHTTPError: when the repo cannot be read.
    """
    path = require_source(source)
    if path is not None:
        return path
    target = data_dir if data_dir is not None else review_dir(source)
    logger.info("pulling {} into {}", source, target)
    return pull_repo(source, target, token=token, timeout=timeout)
