"""A small Hugging Face Hub-compatible HTTP server for offline tests.

The real ``huggingface_hub`` and ``datasets`` clients can create repos, commit (regular and LFS
files), list trees and commits, and download files against it.  Every commit is an immutable
snapshot addressable by its 40-hex oid.  Blobs and the commit history are kept on disk under the
directory given to :class:`HubServer`, so a new server started on the same directory sees the
same repos.

Usage::

    with running_hub(tmp_path) as hub:
        api = HfApi(endpoint=hub.endpoint, token="hf_test")
        api.create_repo("me/logs", repo_type="dataset")
        hub.fail(503, times=1)          # the next write request answers 503
        hub.files("me/logs")            # {".gitattributes": b"..."}

Wire format reference: ``shared/docs/hub-api.md``.  Not supported: pull requests, branch and tag
creation, Xet storage (clients must use ``HF_HUB_DISABLE_XET=1`` for files that preupload answers
as ``"lfs"``), multipart LFS uploads, gated repos, ``expand=true`` metadata (last commit, security).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterator, NamedTuple
from urllib.parse import parse_qs, unquote

import logging

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["HubServer", "RequestRecord", "running_hub", "git_blob_sha1"]

logger = logging.getLogger(__name__)

GITATTRIBUTES = b"""*.7z filter=lfs diff=lfs merge=lfs -text
*.arrow filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.gz filter=lfs diff=lfs merge=lfs -text
*.parquet filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
*.zip filter=lfs diff=lfs merge=lfs -text
*.zst filter=lfs diff=lfs merge=lfs -text
"""
"""Content of the ``.gitattributes`` file of every new repo's initial commit."""

_TYPE_FROM_PLURAL = {"models": "model", "datasets": "dataset", "spaces": "space"}
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_OID_RE = re.compile(r"[0-9a-f]{40}")
_SHORT_OID_RE = re.compile(r"[0-9a-f]{7,40}")
_RANGE_RE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


