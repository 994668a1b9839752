"""Which server files a request may name: only files uploaded to this app, nothing else, ever.

A chat message can carry files, and Gradio's page events send the whole chat back with every
click, file parts included (``{"path": ..., "meta": {"_type": "gradio.FileData"}}``). Anyone can
put any path there. Gradio's own check (``processing_utils._check_allowed``) is skipped while
``demo.has_launched`` is False, which is always the case for an app mounted on our own uvicorn,
so this module is the rule every entry point applies (the request guard, the page, the API):

- the path is a local path (no URL: the server never fetches on a client's behalf);
- it lies inside Gradio's upload folder, where uploads land under a directory named by a keyed
  hash of their content (a path there is known only to whoever uploaded the file or was shown it);
- no part of it below the upload folder is a symlink, and it is a regular file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from gradio.utils import get_upload_folder

URL_PREFIXES = ("http:", "https:", "ftp:", "file:", "data:", "//")


class UploadError(ValueError):
    """A file reference that is not an upload to this app. The message is safe to show."""


def upload_folder() -> Path:
    """Gradio's upload folder (``GRADIO_TEMP_DIR``, default ``<tmp>/gradio``), as an absolute path."""
    return Path(os.path.abspath(get_upload_folder()))


def uploaded_file(path: object, folder: Path | None = None) -> Path:
    """``path`` as an absolute path, if it names a regular file uploaded to this app.

    Args:
        path: what the client sent as a file's path.
        folder: the upload folder (default: :func:`upload_folder`).
    Raises:
        UploadError: for a non-string, a URL, a path outside the upload folder, a symlink
            anywhere below it, or something that is not a regular file. The message names the
            file by its base name only, never a server path.
    """
    if not isinstance(path, str) or not path or "\x00" in path:
        raise UploadError("each file must be a file uploaded to this app (use handle_file in the client)")
    name = os.path.basename(path)[:80]
    if path.lower().startswith(URL_PREFIXES):
        raise UploadError(f"file {name!r} is a URL; upload the file itself")
    root = folder or upload_folder()
    candidate = Path(os.path.abspath(path))
    refused = UploadError(f"file {name!r} was not uploaded to this app")
    if candidate == root or not candidate.is_relative_to(root):
        raise refused
    current, mode = root, 0
    for part in candidate.relative_to(root).parts:  # lstat each step: a symlink anywhere is refused
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except OSError:
            raise refused from None
        if stat.S_ISLNK(mode):
            raise refused
    if not stat.S_ISREG(mode):
        raise refused
    return candidate
