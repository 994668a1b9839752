"""``HubServer``: the test Hub on a free port, with fault injection and request records."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from starlette.requests import Request

from support.hub.faults import RequestRecord, _Faults, _Rule
from support.hub.routes import _HubApp
from support.hub.storage import HubError, HubStore, Repo

# --------------------------------------------------------------------------------- public class


class _Uvicorn(uvicorn.Server):
    """uvicorn server that signals a thread event once it accepts connections."""

    def __init__(self, config: uvicorn.Config, started: threading.Event):
        super().__init__(config)
        self._started_event = started

    async def startup(self, sockets=None) -> None:
        await super().startup(sockets=sockets)
        self._started_event.set()


class HubServer:
    """A Hub-compatible server on ``host:port`` (port 0 = a free port), data under ``root``.

    Args:
        root: directory for blobs, LFS objects and commit logs (created if needed; reloaded).
        host, port: where to listen; ``endpoint`` is ``http://host:port`` once started.
        user: namespace used for repo ids without an owner, commit authors and whoami.
        tree_page_size, commits_page_size: items per page of tree / commit listings (a ``Link``
            header points to the next page), small values exercise client pagination.
        lfs_threshold: preupload answers ``"lfs"`` for files larger than this many bytes (None:
            always ``"regular"``). LFS uploads need ``HF_HUB_DISABLE_XET=1`` in the client.
        require_token: write requests without ``Authorization: Bearer ...`` answer 401.

    ``protect_convert_refs`` (an attribute, False by default): when True, deleting a conversion branch
    (``refs/convert/...``) answers 403, as the Hub does when it refuses.

    Observation: :meth:`commits`, :meth:`files`, :attr:`total_upload_bytes`, :attr:`request_log`,
    :meth:`token_was_sent`. Faults: :meth:`fail`, :meth:`hang`, :meth:`clear_faults`.
    Write requests are: repo create/delete, preupload, commit, LFS batch and LFS object PUT.
    """

    def __init__(
        self,
        root: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        user: str = "test-user",
        tree_page_size: int = 1000,
        commits_page_size: int = 50,
        lfs_threshold: int | None = 10 * 1024 * 1024,
        require_token: bool = True,
    ):
        self.store = HubStore(Path(root))
        self.host, self.port, self.user = host, port, user
        self.tree_page_size, self.commits_page_size = tree_page_size, commits_page_size
        self.lfs_threshold, self.require_token = lfs_threshold, require_token
        self.protect_convert_refs = False
        self.endpoint = ""
        self._faults = _Faults()
        self._held = 0
        self._held_changed = threading.Condition()
        self._stats_lock = threading.Lock()
        self._log: list[RequestRecord] = []
        self._token_digests: set[str] = set()
        self._server: _Uvicorn | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None

    # ---- lifecycle
    def start(self) -> HubServer:
        """Start serving in a daemon thread; returns once connections are accepted.

        Raises RuntimeError if the server did not come up within 10 seconds.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self.endpoint = f"http://{self.host}:{self.port}"
        config = uvicorn.Config(
            _HubApp(self),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            timeout_keep_alive=30,
        )
        started = threading.Event()
        self._server = _Uvicorn(config, started)
        self._thread = threading.Thread(target=self._serve, args=(sock,), name="hubserver", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("HubServer did not start within 10 s")
        return self

    def _serve(self, sock: socket.socket) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._release = asyncio.Event()
            await self._server.serve(sockets=[sock])

        asyncio.run(main())

    def stop(self) -> None:
        """Stop serving (pending hangs are released) and wait for the thread to end."""
        if self._server is None:
            return
        self.clear_faults()
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ---- faults
    def fail(
        self,
        status: int,
        *,
        times: int | None = None,
        paths: str | None = None,
        reads: bool = False,
        retry_after: float | None = None,
    ) -> None:
        """Answer ``status`` to the next ``times`` write requests (all, until cleared, if None).

        ``paths`` is a regex searched in the decoded URL path to narrow the requests;
        ``reads=True`` applies the fault to read requests too.  ``retry_after`` sets a
        ``Retry-After`` header (defaults to 0 for 429; clients then wait 1 s before retrying).
        """
        if retry_after is None and status == 429:
            retry_after = 0
        pattern = re.compile(paths) if paths else None
        self._faults.add(_Rule(status, 0.0, times, pattern, reads, retry_after))

    def hang(self, seconds: float, *, times: int | None = None, paths: str | None = None, reads: bool = False) -> None:
        """Delay the answers of the next ``times`` write requests by ``seconds`` (a slow Hub).

        Other requests are served meanwhile; :meth:`clear_faults` or :meth:`stop` release the
        waiting requests at once.  ``paths`` / ``reads`` select requests as in :meth:`fail`.
        """
        pattern = re.compile(paths) if paths else None
        self._faults.add(_Rule(None, seconds, times, pattern, reads))

    def clear_faults(self) -> None:
        """Remove every fault rule and release requests currently held by :meth:`hang`."""
        self._faults.clear()
        if self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._release_waiters)

    def _release_waiters(self) -> None:
        self._release.set()
        self._release = asyncio.Event()

    async def _hold(self, seconds: float) -> None:
        """Keep a request waiting ``seconds`` (or until released), counted in :attr:`held`."""
        with self._held_changed:
            self._held += 1
            self._held_changed.notify_all()
        try:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._release.wait(), timeout=seconds)
        finally:
            with self._held_changed:
                self._held -= 1
                self._held_changed.notify_all()

    @property
    def held(self) -> int:
        """How many requests :meth:`hang` is holding right now."""
        with self._held_changed:
            return self._held

    def wait_held(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Block until at least ``count`` requests are held by :meth:`hang`; False on timeout."""
        with self._held_changed:
            return self._held_changed.wait_for(lambda: self._held >= count, timeout)

    # ---- observation
    def commits(self, repo_id: str, repo_type: str = "dataset") -> list[dict[str, Any]]:
        """Every commit of the repo, oldest first: dicts with ``oid``, ``parent``, ``summary``,
        ``description``, ``time`` (POSIX), ``files_added``, ``files_deleted`` and
        ``bytes_uploaded`` (decoded regular-file bytes + newly uploaded LFS bytes).

        Raises KeyError if the repo does not exist.
        """
        with self.store.lock:
            repo = self._repo_or_key_error(repo_id, repo_type)
            return [c.summary_dict() for c in repo.commits.values()]

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "dataset") -> dict[str, bytes]:
        """The tree at ``revision`` (branch or commit oid) as ``{path: content}``.

        Raises KeyError if the repo or revision does not exist.
        """
        with self.store.lock:
            repo = self._repo_or_key_error(repo_id, repo_type)
            try:
                tree = dict(repo.resolve(revision).tree)
            except HubError:
                raise KeyError(f"{repo_id}@{revision}") from None
        return {path: self.store.read(entry) for path, entry in sorted(tree.items())}

    def convert_branch(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        name: str = "parquet",
        revision: str = "main",
        repo_type: str = "dataset",
    ) -> str:
        """Do what the Hub's dataset viewer does after a commit: make ``refs/convert/<name>`` (from
        ``revision``'s commit when it does not exist yet) and commit ``files`` to it (its converted copy
        of the data); returns the new commit oid. Raises KeyError if the repo does not exist."""
        import base64

        branch = f"refs/convert/{name}"
        with self.store.lock:
            repo = self._repo_or_key_error(repo_id, repo_type)
            if branch not in repo.refs:
                self.store.set_ref(repo, branch, repo.resolve(revision).oid)
            ops = [
                ("file", {"path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"})
                for path, data in files.items()
            ]
            return self.store.commit(repo, branch, {"summary": "Update parquet files"}, ops).oid

    def head(self, repo_id: str, branch: str = "main", repo_type: str = "dataset") -> str:
        """The commit oid ``branch`` points to. Raises KeyError if missing."""
        with self.store.lock:
            return self._repo_or_key_error(repo_id, repo_type).refs[branch]

    def _repo_or_key_error(self, repo_id: str, repo_type: str) -> Repo:
        repo = self.store.repos.get((repo_type, repo_id))
        if repo is None:
            raise KeyError(f"{repo_type} {repo_id}")
        return repo

    @property
    def total_upload_bytes(self) -> int:
        """Bytes received as file content since this server opened its root: decoded regular
        files of accepted commits + LFS object PUTs (rejected commits do not count)."""
        with self.store.lock:
            return self.store.regular_bytes + self.store.lfs_bytes

    @property
    def request_log(self) -> list[RequestRecord]:
        """A copy of every answered request, in answer order."""
        with self._stats_lock:
            return list(self._log)

    def token_was_sent(self, token: str) -> bool:
        """Whether any request carried ``Authorization: Bearer <token>`` (tokens are kept hashed)."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        with self._stats_lock:
            return digest in self._token_digests

    # ---- called by the app
    def _record(self, request: Request, status: int) -> None:
        with self._stats_lock:
            self._log.append(RequestRecord(request.method, request.url.path, status))

    def _note_token(self, authorization: str | None) -> None:
        if authorization and authorization.lower().startswith("bearer "):
            digest = hashlib.sha256(authorization[7:].strip().encode()).hexdigest()
            with self._stats_lock:
                self._token_digests.add(digest)


@contextlib.contextmanager
def running_hub(root: Path, **options: Any) -> Iterator[HubServer]:
    """Context manager: a started :class:`HubServer` (``options`` as its keyword arguments)."""
    server = HubServer(root, **options).start()
    try:
        yield server
    finally:
        server.stop()