def git_blob_sha1(data: bytes) -> str:
    """Return the git blob oid of ``data``: ``sha1(b"blob <len>\\0" + data)`` as 40 hex chars."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    """Return the git-lfs pointer text stored in git for an LFS object."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _iso(timestamp: float) -> str:
    """Format a POSIX timestamp the way the Hub does (``2024-01-02T03:04:05.678Z``)."""
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class HubError(Exception):
    """An error answer: HTTP ``status``, optional ``X-Error-Code`` and known ``X-Repo-Commit``."""

    def __init__(self, status: int, message: str, code: str | None = None, commit: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.commit = status, message, code, commit


# --------------------------------------------------------------------------------------- storage


@dataclass(frozen=True)
class Entry:
    """One file of a tree: git ``oid`` (of the content, or of the LFS pointer), ``size`` of the
    content, and for LFS files the content's ``lfs_sha256`` and the pointer's size."""

    oid: str
    size: int
    lfs_sha256: str | None = None
    pointer_size: int | None = None

    def to_json(self, path: str) -> dict[str, Any]:
        """The Hub's tree / paths-info item for this file at ``path``."""
        item: dict[str, Any] = {"type": "file", "oid": self.oid, "size": self.size, "path": path}
        if self.lfs_sha256 is not None:
            item["lfs"] = {"oid": self.lfs_sha256, "size": self.size, "pointerSize": self.pointer_size}
        return item

    def to_record(self) -> dict[str, Any]:
        """Serialisable form used in the on-disk commit log."""
        return {"oid": self.oid, "size": self.size, "lfs": self.lfs_sha256, "pointerSize": self.pointer_size}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Entry":
        """Inverse of :meth:`to_record`."""
        return cls(record["oid"], record["size"], record.get("lfs"), record.get("pointerSize"))


@dataclass
class Commit:
    """An immutable snapshot: ``tree`` maps every file path to its :class:`Entry`."""

    oid: str
    parent: str | None
    branch: str
    summary: str
    description: str
    time: float
    tree: dict[str, Entry]
    changes: dict[str, Entry | None]
    bytes_uploaded: int
    _directories: dict[str, str] | None = field(default=None, repr=False, compare=False)

    def directories(self) -> dict[str, str]:
        """Every directory of the tree mapped to its oid (computed once: commits are immutable)."""
        if self._directories is None:
            self._directories = _directories(self.tree)
        return self._directories

    def to_record(self) -> dict[str, Any]:
        """One line of the on-disk commit log (the tree is stored as changes to the parent's)."""
        return {
            "oid": self.oid, "parent": self.parent, "branch": self.branch, "summary": self.summary,
            "description": self.description, "time": self.time, "bytesUploaded": self.bytes_uploaded,
            "changes": {p: (e.to_record() if e else None) for p, e in self.changes.items()},
        }

    def summary_dict(self) -> dict[str, Any]:
        """The observation shape returned by :meth:`HubServer.commits`."""
        return {
            "oid": self.oid, "parent": self.parent, "summary": self.summary,
            "description": self.description, "time": self.time,
            "files_added": sum(1 for e in self.changes.values() if e is not None),
            "files_deleted": sum(1 for e in self.changes.values() if e is None),
            "bytes_uploaded": self.bytes_uploaded,
        }


@dataclass
class Repo:
    """A repo: its commits by oid (in creation order) and branch heads."""

    repo_type: str
    repo_id: str
    private: bool
    created: float
    directory: Path
    commits: dict[str, Commit] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit:
        """The commit for a branch name, a full oid or an unambiguous oid prefix (7+ hex).

        Raises HubError 404 ``RevisionNotFound`` when nothing matches.
        """
        if revision in self.refs:
            return self.commits[self.refs[revision]]
        if revision in self.commits:
            return self.commits[revision]
        if _SHORT_OID_RE.fullmatch(revision):
            found = [c for oid, c in self.commits.items() if oid.startswith(revision)]
            if len(found) == 1:
                return found[0]
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def history(self, head: Commit) -> list[Commit]:
        """``head`` and its ancestors, newest first."""
        chain = [head]
        while chain[-1].parent is not None:
            chain.append(self.commits[chain[-1].parent])
        return chain


class HubStore:
    """Thread-safe repos, blobs and LFS objects, kept in memory and on disk under ``root``.

    Layout: ``blobs/<git sha1>`` (regular files), ``lfs/<sha256>`` (LFS objects) and
    ``repos/<type>s/<owner>/<name>/{repo.json,commits.jsonl}``.  Existing data is loaded at start.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.lock = threading.RLock()
        self.repos: dict[tuple[str, str], Repo] = {}
        self.unclaimed_lfs: set[str] = set()
        self.regular_bytes = 0
        self.lfs_bytes = 0
        for sub in ("blobs", "lfs", "repos"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._load()

    # ---- loading
    def _load(self) -> None:
        for meta_file in sorted(self.root.glob("repos/*/*/*/repo.json")):
            meta = json.loads(meta_file.read_text())
            repo = Repo(meta["type"], meta["id"], meta["private"], meta["created"], meta_file.parent)
            log = meta_file.parent / "commits.jsonl"
            for line in log.read_text().splitlines() if log.exists() else []:
                self._replay(repo, json.loads(line))
            self.repos[(repo.repo_type, repo.repo_id)] = repo

    @staticmethod
    def _replay(repo: Repo, record: dict[str, Any]) -> None:
        parent = repo.commits[record["parent"]] if record["parent"] else None
        changes = {p: (Entry.from_record(e) if e else None) for p, e in record["changes"].items()}
        commit = Commit(
            record["oid"], record["parent"], record["branch"], record["summary"], record["description"],
            record["time"], _apply(parent.tree if parent else {}, changes), changes, record["bytesUploaded"],
        )
        repo.commits[commit.oid] = commit
        repo.refs[commit.branch] = commit.oid

    # ---- repos
    def get(self, repo_type: str, repo_id: str) -> Repo:
        """The repo, or HubError 404 ``RepoNotFound``."""
        with self.lock:
            repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, f"Repository not found: {repo_type} {repo_id}", "RepoNotFound")
        return repo

    def create_repo(self, repo_type: str, repo_id: str, private: bool) -> bool:
        """Create a repo with an initial ``.gitattributes`` commit on ``main``; False if it exists."""
        with self.lock:
            if (repo_type, repo_id) in self.repos:
                return False
            directory = self.root / "repos" / f"{repo_type}s" / repo_id
            directory.mkdir(parents=True, exist_ok=True)
            meta = {"type": repo_type, "id": repo_id, "private": private, "created": time.time()}
            (directory / "repo.json").write_text(json.dumps(meta))
            repo = Repo(repo_type, repo_id, private, meta["created"], directory)
            self.repos[(repo_type, repo_id)] = repo
            entry = self.put_blob(GITATTRIBUTES)
            self._add_commit(repo, "main", "initial commit", "", {".gitattributes": entry}, 0)
            return True

    def delete_repo(self, repo_type: str, repo_id: str) -> None:
        """Delete a repo and its history (blobs stay); HubError 404 if missing."""
        with self.lock:
            repo = self.get(repo_type, repo_id)
            del self.repos[(repo_type, repo_id)]
            shutil.rmtree(repo.directory, ignore_errors=True)

    # ---- objects
    def put_blob(self, data: bytes) -> Entry:
        """Store regular-file content; returns its tree entry."""
        oid = git_blob_sha1(data)
        path = self.root / "blobs" / oid
        if not path.exists():
            _atomic_write(path, data)
        return Entry(oid, len(data))

    def put_lfs(self, sha256: str, data: bytes) -> None:
        """Store an uploaded LFS object; HubError 400 if ``data`` does not hash to ``sha256``."""
        if hashlib.sha256(data).hexdigest() != sha256:
            raise HubError(400, "LFS object content does not match its sha256 oid")
        _atomic_write(self.root / "lfs" / sha256, data)
        with self.lock:
            self.unclaimed_lfs.add(sha256)
            self.lfs_bytes += len(data)

    def lfs_size(self, sha256: str) -> int | None:
        """Size of a stored LFS object, or None if it was never uploaded."""
        path = self.root / "lfs" / sha256
        return path.stat().st_size if path.exists() else None

    def lfs_entry(self, sha256: str, size: int | None) -> Entry:
        """Tree entry for an uploaded LFS object; HubError 422 if it is missing or the size differs."""
        stored = self.lfs_size(sha256)
        if stored is None or (size is not None and size != stored):
            raise HubError(422, f"LFS object {sha256} was not uploaded (or has another size)")
        pointer = _lfs_pointer(sha256, stored)
        return Entry(git_blob_sha1(pointer), stored, sha256, len(pointer))

    def content_path(self, entry: Entry) -> Path:
        """Where the content of a file entry is stored."""
        if entry.lfs_sha256 is not None:
            return self.root / "lfs" / entry.lfs_sha256
        return self.root / "blobs" / entry.oid

    def read(self, entry: Entry) -> bytes:
        """The full content of a file entry."""
        return self.content_path(entry).read_bytes()

    # ---- commits
    def commit(self, repo: Repo, branch: str, header: dict[str, Any], ops: list[tuple[str, dict]]) -> Commit:
        """Apply NDJSON operations on top of ``branch`` and record the new commit.

        ``ops`` are ``(key, value)`` pairs: ``file`` / ``lfsFile`` / ``deletedFile`` /
        ``deletedFolder``.  Serialised by the store lock, so concurrent commits without a
        ``parentCommit`` all land.  Raises HubError 404 (branch or deleted path missing), 412
        (stale ``parentCommit``), 422 (LFS object missing) or 400 (malformed operation).
        """
        with self.lock:
            if branch not in repo.refs:
                raise HubError(404, f"Branch not found: {branch}", "RevisionNotFound")
            head = repo.commits[repo.refs[branch]]
            parent = header.get("parentCommit")
            if parent and not head.oid.startswith(parent):
                raise HubError(412, "A commit has happened since. Please refresh and try again.", commit=head.oid)
            changes, regular = self._changes(head.tree, ops)
            claimed = {e.lfs_sha256 for e in changes.values() if e and e.lfs_sha256} & self.unclaimed_lfs
            lfs = sum(e.size for e in changes.values() if e and e.lfs_sha256 in claimed)
            commit = self._add_commit(repo, branch, header.get("summary") or "",
                                      header.get("description") or "", changes, regular + lfs)
            self.unclaimed_lfs -= claimed
            self.regular_bytes += regular
            return commit

    def _changes(self, tree: dict[str, Entry], ops: list[tuple[str, dict]]) -> tuple[dict, int]:
        """The ``{path: Entry or None}`` changes of ``ops`` on ``tree`` and the regular bytes sent."""
        changes: dict[str, Entry | None] = {}
        regular = 0
        for key, value in ops:
            path = str(value.get("path", "")).strip("/")
            if not path:
                raise HubError(400, f"Operation {key} without a path")
            if key == "file":
                data = _decode_content(value)
                changes[path] = self.put_blob(data)
                regular += len(data)
            elif key == "lfsFile":
                changes[path] = self.lfs_entry(value["oid"], value.get("size"))
            elif key == "deletedFile":
                if _apply(tree, changes).get(path) is None:
                    raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                changes[path] = None
            elif key == "deletedFolder":
                inside = [p for p in _apply(tree, changes) if p.startswith(path + "/")]
                if not inside:
                    raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                changes.update(dict.fromkeys(inside))
            else:
                raise HubError(400, f"Unknown commit operation {key!r}")
        return changes, regular

    def _add_commit(self, repo: Repo, branch: str, summary: str, description: str,
                    changes: dict[str, Entry | None], uploaded: int) -> Commit:
        parent = repo.commits[repo.refs[branch]] if branch in repo.refs else None
        now = time.time()
        seed = json.dumps([parent.oid if parent else None, branch, summary, now, sorted(changes)])
        oid = hashlib.sha1(seed.encode() + os.urandom(16)).hexdigest()
        commit = Commit(oid, parent.oid if parent else None, branch, summary, description, now,
                        _apply(parent.tree if parent else {}, changes), changes, uploaded)
        with open(repo.directory / "commits.jsonl", "a") as log:
            log.write(json.dumps(commit.to_record()) + "\n")
        repo.commits[oid] = commit
        repo.refs[branch] = oid
        return commit


def _apply(tree: dict[str, Entry], changes: dict[str, Entry | None]) -> dict[str, Entry]:
    """A new tree: ``tree`` with ``changes`` applied (``None`` deletes the path)."""
    result = dict(tree)
    for path, entry in changes.items():
        if entry is None:
            result.pop(path, None)
        else:
            result[path] = entry
    return result


def _decode_content(value: dict[str, Any]) -> bytes:
    content = value.get("content", "")
    if value.get("encoding", "base64") == "base64":
        return base64.b64decode(content)
    return content.encode()


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _directories(tree: dict[str, Entry]) -> dict[str, str]:
    """Every directory of ``tree`` mapped to a content-derived oid (40 hex)."""
    hashers: dict[str, Any] = {}
    for path in sorted(tree):
        parts = path.split("/")
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth])
            hashers.setdefault(directory, hashlib.sha1()).update(f"{path}\0{tree[path].oid}\n".encode())
    return {d: h.hexdigest() for d, h in hashers.items()}


# ---------------------------------------------------------------------------------------- faults


class RequestRecord(NamedTuple):
    """One answered request: ``method``, decoded URL ``path`` (no query) and answered ``status``."""

    method: str
    path: str
    status: int


@dataclass
class _Rule:
    """A fault: answer ``status`` (or wait ``delay`` seconds) for matching requests."""

    status: int | None
    delay: float
    remaining: int | None
    paths: re.Pattern | None
    reads: bool
    retry_after: float | None = None

    def matches(self, path: str, is_write: bool) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if not (is_write or self.reads):
            return False
        return self.paths is None or self.paths.search(path) is not None


class _Faults:
    """Thread-safe fault rules, consumed by the server's event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []

    def add(self, rule: _Rule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, path: str, is_write: bool, hang: bool) -> _Rule | None:
        """The first matching fail (or hang) rule, with one use consumed."""
        with self._lock:
            for rule in self._rules:
                if (rule.status is None) == hang and rule.matches(path, is_write):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                    return rule
        return None


# ------------------------------------------------------------------------------------ the server


Handler = Callable[..., Awaitable[Response]]


class _HubApp:
    """The ASGI application: routes on the raw (percent-encoded) path, answers Hub JSON."""

    def __init__(self, server: "HubServer"):
        self.server = server
        self.store = server.store
        repo = r"/api/(?P<t>models|datasets|spaces)/(?P<owner>[^/]+)/(?P<name>[^/]+)"
        git_repo = r"/(?:(?P<t>datasets|spaces)/)?(?P<owner>[^/]+)/(?P<name>[^/]+)"
        self.routes: list[tuple[set[str], re.Pattern, Handler, bool]] = [
            ({"GET"}, re.compile(r"/api/agent-harnesses"), self.agent_harnesses, False),
            ({"GET"}, re.compile(r"/api/whoami-v2"), self.whoami, False),
            ({"POST"}, re.compile(r"/api/validate-yaml"), self.validate_yaml, False),
            ({"POST"}, re.compile(r"/api/repos/create"), self.create_repo, True),
            ({"DELETE"}, re.compile(r"/api/repos/delete"), self.delete_repo, True),
            ({"GET"}, re.compile(repo), self.repo_info, False),
            ({"GET"}, re.compile(repo + r"/revision/(?P<rev>[^/]+)"), self.repo_info, False),
            ({"GET"}, re.compile(repo + r"/refs"), self.refs, False),
            ({"POST"}, re.compile(repo + r"/preupload/(?P<rev>[^/]+)"), self.preupload, True),
            ({"POST"}, re.compile(repo + r"/commit/(?P<rev>[^/]+)"), self.commit, True),
            ({"GET"}, re.compile(repo + r"/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?"), self.tree, False),
            ({"POST"}, re.compile(repo + r"/paths-info/(?P<rev>[^/]+)"), self.paths_info, False),
            ({"GET"}, re.compile(repo + r"/commits/(?P<rev>[^/]+)"), self.list_commits, False),
            ({"POST"}, re.compile(git_repo + r"\.git/info/lfs/objects/batch"), self.lfs_batch, True),
            ({"PUT"}, re.compile(r"/lfs-objects/(?P<sha256>[0-9a-f]{64})"), self.lfs_put, True),
            ({"GET", "HEAD"}, re.compile(git_repo + r"/resolve/(?P<rev>[^/]+)/(?P<path>.+)"), self.resolve, False),
        ]

    # ---- ASGI plumbing
    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        status_box: list[int] = []

        async def capture(message) -> None:
            if message["type"] == "http.response.start":
                status_box.append(message["status"])
            await send(message)

        response = await self.dispatch(request)
        await response(scope, receive, capture)
        self.server._record(request, status_box[0] if status_box else 500)

    async def dispatch(self, request: Request) -> Response:
        self.server._note_token(request.headers.get("authorization"))
        raw_path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1").split("?")[0]
        for methods, pattern, handler, is_write in self.routes:
            match = pattern.fullmatch(raw_path)
            if match is None:
                continue
            if request.method not in methods:
                return _error(HubError(405, f"Method {request.method} not allowed"))
            params = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
            return await self._run(request, handler, params, is_write)
        return _error(HubError(404, f"No such endpoint: {request.method} {raw_path}"))

    async def _run(self, request: Request, handler: Handler, params: dict, is_write: bool) -> Response:
        path = request.url.path
        hang = self.server._faults.take(path, is_write, hang=True)
        if hang is not None:
            await self.server._hold(hang.delay)
        fail = self.server._faults.take(path, is_write, hang=False)
        if fail is not None:
            return _fault_response(fail)
        try:
            if is_write and request.method != "PUT" and self.server.require_token:
                _require_token(request)
            return await handler(request, **params)
        except HubError as exc:
            return _error(exc)
        except Exception as exc:  # a server bug: answer 500 and keep serving
            logger.exception("HubServer failed on %s %s", request.method, path)
            return _error(HubError(500, f"Internal test-server error: {exc!r}"))

    # ---- helpers
    def _repo(self, t: str, owner: str, name: str, request: Request) -> Repo:
        """The repo named in the URL; private repos look missing to requests without a token."""
        repo = self.store.get(_TYPE_FROM_PLURAL.get(t or "models", "model"), f"{owner}/{name}")
        if repo.private and not _bearer(request):
            raise HubError(404, f"Repository not found: {repo.repo_id}", "RepoNotFound")
        return repo

    def _resolve(self, repo: Repo, rev: str) -> Commit:
        with self.store.lock:
            return repo.resolve(rev)

    def _repo_id(self, body: dict[str, Any]) -> str:
        """``organization/name`` of a create/delete body (the server's user when no organization)."""
        if not body.get("name"):
            raise HubError(400, "Missing repo name")
        return f"{body.get('organization') or self.server.user}/{body['name']}"

    def _repo_url(self, repo_type: str, repo_id: str) -> str:
        return f"{self.server.endpoint}/{_URL_PREFIX[repo_type]}{repo_id}"

    # ---- small endpoints
    async def agent_harnesses(self, request: Request) -> Response:
        return JSONResponse({"standardEnvVars": [], "harnesses": {}})

    async def whoami(self, request: Request) -> Response:
        if not _bearer(request):
            raise HubError(401, "Invalid credentials in Authorization header")
        user = self.server.user
        return JSONResponse({
            "type": "user", "id": "0" * 24, "name": user, "fullname": user, "email": None,
            "emailVerified": False, "isPro": False, "orgs": [],
            "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}},
        })

    async def validate_yaml(self, request: Request) -> Response:
        return JSONResponse({"errors": [], "warnings": []})

    async def create_repo(self, request: Request) -> Response:
        body = await _json_body(request)
        repo_type = body.get("type") or "model"
        if repo_type not in _URL_PREFIX:
            raise HubError(400, f"Invalid repo type {repo_type!r}")
        repo_id = self._repo_id(body)
        private = body.get("visibility") == "private" or bool(body.get("private"))
        created = self.store.create_repo(repo_type, repo_id, private)
        url = self._repo_url(repo_type, repo_id)
        if not created:
            return JSONResponse({"error": "You already created this repo", "url": url}, status_code=409)
        return JSONResponse({"url": url, "name": repo_id, "id": repo_id})

    async def delete_repo(self, request: Request) -> Response:
        body = await _json_body(request)
        repo_id = self._repo_id(body)
        self.store.delete_repo(body.get("type") or "model", repo_id)
        return Response(status_code=200)

    # ---- repo reads
    async def repo_info(self, request: Request, t: str, owner: str, name: str, rev: str = "main") -> Response:
        repo = self._repo(t, owner, name, request)
        commit = self._resolve(repo, rev)
        blobs = request.query_params.get("blobs", "").lower() in ("1", "true")
        siblings = [_sibling(p, e, blobs) for p, e in sorted(commit.tree.items())]
        info = {
            "_id": repo.repo_id.replace("/", "-"), "id": repo.repo_id, "author": repo.repo_id.split("/")[0],
            "sha": commit.oid, "private": repo.private, "gated": False, "disabled": False,
            "createdAt": _iso(repo.created), "lastModified": _iso(commit.time), "downloads": 0,
            "likes": 0, "tags": [], "siblings": siblings,
        }
        return JSONResponse(info, headers={"X-Repo-Commit": commit.oid})

    async def refs(self, request: Request, t: str, owner: str, name: str) -> Response:
        repo = self._repo(t, owner, name, request)
        with self.store.lock:
            branches = [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": oid} for b, oid in repo.refs.items()]
        return JSONResponse({"branches": branches, "converts": [], "tags": [], "pullRequests": []})

    async def tree(self, request: Request, t: str, owner: str, name: str, rev: str, path: str = "") -> Response:
        repo = self._repo(t, owner, name, request)
        commit = self._resolve(repo, rev)
        recursive = request.query_params.get("recursive", "").lower() in ("1", "true")
        items = _list_tree(commit, path.strip("/"), recursive)
        if items is None:
            raise HubError(404, f"Directory not found: {path}", "EntryNotFound", commit.oid)
        return _paginated(request, items, self.server.tree_page_size, {"X-Repo-Commit": commit.oid})

    async def paths_info(self, request: Request, t: str, owner: str, name: str, rev: str) -> Response:
        repo = self._repo(t, owner, name, request)
        commit = self._resolve(repo, rev)
        form = parse_qs((await request.body()).decode(), keep_blank_values=True)
        directories = commit.directories()
        found = []
        for path in (p.strip("/") for p in form.get("paths", [])):
            if path in commit.tree:
                found.append(commit.tree[path].to_json(path))
            elif path in directories:
                found.append({"type": "directory", "oid": directories[path], "size": 0, "path": path})
        return JSONResponse(found, headers={"X-Repo-Commit": commit.oid})

    async def list_commits(self, request: Request, t: str, owner: str, name: str, rev: str) -> Response:
        repo = self._repo(t, owner, name, request)
        with self.store.lock:
            head = repo.resolve(rev)
            history = repo.history(head)
        items = [
            {"id": c.oid, "title": c.summary, "message": c.description, "date": _iso(c.time),
             "authors": [{"user": self.server.user}]}
            for c in history
        ]
        return _paginated(request, items, self.server.commits_page_size, {"X-Repo-Commit": head.oid})

    async def resolve(self, request: Request, owner: str, name: str, rev: str, path: str, t: str = "") -> Response:
        repo = self._repo(t, owner, name, request)
        commit = self._resolve(repo, rev)
        entry = commit.tree.get(path)
        if entry is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", commit.oid)
        return _file_response(self.store.content_path(entry), entry, commit.oid, request)

    # ---- writes
    async def preupload(self, request: Request, t: str, owner: str, name: str, rev: str) -> Response:
        repo = self._repo(t, owner, name, request)
        commit = self._resolve(repo, rev)
        files = (await _json_body(request)).get("files", [])
        answer = [self._upload_mode(commit, f) for f in files]
        return JSONResponse({"files": answer, "commitOid": commit.oid}, headers={"X-Repo-Commit": commit.oid})

    def _upload_mode(self, commit: Commit, file: dict[str, Any]) -> dict[str, Any]:
        threshold = self.server.lfs_threshold
        is_lfs = threshold is not None and file.get("size", 0) > threshold
        current = commit.tree.get(file["path"])
        remote_oid = None
        if current is not None:
            remote_oid = current.lfs_sha256 or current.oid
        return {"path": file["path"], "uploadMode": "lfs" if is_lfs else "regular",
                "shouldIgnore": False, "oid": remote_oid}

    async def commit(self, request: Request, t: str, owner: str, name: str, rev: str) -> Response:
        repo = self._repo(t, owner, name, request)
        if request.query_params.get("create_pr") in ("1", "true"):
            raise HubError(400, "Pull requests are not supported by this test server")
        header, ops = _parse_ndjson(await request.body())
        commit = self.store.commit(repo, rev, header, ops)
        url = f"{self._repo_url(repo.repo_type, repo.repo_id)}/commit/{commit.oid}"
        body = {"success": True, "commitOid": commit.oid, "commitUrl": url, "pullRequestUrl": None}
        return JSONResponse(body, headers={"X-Repo-Commit": commit.oid})

    async def lfs_batch(self, request: Request, owner: str, name: str, t: str = "") -> Response:
        self._repo(t, owner, name, request)
        body = await _json_body(request)
        if body.get("operation") != "upload":
            raise HubError(400, "Only the LFS 'upload' operation is supported")
        objects = []
        for obj in body.get("objects", []):
            item = {"oid": obj["oid"], "size": obj["size"]}
            if self.store.lfs_size(obj["oid"]) != obj["size"]:
                href = f"{self.server.endpoint}/lfs-objects/{obj['oid']}"
                item.update(authenticated=True, actions={"upload": {"href": href}})
            objects.append(item)
        return JSONResponse({"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
                            media_type="application/vnd.git-lfs+json")

    async def lfs_put(self, request: Request, sha256: str) -> Response:
        data = await request.body()
        self.store.put_lfs(sha256, data)
        return Response(status_code=200, headers={"ETag": f'"{sha256}"'})


# ---- response helpers


def _error(exc: HubError) -> Response:
    headers = {"X-Error-Message": exc.message.encode("ascii", "replace").decode()}
    if exc.code:
        headers["X-Error-Code"] = exc.code
    if exc.commit:
        headers["X-Repo-Commit"] = exc.commit
    return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)


def _fault_response(rule: _Rule) -> Response:
    headers = {"X-Error-Message": f"Injected fault {rule.status}"}
    if rule.retry_after is not None:
        headers["Retry-After"] = str(int(rule.retry_after))
    return JSONResponse({"error": f"Injected fault {rule.status}"}, status_code=rule.status, headers=headers)


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    if not value.lower().startswith("bearer "):
        return None
    return value[7:].strip() or None


def _require_token(request: Request) -> None:
    if not _bearer(request):
        raise HubError(401, "You must be authenticated (Authorization: Bearer <token>) to write")


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        return json.loads(await request.body() or b"{}")
    except json.JSONDecodeError as exc:
        raise HubError(400, f"Malformed JSON body: {exc}") from None


def _parse_ndjson(body: bytes) -> tuple[dict[str, Any], list[tuple[str, dict]]]:
    """Split a commit payload into its header value and its ``(key, value)`` operations."""
    try:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise HubError(400, f"Malformed NDJSON commit payload: {exc}") from None
    if not lines or lines[0].get("key") != "header":
        raise HubError(400, "The first NDJSON line of a commit must be the header")
    return lines[0]["value"], [(line["key"], line["value"]) for line in lines[1:]]


def _sibling(path: str, entry: Entry, blobs: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"rfilename": path}
    if blobs:
        item.update(size=entry.size, blobId=entry.oid)
        if entry.lfs_sha256:
            item["lfs"] = {"sha256": entry.lfs_sha256, "size": entry.size, "pointerSize": entry.pointer_size}
    return item


def _list_tree(commit: Commit, path: str, recursive: bool) -> list[dict[str, Any]] | None:
    """Tree items under directory ``path`` ("" = root), directories first; None if no such directory."""
    tree, directories = commit.tree, commit.directories()
    if path and path not in directories:
        return None
    prefix = f"{path}/" if path else ""

    def wanted(candidate: str) -> bool:
        return candidate.startswith(prefix) and (recursive or "/" not in candidate[len(prefix):])

    dirs = [{"type": "directory", "oid": oid, "size": 0, "path": d} for d, oid in sorted(directories.items())
            if wanted(d)]
    files = [entry.to_json(p) for p, entry in sorted(tree.items()) if wanted(p)]
    return dirs + files


def _paginated(request: Request, items: list, page_size: int, headers: dict[str, str]) -> Response:
    """One page of ``items`` from ``?cursor=N``; a ``Link: <...>; rel="next"`` header if more remain."""
    try:
        start = max(0, int(request.query_params.get("cursor", "0")))
    except ValueError:
        raise HubError(400, "Invalid cursor") from None
    end = start + page_size
    headers = dict(headers)
    if end < len(items):
        headers["Link"] = f'<{request.url.include_query_params(cursor=str(end))}>; rel="next"'
    return JSONResponse(items[start:end], headers=headers)


def _file_response(path: Path, entry: Entry, commit_oid: str, request: Request) -> Response:
    """The content answer of /resolve: full or ranged (206/416); HEAD gets headers only."""
    etag = entry.lfs_sha256 or entry.oid
    headers = {"ETag": f'"{etag}"', "X-Repo-Commit": commit_oid, "Accept-Ranges": "bytes",
               "Content-Type": "application/octet-stream"}
    start, end, status = 0, entry.size - 1, 200
    range_header = request.headers.get("range")
    if range_header:
        bounds = _parse_range(range_header, entry.size)
        if bounds is None:
            headers["Content-Range"] = f"bytes */{entry.size}"
            return Response(b"", status_code=416, headers=headers)
        (start, end), status = bounds, 206
        headers["Content-Range"] = f"bytes {start}-{end}/{entry.size}"
    length = max(0, end - start + 1)
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(None, status_code=status, headers=headers)
    with open(path, "rb") as handle:
        handle.seek(start)
        return Response(handle.read(length), status_code=status, headers=headers)


def _parse_range(value: str, size: int) -> tuple[int, int] | None:
    """Inclusive ``(start, end)`` of a single ``bytes=a-b`` / ``a-`` / ``-n`` range, None if unsatisfiable."""
    match = _RANGE_RE.match(value)
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        return None
    return start, end


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

    Observation: :meth:`commits`, :meth:`files`, :attr:`total_upload_bytes`, :attr:`request_log`,
    :meth:`token_was_sent`. Faults: :meth:`fail`, :meth:`hang`, :meth:`clear_faults`.
    Write requests are: repo create/delete, preupload, commit, LFS batch and LFS object PUT.
    """

    def __init__(self, root: Path, *, host: str = "127.0.0.1", port: int = 0, user: str = "test-user",
                 tree_page_size: int = 1000, commits_page_size: int = 50,
                 lfs_threshold: int | None = 10 * 1024 * 1024, require_token: bool = True):
        self.store = HubStore(Path(root))
        self.host, self.port, self.user = host, port, user
        self.tree_page_size, self.commits_page_size = tree_page_size, commits_page_size
        self.lfs_threshold, self.require_token = lfs_threshold, require_token
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
    def start(self) -> "HubServer":
        """Start serving in a daemon thread; returns once connections are accepted.

        Raises RuntimeError if the server did not come up within 10 seconds.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self.endpoint = f"http://{self.host}:{self.port}"
        config = uvicorn.Config(_HubApp(self), log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2, timeout_keep_alive=30)
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

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ---- faults
    def fail(self, status: int, *, times: int | None = None, paths: str | None = None,
             reads: bool = False, retry_after: float | None = None) -> None:
        """Answer ``status`` to the next ``times`` write requests (all, until cleared, if None).

        ``paths`` is a regex searched in the decoded URL path to narrow the requests;
        ``reads=True`` applies the fault to read requests too.  ``retry_after`` sets a
        ``Retry-After`` header (defaults to 0 for 429; clients then wait 1 s before retrying).
        """
        if retry_after is None and status == 429:
            retry_after = 0
        pattern = re.compile(paths) if paths else None
        self._faults.add(_Rule(status, 0.0, times, pattern, reads, retry_after))

    def hang(self, seconds: float, *, times: int | None = None, paths: str | None = None,
             reads: bool = False) -> None:
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
