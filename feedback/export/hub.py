"""The Hub side of an export: a dataset repo as the source, and pushing the result with a card.

``HF_ENDPOINT`` and ``HF_TOKEN`` are read when these functions run (not when a library was
imported), so a test can point them at a local Hub-compatible server.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from huggingface_hub import HfApi, snapshot_download
from huggingface_hub.errors import HfHubHTTPError
from loguru import logger

from feedback.export.build import Export
from feedback.export.card import dataset_card
from schemas.records import RECORD_TYPES, REPO_ID_PATTERN
_REPO_ID = re.compile(REPO_ID_PATTERN)
SOURCE_KINDS = tuple(RECORD_TYPES)
"""The record folders an export reads."""
SOURCE_PATTERNS = [f"{kind}/*" for kind in SOURCE_KINDS]


def hub_endpoint() -> str | None:
    """``$HF_ENDPOINT`` now (None: huggingface_hub's default)."""
    return os.environ.get("HF_ENDPOINT") or None


def resolve_source(source: str, *, token: str | None = None, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """A local data dir for ``source``: the folder itself, or a Hub dataset repo's snapshot.

    Args:
        source: a directory holding ``turns/``, ``ratings/`` or ``flags/``, or a dataset repo id
            (``owner/name``), downloaded (only those folders) into the Hub cache or ``cache_dir``.
        token: a Hub token (default: ``$HF_TOKEN`` / the saved login).

    Raises:
        ValueError: "SOURCE is neither a data dir nor a Hub dataset repo id", or a directory with
            none of the record folders.
        FileNotFoundError: the Hub has no such dataset repo (or refuses the token).
    """
    path = Path(source).expanduser()
    if path.is_dir():
        if not any((path / kind).is_dir() for kind in SOURCE_KINDS):
            raise ValueError(f"SOURCE {source!r} is a directory without {', '.join(f'{k}/' for k in SOURCE_KINDS)}")
        return path
    if not _REPO_ID.match(source):
        raise ValueError(f"SOURCE {source!r} is neither a data dir nor a Hub dataset repo id (owner/name)")
    logger.info("downloading {} from {}", source, hub_endpoint() or "the Hub")
    try:
        folder = snapshot_download(source, repo_type="dataset", allow_patterns=SOURCE_PATTERNS, token=token,
                                   cache_dir=cache_dir, endpoint=hub_endpoint())
    except (HfHubHTTPError, OSError) as error:
        raise FileNotFoundError(f"SOURCE {source!r} is not a local data dir, and reading it as a Hub dataset repo "
                                f"failed: {error}") from error
    return Path(folder)


def push_export(export: Export, repo_id: str, *, source: str, private: bool = True, token: str | None = None) -> str:
    """Push the export's ``DatasetDict`` (Parquet, one file per split) and its dataset card.

    Earlier files under ``data/`` are replaced, so the repo holds this export only.

    Returns:
        The URL of the commit.
    """
    api = HfApi(endpoint=hub_endpoint(), token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    dataset = export.to_dataset_dict()
    with tempfile.TemporaryDirectory(prefix="export-push-") as folder:
        Path(folder, "data").mkdir()
        for split, part in dataset.items():
            if part.num_rows:
                part.to_parquet(Path(folder, "data", f"{split}-00000-of-00001.parquet"))
        Path(folder, "README.md").write_text(dataset_card(export, repo_id=repo_id, source=source), encoding="utf-8")
        commit = api.upload_folder(
            repo_id=repo_id, repo_type="dataset", folder_path=folder, delete_patterns=["data/*"],
            commit_message=f"Export {export.format} rows ({sum(export.stats['rows'].values())} rows)",
        )
    logger.info("pushed {} to {}", export.format, repo_id)
    return str(commit)
