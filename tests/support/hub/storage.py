"""The test Hub's storage: repos, immutable commits, blobs and LFS objects on disk, and its errors."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
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
    def from_record(cls, record: dict[str, Any]) -> Entry:
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
            "oid": self.oid,
            "parent": self.parent,
            "branch": self.branch,
            "summary": self.summary,
            "description": self.description,
            "time": self.time,
            "bytesUploaded": self.bytes_uploaded,
            "changes": {p: (e.to_record() if e else None) for p, e in self.changes.items()},
        }

    def summary_dict(self) -> dict[str, Any]:
        """The observation shape returned by :meth:`HubServer.commits`."""
        return {
            "oid": self.oid,
            "parent": self.parent,
            "summary": self.summary,
            "description": self.description,
            "time": self.time,
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
        """The commit for a branch name (or ``refs/heads/<name>``), a full oid or an unambiguous oid prefix (7+ hex).

        Raises HubError 404 ``RevisionNotFound`` when nothing matches.
        """
        if revision.startswith("refs/heads/") and revision[len("refs/heads/") :] in self.refs:
            revision = revision[len("refs/heads/") :]  # a branch by its full ref name
        if revision in self.refs:
            return self.commits[self.refs[revision]]
        if revision in self.commits:
            return self.commits[revision]
        if _SHORT_OID_RE.fullmatch(revision):
            found = [c for oid, c in self.commits.items() if oid.startswith(revision)]
            if len(found) == 1:
                return found[0]
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def collect_garbage(self) -> int:
        """Forget the commits no ref reaches any more (after a squash or a branch deletion), as the Hub's
        git garbage collection does (here at once); returns how many. Their oids no longer resolve."""
        reachable: set[str] = set()
        for oid in self.refs.values():
            while oid is not None and oid not in reachable and oid in self.commits:
                reachable.add(oid)
                oid = self.commits[oid].parent
        gone = [oid for oid in self.commits if oid not in reachable]
        for oid in gone:
            del self.commits[oid]
        return len(gone)

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
            repo.collect_garbage()
            self.repos[(repo.repo_type, repo.repo_id)] = repo

    @staticmethod
    def _replay(repo: Repo, record: dict[str, Any]) -> None:
        if "ref" in record:  # a branch created, moved or deleted (see set_ref)
            if record["oid"] is None:
                repo.refs.pop(record["ref"], None)
            else:
                repo.refs[record["ref"]] = record["oid"]
            return
        parent = repo.commits[record["parent"]] if record["parent"] else None
        changes = {p: (Entry.from_record(e) if e else None) for p, e in record["changes"].items()}
        commit = Commit(
            record["oid"],
            record["parent"],
            record["branch"],
            record["summary"],
            record["description"],
            record["time"],
            _apply(parent.tree if parent else {}, changes),
            changes,
            record["bytesUploaded"],
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
            commit = self._add_commit(
                repo, branch, header.get("summary") or "", header.get("description") or "", changes, regular + lfs
            )
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

    # ---- refs (branches) and history rewrites
    def set_ref(self, repo: Repo, name: str, oid: str | None) -> None:
        """Point branch ``name`` at commit ``oid`` (None: delete the branch, then forget the commits no
        ref reaches), logged so a reload sees the same refs."""
        with self.lock:
            with open(repo.directory / "commits.jsonl", "a") as log:
                log.write(json.dumps({"ref": name, "oid": oid}) + "\n")
            if oid is None:
                repo.refs.pop(name, None)
                repo.collect_garbage()
            else:
                repo.refs[name] = oid

    def squash(self, repo: Repo, branch: str, summary: str) -> Commit:
        """Replace the history of ``branch`` by one root commit holding its head's tree (the Hub's
        super-squash); the commits no ref reaches any more are forgotten. HubError 404 for no such branch."""
        with self.lock:
            if branch not in repo.refs:
                raise HubError(404, f"Branch not found: {branch}", "RevisionNotFound")
            head = repo.commits[repo.refs[branch]]
            commit = self._add_commit(repo, branch, summary, "", dict(head.tree), 0, root=True)
            repo.collect_garbage()
            return commit

    def _add_commit(
        self,
        repo: Repo,
        branch: str,
        summary: str,
        description: str,
        changes: dict[str, Entry | None],
        uploaded: int,
        *,
        root: bool = False,
    ) -> Commit:
        parent = repo.commits[repo.refs[branch]] if branch in repo.refs and not root else None
        now = time.time()
        seed = json.dumps([parent.oid if parent else None, branch, summary, now, sorted(changes)])
        oid = hashlib.sha1(seed.encode() + os.urandom(16)).hexdigest()
        commit = Commit(
            oid,
            parent.oid if parent else None,
            branch,
            summary,
            description,
            now,
            _apply(parent.tree if parent else {}, changes),
            changes,
            uploaded,
        )
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
