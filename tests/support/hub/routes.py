"""The test Hub's HTTP routes: the calls the real huggingface_hub client makes (see shared/docs/hub-api.md)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from support.hub.faults import _Rule
from support.hub.storage import (
    _RANGE_RE,
    _TYPE_FROM_PLURAL,
    _URL_PREFIX,
    Commit,
    Entry,
    HubError,
    Repo,
    _iso,
)

# ------------------------------------------------------------------------------------ the server

if TYPE_CHECKING:
    from support.hub.server import HubServer

logger = logging.getLogger(__name__)

Handler = Callable[..., Awaitable[Response]]
CONVERT_PREFIX = "refs/convert/"
"""Conversion branches (``refs/convert/parquet``, ``refs/convert/duckdb``): listed as ``converts``."""


class _HubApp:
    """The ASGI application: routes on the raw (percent-encoded) path, answers Hub JSON."""

    def __init__(self, server: HubServer):
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
            ({"POST", "DELETE"}, re.compile(repo + r"/branch/(?P<rev>[^/]+)"), self.branch, True),
            ({"POST"}, re.compile(repo + r"/super-squash/(?P<rev>[^/]+)"), self.super_squash, True),
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
        return JSONResponse(
            {
                "type": "user",
                "id": "0" * 24,
                "name": user,
                "fullname": user,
                "email": None,
                "emailVerified": False,
                "isPro": False,
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}},
            }
        )

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
            "_id": repo.repo_id.replace("/", "-"),
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit.oid,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "createdAt": _iso(repo.created),
            "lastModified": _iso(commit.time),
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
        }
        return JSONResponse(info, headers={"X-Repo-Commit": commit.oid})

    async def refs(self, request: Request, t: str, owner: str, name: str) -> Response:
        repo = self._repo(t, owner, name, request)
        with self.store.lock:
            refs = dict(repo.refs)
        branches = [
            {"name": b, "ref": f"refs/heads/{b}", "targetCommit": oid}
            for b, oid in refs.items()
            if not b.startswith(CONVERT_PREFIX)
        ]
        converts = [
            {"name": b[len(CONVERT_PREFIX) :], "ref": b, "targetCommit": oid}
            for b, oid in refs.items()
            if b.startswith(CONVERT_PREFIX)
        ]
        return JSONResponse({"branches": branches, "converts": converts, "tags": [], "pullRequests": []})

    async def branch(self, request: Request, t: str, owner: str, name: str, rev: str) -> Response:
        """``create_branch`` (POST, ``{"startingPoint"}``) and ``delete_branch`` (DELETE). As on the Hub, a
        user may not create a ``refs/...`` branch (the dataset viewer's bot makes the conversion branches:
        :meth:`HubServer.convert_branch`) nor delete ``main``; a conversion branch may be deleted unless
        ``HubServer.protect_convert_refs`` (then 403, as when the Hub refuses)."""
        repo = self._repo(t, owner, name, request)
        if request.method == "DELETE":
            if rev == "main":
                raise HubError(403, "You cannot delete the default branch")
            if rev.startswith(CONVERT_PREFIX) and self.server.protect_convert_refs:
                raise HubError(403, f"You are not allowed to delete {rev}")
            with self.store.lock:
                if rev not in repo.refs:
                    raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
                self.store.set_ref(repo, rev, None)
            return JSONResponse({})
        if rev.startswith("refs/") or not rev:
            raise HubError(400, f"Invalid reference for a branch: {rev}")
        body = await _json_body(request)
        with self.store.lock:
            if rev in repo.refs:
                raise HubError(409, f"Reference already exists: refs/heads/{rev}")
            start = repo.resolve(body.get("startingPoint") or "main")
            self.store.set_ref(repo, rev, start.oid)
        return JSONResponse({})

    async def super_squash(self, request: Request, t: str, owner: str, name: str, rev: str) -> Response:
        """``super_squash_history``: the branch becomes one commit holding its head's files; earlier
        commits are gone (they no longer resolve, as after the Hub's garbage collection)."""
        repo = self._repo(t, owner, name, request)
        if rev.startswith("refs/") and not rev.startswith("refs/heads/"):
            raise HubError(400, f"Invalid reference for a branch: {rev}")
        body = await _json_body(request)
        commit = self.store.squash(repo, rev.removeprefix("refs/heads/"), body.get("message") or "Super-squash")
        return JSONResponse({"commitId": commit.oid}, headers={"X-Repo-Commit": commit.oid})

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
            {
                "id": c.oid,
                "title": c.summary,
                "message": c.description,
                "date": _iso(c.time),
                "authors": [{"user": self.server.user}],
            }
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
        return {
            "path": file["path"],
            "uploadMode": "lfs" if is_lfs else "regular",
            "shouldIgnore": False,
            "oid": remote_oid,
        }

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
        return JSONResponse(
            {"transfer": "basic", "objects": objects, "hash_algo": "sha256"}, media_type="application/vnd.git-lfs+json"
        )

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
        return candidate.startswith(prefix) and (recursive or "/" not in candidate[len(prefix) :])

    dirs = [
        {"type": "directory", "oid": oid, "size": 0, "path": d} for d, oid in sorted(directories.items()) if wanted(d)
    ]
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
    headers = {
        "ETag": f'"{etag}"',
        "X-Repo-Commit": commit_oid,
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
    }
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
