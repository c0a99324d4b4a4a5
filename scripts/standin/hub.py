"""Stand-in Hugging Face Hub: the real `huggingface_hub` client downloads from it on 127.0.0.1.

It serves `ROOT/datasets/<org>/<name>/...` (and `ROOT/models/<org>/<name>/...`) with the parts
of the Hub protocol that `snapshot_download`, `hf_hub_download`, `list_repo_tree`,
`get_paths_info` and `repo_info` use (checked against huggingface_hub 2.4.0):

    HEAD|GET /[datasets/]{org}/{name}/resolve/{rev}/{path}   file bytes (Range), X-Repo-Commit,
             ETag (git blob sha1; LFS files: sha256, plus X-Linked-Etag and X-Linked-Size)
    GET      /api/{datasets|models}/{org}/{name}[/revision/{rev}]   id, sha, siblings, gated
    GET      /api/{datasets|models}/{org}/{name}/tree/{rev}[/{path}]?recursive=&cursor=
             entries with size, oid and `lfs: {oid, size, pointerSize}`; pages of `page_size`
             entries chained with `Link: <...>; rel="next"`
    POST     /api/{datasets|models}/{org}/{name}/paths-info/{rev}   (form: paths=..., expand=)

Each repo has one commit: its sha is the sha1 of the repo id and its file listing, computed
on first use and kept (`refresh()` forgets it), so a file changed on disk afterwards is served
with its new bytes under the old metadata, which is how tests fake a corrupted CDN. Revisions
`main` and that sha resolve; any other answers `X-Error-Code: RevisionNotFound`. No
`X-Xet-Hash` is ever sent, so the client takes the plain HTTP path.

A repo is gated when `<repo>/.standin.json` holds `{"gated": true, "tokens": ["hf_..."]}`:
its metadata stays public, as on the Hub, but `resolve` answers 401 + `X-Error-Code:
GatedRepo` without `Authorization: Bearer <token>` and 403 + GatedRepo with a token not in
the list; huggingface_hub raises GatedRepoError for both.

Faults as in `standin.server` (kinds drop, status, ratelimit, trickle, html, wrong_bytes,
wrong_length, not_found, change), matched against the request path without the leading slash,
e.g. `{"kind": "trickle", "path": "*/resolve/*/big.bin", "method": "GET", "rate": 100000}`;
`method` (optional) limits a rule to GET or HEAD; `retry_after` (optional, `status` only)
adds that Retry-After header, as a hub or mirror may send with a 503. They apply to `resolve`
only, and the metadata headers (ETag, X-Linked-Size) stay the listing's: `change` serves the
file `to` (relative to the root) under the requested file's name, as a CDN serving another
object would. Statistics record every request's method, path, status, body bytes and whether an
Authorization header was present (never its value).

From Python: `with HubStandin(root) as hub: snapshot_download(..., endpoint=hub.url)`.
CLI: `python -m standin.hub --root R [--generate laion-coco,cc3m-wds] --port 0
--port-file F`. `make_laion_coco_repo` and `make_cc3m_wds_repo` write small, deterministic
copies of `laion/laion-coco` and `pixparse/cc3m-wds`; `make_caltech101_repo` a repo holding a
zip with archives inside (Caltech101's `caltech-101.zip`).
"""

import base64
import copy
import email.utils
import gzip
import hashlib
import io
import json
import logging
import mimetypes
import os
import random
import re
import socket
import sys
import tarfile
import threading
import urllib.parse
import zipfile
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from standin.base import Service, StateServer, cli_parser, copy_with_faults, serve_cli, served_size
from standin.server import HTML_PAGE, FaultRule, parse_range
from vlprep.tarwriter import write_tar

log = logging.getLogger(__name__)

REPO_TYPES = {"datasets": "dataset", "models": "model"}
CONFIG_NAME = ".standin.json"
LFS_THRESHOLD = 10 * 1024 * 1024  # the Hub refuses non-LFS files above 10 MB
# Suffixes the Hub's default .gitattributes stores in LFS (a selection).
LFS_SUFFIXES = (
    ".parquet", ".arrow", ".tar", ".zip", ".gz", ".tgz", ".zst", ".bin", ".npy", ".npz",
    ".pt", ".pth", ".safetensors", ".jpg", ".jpeg", ".png", ".webp", ".mp4", ".h5", ".7z",
)  # fmt: skip
HUB_FAULTS = (
    "drop", "status", "ratelimit", "trickle", "html", "wrong_bytes", "wrong_length", "not_found",
    "change",
)  # fmt: skip
DEFAULT_PAGE_SIZE = 1000  # the Hub's tree pages hold 1000 entries (50 with expand=true)
COPY_CHUNK = 1 << 20
FIXED_DATE = "2024-01-01T00:00:00.000Z"
LFS_POINTER = "version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n"


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob with these bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class HubFile:
    """One file of a repo as the Hub lists it."""

    path: str
    size: int
    oid: str  # git blob sha1 (of the LFS pointer for LFS files)
    sha256: str | None  # LFS files only
    pointer_size: int | None

    def tree_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "oid": self.oid, "size": self.size}
        entry["path"] = self.path
        if self.sha256:
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": self.pointer_size}
        return entry


@dataclass
class HubRepo:
    """A repo's single commit: its files (path order), sha and access rules."""

    repo_type: str  # "dataset" | "model"
    repo_id: str
    directory: Path
    files: dict[str, HubFile]
    sha: str
    gated: bool = False
    tokens: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def scan(cls, repo_type: str, repo_id: str, directory: Path, lfs_threshold: int) -> "HubRepo":
        config: dict[str, Any] = {}
        if (directory / CONFIG_NAME).is_file():
            config = json.loads((directory / CONFIG_NAME).read_text())
        files: dict[str, HubFile] = {}
        for path in sorted(directory.rglob("*")):
            rel = path.relative_to(directory).as_posix()
            if not path.is_file() or rel == CONFIG_NAME or rel.split("/")[0] == ".git":
                continue
            files[rel] = _describe(rel, path, lfs_threshold)
        listing = "".join(f"{f.path}\0{f.oid}\n" for f in files.values())
        sha = hashlib.sha1(f"{repo_type}s/{repo_id}\n{listing}".encode()).hexdigest()
        gated = bool(config.get("gated", False))
        return cls(
            repo_type, repo_id, directory, files, sha, gated, frozenset(config.get("tokens", []))
        )

    def directories(self) -> list[str]:
        dirs = set()
        for rel in self.files:
            parts = rel.split("/")[:-1]
            dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        return sorted(dirs)

    def tree(self, sub: str, recursive: bool) -> list[dict[str, Any]] | None:
        """Tree entries under `sub` (directories first, like the Hub); None if no such folder."""
        sub = sub.strip("/")
        prefix = f"{sub}/" if sub else ""
        dirs = self.directories()
        if sub and sub not in dirs:
            return None

        def wanted(rel: str) -> bool:
            return rel.startswith(prefix) and (recursive or "/" not in rel[len(prefix) :])

        out = [self._dir_entry(d) for d in dirs if wanted(d)]
        out += [f.tree_entry() for f in self.files.values() if wanted(f.path)]
        return out

    def _dir_entry(self, rel: str) -> dict[str, Any]:
        oid = hashlib.sha1(f"tree {self.sha} {rel}".encode()).hexdigest()
        return {"type": "directory", "oid": oid, "size": 0, "path": rel}

    def info(self) -> dict[str, Any]:
        org = self.repo_id.split("/")[0]
        info = {
            "_id": hashlib.sha1(self.repo_id.encode()).hexdigest()[:24],
            "id": self.repo_id,
            "author": org,
            "sha": self.sha,
            "lastModified": FIXED_DATE,
            "createdAt": FIXED_DATE,
            "private": False,
            "gated": "auto" if self.gated else False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": [{"rfilename": rel} for rel in self.files],
        }
        if self.repo_type == "dataset":
            info["cardData"] = {}
        return info


def _describe(rel: str, path: Path, lfs_threshold: int) -> HubFile:
    size = path.stat().st_size
    lfs = size >= lfs_threshold or path.suffix.lower() in LFS_SUFFIXES
    sha1 = hashlib.sha1(b"blob %d\0" % size)
    sha256 = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(COPY_CHUNK):
            sha1.update(chunk)
            if lfs:
                sha256.update(chunk)
    if not lfs:
        return HubFile(rel, size, sha1.hexdigest(), None, None)
    pointer = LFS_POINTER.format(oid=sha256.hexdigest(), size=size).encode()
    return HubFile(rel, size, git_blob_sha1(pointer), sha256.hexdigest(), len(pointer))


class HubState:
    """Repos (scanned once), fault rules and request records, shared by the request threads."""

    def __init__(
        self,
        root: Path,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        lfs_threshold: int = LFS_THRESHOLD,
        faults: list[dict[str, Any]] | None = None,
    ) -> None:
        self.root = root.resolve()
        self.page_size = page_size
        self.lfs_threshold = lfs_threshold
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy = 0
        self._repos: dict[tuple[str, str], HubRepo | None] = {}
        self._rules: list[tuple[str | None, FaultRule]] = []
        self._records: list[dict[str, Any]] = []
        self.set_faults(faults or [])

    def repo(self, repo_type: str, repo_id: str) -> HubRepo | None:
        key = (repo_type, repo_id)
        with self._lock:
            if key in self._repos:
                return self._repos[key]
        directory = self.root / f"{repo_type}s" / repo_id
        ok = re.fullmatch(r"[\w.-]+/[\w.-]+", repo_id) and ".." not in repo_id
        found = None
        if ok and directory.is_dir():
            found = HubRepo.scan(repo_type, repo_id, directory, self.lfs_threshold)
        with self._lock:
            return self._repos.setdefault(key, found)

    def refresh(self) -> None:
        """Forget scanned repos: the next request sees the files (and a new sha) as they are now."""
        with self._lock:
            self._repos.clear()

    def set_faults(self, specs: list[dict[str, Any]]) -> None:
        rules = []
        for spec in specs:
            spec = dict(spec)
            method = spec.pop("method", None)
            if method not in (None, "GET", "HEAD"):
                raise ValueError(f"fault 'method' must be GET or HEAD, got {method!r}")
            if spec.get("kind") not in HUB_FAULTS:
                raise ValueError(
                    f"hub fault kind must be one of {HUB_FAULTS}, got {spec.get('kind')!r}"
                )
            # The hub's own parameter; standin.server's rules do not know it.
            retry_after = spec.pop("retry_after", None) if spec["kind"] == "status" else None
            rule = FaultRule.from_dict(spec)
            if retry_after is not None:
                rule.params["retry_after"] = retry_after
            rules.append((method, rule))
        with self._lock:
            self._rules = rules

    def active_faults(self, method: str, rel: str) -> dict[str, dict[str, Any]]:
        active: dict[str, dict[str, Any]] = {}
        with self._lock:
            for only, rule in self._rules:
                if only in (None, method) and rule.hit(rel):
                    active.setdefault(rule.kind, dict(rule.params))
        return active

    def begin(self) -> None:
        with self._lock:
            self._busy += 1

    def record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._busy -= 1
            self._idle.notify_all()
            self._records.append(entry)

    def requests(self, settle: float = 2.0) -> list[dict[str, Any]]:
        """Every request so far, oldest first, once requests still being answered are counted."""
        with self._idle:
            self._idle.wait_for(lambda: self._busy == 0, timeout=settle)
            return copy.deepcopy(self._records)

    def reset_stats(self, settle: float = 2.0) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._busy == 0, timeout=settle)
            self._records.clear()


class HubHandler(BaseHTTPRequestHandler):
    """One connection of the stand-in Hub."""

    protocol_version = "HTTP/1.1"
    server_version = "vlprep-hub-standin/1"
    server: StateServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    # -- plumbing ----------------------------------------------------------------------

    def _dispatch(self) -> None:
        state = self.server.state
        split = urllib.parse.urlsplit(self.path)
        self._query = urllib.parse.parse_qs(split.query)
        self._status, self._sent = 500, 0
        state.begin()
        try:
            self._route(split.path)
        except (BrokenPipeError, ConnectionResetError) as exc:
            log.debug("client went away: %s", exc)
            self.close_connection = True
        finally:
            state.record(
                {
                    "method": self.command,
                    "path": split.path,
                    "query": split.query,
                    "status": int(self._status),
                    "bytes": self._sent,
                    "range": self.headers.get("Range"),
                    "authorization": "Authorization" in self.headers,
                }
            )

    def _reply(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "application/json; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        self._status = status
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
            self._sent = len(body)

    def _json(self, data: Any, headers: dict[str, str] | None = None) -> None:
        self._reply(HTTPStatus.OK, json.dumps(data).encode(), headers=headers)

    def _error(
        self, status: int, code: str | None, message: str, headers: dict[str, str] | None = None
    ) -> None:
        extra = {"X-Error-Message": message, **(headers or {})}
        if code:
            extra["X-Error-Code"] = code
        self._reply(status, json.dumps({"error": message}).encode(), headers=extra)

    def _repo_not_found(self) -> None:
        # The Hub answers 401 to anonymous callers so as not to reveal private repos.
        status = HTTPStatus.NOT_FOUND if "Authorization" in self.headers else 401
        self._error(status, "RepoNotFound", "Repository not found")

    def _token(self) -> str | None:
        value = self.headers.get("Authorization") or ""
        return value[7:].strip() if value.lower().startswith("bearer ") else None

    # -- routing -----------------------------------------------------------------------

    def _route(self, raw_path: str) -> None:
        parts = [urllib.parse.unquote(p) for p in raw_path.strip("/").split("/")]
        if len(parts) >= 3 and parts[0] == "api" and parts[1] in REPO_TYPES:
            self._api(REPO_TYPES[parts[1]], parts[2:])
            return
        repo_type = "model"
        if parts and parts[0] in REPO_TYPES:
            repo_type, parts = REPO_TYPES[parts[0]], parts[1:]
        if len(parts) >= 5 and parts[2] == "resolve" and self.command in ("GET", "HEAD"):
            repo_id = f"{parts[0]}/{parts[1]}"
            self._resolve(repo_type, repo_id, parts[3], "/".join(parts[4:]), raw_path)
            return
        self._error(HTTPStatus.NOT_FOUND, None, f"Sorry, we can't find the page {raw_path}")

    def _api(self, repo_type: str, rest: list[str]) -> None:
        if len(rest) < 2:
            self._error(HTTPStatus.NOT_FOUND, None, "Not found")
            return
        repo = self.server.state.repo(repo_type, f"{rest[0]}/{rest[1]}")
        action, args = (rest[2], rest[3:]) if len(rest) > 2 else ("revision", ["main"])
        if repo is None:
            self._repo_not_found()
            return
        if not args:
            self._error(HTTPStatus.NOT_FOUND, None, "Not found")
            return
        if args[0] not in ("main", repo.sha):
            msg = f"Invalid rev id: {args[0]}"
            self._error(HTTPStatus.NOT_FOUND, "RevisionNotFound", msg)
            return
        if action == "revision" and self.command == "GET" and len(args) == 1:
            self._json(repo.info())
        elif action == "tree" and self.command == "GET":
            self._tree(repo, "/".join(args[1:]))
        elif action == "paths-info" and self.command == "POST" and len(args) == 1:
            self._paths_info(repo)
        else:
            self._error(HTTPStatus.NOT_FOUND, None, f"Not found: {action}")

    def _tree(self, repo: HubRepo, sub: str) -> None:
        recursive = self._query.get("recursive", ["false"])[0].lower() in ("true", "1")
        entries = repo.tree(sub, recursive)
        if entries is None:
            self._error(HTTPStatus.NOT_FOUND, "EntryNotFound", f"{sub} does not exist on main")
            return
        try:
            start = int(base64.urlsafe_b64decode(self._query.get("cursor", ["MA=="])[0]))
        except ValueError:
            start = 0
        size = self.server.state.page_size
        headers = {}
        if start + size < len(entries):
            query = {k: v[0] for k, v in self._query.items()}
            query["cursor"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
            host = self.headers.get("Host") or "127.0.0.1"
            path = urllib.parse.urlsplit(self.path).path
            link = f"http://{host}{path}?{urllib.parse.urlencode(query)}"
            headers["Link"] = f'<{link}>; rel="next"'
        self._json(entries[start : start + size], headers)

    def _paths_info(self, repo: HubRepo) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        dirs = set(repo.directories())
        out = []
        for rel in form.get("paths", []):
            rel = rel.strip("/")
            if rel in repo.files:
                out.append(repo.files[rel].tree_entry())
            elif rel in dirs:
                out.append(repo._dir_entry(rel))
        self._json(out)

    # -- files -------------------------------------------------------------------------

    def _resolve(self, repo_type: str, repo_id: str, rev: str, rel: str, raw_path: str) -> None:
        repo = self.server.state.repo(repo_type, repo_id)
        if repo is None:
            self._repo_not_found()
            return
        if rev not in ("main", repo.sha):
            self._error(HTTPStatus.NOT_FOUND, "RevisionNotFound", f"Invalid rev id: {rev}")
            return
        commit = {"X-Repo-Commit": repo.sha}
        if repo.gated:
            token = self._token()
            kind = "dataset" if repo_type == "dataset" else "model"
            if token is None:
                msg = (
                    f"Access to {kind} {repo_id} is restricted. You must have access to it and be "
                    "authenticated to access it. Please log in."
                )
                self._error(401, "GatedRepo", msg, commit)
                return
            if token not in repo.tokens:
                url = f"https://huggingface.co/{'datasets/' if kind == 'dataset' else ''}{repo_id}"
                msg = (
                    f"Access to {kind} {repo_id} is restricted and you are not in the authorized "
                    f"list. Visit {url} to ask for access."
                )
                self._error(403, "GatedRepo", msg, commit)
                return
        meta = repo.files.get(rel)
        path = repo.directory / rel
        if meta is None or not path.is_file():
            self._error(HTTPStatus.NOT_FOUND, "EntryNotFound", "Entry not found", commit)
            return
        faults = self.server.state.active_faults(self.command, raw_path.lstrip("/"))
        if self._fault_reply(faults):
            return
        if "change" in faults:
            changed = self.server.state.root / faults["change"]["to"]
            if changed.resolve().is_relative_to(self.server.state.root) and changed.is_file():
                path = changed
        self._send_file(meta, path, commit, faults)

    def _fault_reply(self, faults: dict[str, dict[str, Any]]) -> bool:
        if "not_found" in faults:
            self._error(faults["not_found"]["code"], None, "not found (fault)")
        elif "status" in faults:
            status = faults["status"]
            retry = {"Retry-After": str(status["retry_after"])} if "retry_after" in status else {}
            self._error(status["code"], None, "server error (fault)", retry)
        elif "ratelimit" in faults:
            retry = {"Retry-After": str(faults["ratelimit"]["retry_after"])}
            self._error(HTTPStatus.TOO_MANY_REQUESTS, None, "rate limited (fault)", retry)
        elif "html" in faults:
            html = faults["html"]
            self._reply(html["code"], HTML_PAGE, html["content_type"])
        else:
            return False
        return True

    def _send_file(
        self, meta: HubFile, path: Path, commit: dict[str, str], faults: dict[str, dict[str, Any]]
    ) -> None:
        with path.open("rb") as fh:
            st = os.fstat(fh.fileno())
            etag = f'"{meta.sha256 or meta.oid}"'
            name = urllib.parse.quote(path.name)
            headers = {
                **commit,
                "ETag": etag,
                "Accept-Ranges": "bytes",
                "Last-Modified": email.utils.formatdate(st.st_mtime, usegmt=True),
                "Content-Disposition": f"inline; filename*=UTF-8''{name}; filename=\"{name}\";",
            }
            if meta.sha256:
                headers["X-Linked-Etag"] = etag
                headers["X-Linked-Size"] = str(meta.size)
            size = served_size(st.st_size, faults)
            try:
                span = parse_range(self.headers.get("Range"), size)
            except ValueError:
                headers["Content-Range"] = f"bytes */{size}"
                self._reply(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, headers=headers)
                return
            start, end = span or (0, size - 1)
            if span:
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            self._status = HTTPStatus.PARTIAL_CONTENT if span else HTTPStatus.OK
            self.send_response(self._status)
            ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(end - start + 1))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command == "GET":
                self._copy(fh, start, end - start + 1, faults)

    def _count_sent(self, n: int) -> None:
        self._sent += n

    def _copy(self, fh, start: int, length: int, faults: dict[str, dict[str, Any]]) -> None:
        """Send the body, applying drop (cut off), trickle (pace) and wrong_bytes (flip one)."""
        limit = length
        if "drop" in faults:
            drop_at = faults["drop"]["bytes"]
            limit = min(length, length // 2 if drop_at is None else int(drop_at))
        copy_with_faults(self.wfile.write, fh, start, limit, faults, self._count_sent)
        if limit < length:
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)


class HubStandin(Service):
    """The stand-in Hub in a background thread: `with HubStandin(root) as hub: hub.url`."""

    name = "hub-standin"

    def __init__(
        self,
        root: str | Path,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        lfs_threshold: int = LFS_THRESHOLD,
        faults: list[dict[str, Any]] | None = None,
    ) -> None:
        state = HubState(
            Path(root), page_size=page_size, lfs_threshold=lfs_threshold, faults=faults
        )
        super().__init__(HubHandler, state, host, port)

    @property
    def url(self) -> str:
        """The endpoint, without a trailing slash: pass it as `endpoint=` to huggingface_hub."""
        return self.address

    def sha(self, repo_id: str, repo_type: str = "dataset") -> str:
        """The commit sha the stand-in serves for a repo (KeyError if there is no such repo)."""
        repo = self.state.repo(repo_type, repo_id)
        if repo is None:
            raise KeyError(f"{repo_type} repo {repo_id} not under {self.state.root}")
        return repo.sha

    def refresh(self) -> None:
        self.state.refresh()

    def set_faults(self, faults: list[dict[str, Any]]) -> None:
        self.state.set_faults(faults)

    def clear_faults(self) -> None:
        self.state.set_faults([])

    def requests(self, settle: float = 2.0) -> list[dict[str, Any]]:
        """Every request: method, path, query, status, bytes, range, authorization (a bool).

        Waits up to `settle` s for requests still being answered (0: do not wait).
        """
        return self.state.requests(settle)

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per path: requests, methods, statuses, bytes_sent, authorized (requests with a token)."""
        out: dict[str, dict[str, Any]] = {}
        for rec in self.state.requests():
            entry = out.setdefault(
                rec["path"],
                {"requests": 0, "methods": {}, "statuses": {}, "bytes_sent": 0, "authorized": 0},
            )
            entry["requests"] += 1
            entry["methods"][rec["method"]] = entry["methods"].get(rec["method"], 0) + 1
            status = str(rec["status"])
            entry["statuses"][status] = entry["statuses"].get(status, 0) + 1
            entry["bytes_sent"] += rec["bytes"]
            entry["authorized"] += int(rec["authorization"])
        return out

    def reset_stats(self) -> None:
        self.state.reset_stats()


# -- generated repos -------------------------------------------------------------------------

LAION_COCO_NAME = "part-{:05d}-2256f782-126f-4dc6-b9c6-e6757637749d-c000.snappy.parquet"
SUBJECTS = ["a dog", "two cats", "a red car", "a man", "a woman", "a bowl of soup", "a train"]
ACTIONS = ["sitting on", "next to", "in front of", "parked near", "walking along", "on top of"]
PLACES = ["a wooden bench", "the beach", "a city street", "a kitchen table", "a snowy field"]


def _caption(rng: random.Random) -> str:
    return f"{rng.choice(SUBJECTS)} {rng.choice(ACTIONS)} {rng.choice(PLACES)}"


def _repo_dir(root: str | Path, repo_id: str) -> Path:
    path = Path(root) / "datasets" / repo_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def make_laion_coco_repo(
    root: str | Path,
    *,
    n_files: int = 15,
    rows_per_file: int = 20,
    url_host: str = "127.0.0.1:8000",
    seed: int = 0,
) -> Path:
    """Write `ROOT/datasets/laion/laion-coco` with `n_files` parquet parts; return the repo dir.

    Columns as in the real files: URL, TEXT, top_caption, all_captions (list<string>),
    all_similarities (list<double>), WIDTH, HEIGHT, similarity, hash, pwatermark, punsafe.
    URLs point at `http://<url_host>/laion-coco/<part>/<row>.jpg` (`url_host` may also be a
    whole base URL). Same arguments, same bytes.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = url_host.rstrip("/") if "://" in url_host else f"http://{url_host}"
    repo = _repo_dir(root, "laion/laion-coco")
    schema = pa.schema(
        [
            ("URL", pa.string()),
            ("TEXT", pa.string()),
            ("top_caption", pa.string()),
            ("all_captions", pa.list_(pa.string())),
            ("all_similarities", pa.list_(pa.float64())),
            ("WIDTH", pa.int64()),
            ("HEIGHT", pa.int64()),
            ("similarity", pa.float64()),
            ("hash", pa.int64()),
            ("pwatermark", pa.float64()),
            ("punsafe", pa.float64()),
        ]
    )
    for part in range(n_files):
        rng = random.Random(f"laion-coco:{seed}:{part}")
        rows: dict[str, list[Any]] = {name: [] for name in schema.names}
        for row in range(rows_per_file):
            captions = [_caption(rng) for _ in range(rng.randint(3, 6))]
            sims = [round(rng.uniform(0.2, 0.45), 6) for _ in captions]
            best = captions[max(range(len(sims)), key=sims.__getitem__)]
            rows["URL"].append(f"{base}/laion-coco/{part:05d}/{row:06d}.jpg")
            rows["TEXT"].append(best)
            rows["top_caption"].append(best)
            rows["all_captions"].append(captions)
            rows["all_similarities"].append(sims)
            rows["WIDTH"].append(rng.choice([256, 320, 480, 500, 640, 1024]))
            rows["HEIGHT"].append(rng.choice([240, 256, 333, 375, 480, 768]))
            rows["similarity"].append(round(rng.uniform(0.28, 0.4), 6))
            rows["hash"].append(rng.getrandbits(63) - (1 << 62))
            rows["pwatermark"].append(round(rng.random() * 0.6, 6))
            rows["punsafe"].append(round(rng.random() * 0.1, 6))
        buf = io.BytesIO()
        pq.write_table(pa.table(rows, schema=schema), buf, compression="snappy")
        _write(repo / LAION_COCO_NAME.format(part), buf.getvalue())
    readme = (
        "---\nlicense: cc-by-4.0\nlanguage:\n- en\nsize_categories:\n- 100M<n<1B\n---\n"
        "# LAION-COCO (stand-in)\n\nBLIP captions for LAION images, parquet metadata only: "
        "URL, TEXT, all_captions, all_similarities. Generated by vlprep for tests.\n"
    )
    _write(repo / "README.md", readme.encode())
    _write(repo / ".gitattributes", b"*.parquet filter=lfs diff=lfs merge=lfs -text\n")
    return repo


def _jpeg(rng: random.Random, width: int, height: int) -> bytes:
    from PIL import Image

    img = Image.new("RGB", (width, height), tuple(rng.randrange(256) for _ in range(3)))
    # A few blocks so the JPEG is not trivially flat.
    for _ in range(4):
        x, y = rng.randrange(width), rng.randrange(height)
        block = Image.new("RGB", (max(1, width // 4), max(1, height // 4)))
        block.paste(tuple(rng.randrange(256) for _ in range(3)), (0, 0, *block.size))
        img.paste(block, (x, y))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def make_cc3m_wds_repo(
    root: str | Path,
    *,
    n_train_shards: int = 3,
    n_valid_shards: int = 2,
    samples_per_shard: int = 20,
    seed: int = 0,
) -> Path:
    """Write `ROOT/datasets/pixparse/cc3m-wds` like the real repo; return the repo dir.

    `cc3m-train-%04d.tar` (samples jpg, txt, json) and `cc3m-validation-%04d.tar` (jpg, txt,
    no json, as in the real validation shards), `_info.json` with split sizes, README.md.
    """
    repo = _repo_dir(root, "pixparse/cc3m-wds")
    splits: dict[str, Any] = {}
    for split, shards in (("train", n_train_shards), ("validation", n_valid_shards)):
        names, lengths = [], []
        for shard in range(shards):
            rng = random.Random(f"cc3m-wds:{seed}:{split}:{shard}")
            members = []
            for idx in range(samples_per_shard):
                key = f"{shard:04d}{idx:05d}"
                width, height = rng.choice([(32, 24), (24, 32), (40, 30), (32, 32)])
                jpg = _jpeg(rng, width, height)
                caption = _caption(rng)
                members += [(f"{key}.jpg", jpg), (f"{key}.txt", caption.encode())]
                if split == "train":
                    meta = {
                        "caption": caption,
                        "url": f"http://127.0.0.1:8000/cc3m/{key}.jpg",
                        "key": key,
                        "status": "success",
                        "error_message": None,
                        "width": width,
                        "height": height,
                        "original_width": width * 8,
                        "original_height": height * 8,
                        "exif": "{}",
                        "sha256": hashlib.sha256(jpg).hexdigest(),
                    }
                    members.append((f"{key}.json", json.dumps(meta).encode()))
            name = f"cc3m-{split}-{shard:04d}.tar"
            write_tar(repo / name, members, mtime=1_700_000_000)
            names.append(name)
            lengths.append(samples_per_shard)
        splits[split] = {
            "name": split,
            "filenames": names,
            "shard_lengths": lengths,
            "num_samples": sum(lengths),
        }
    info = {"name": "cc3m", "splits": splits}
    _write(repo / "_info.json", (json.dumps(info, indent=2) + "\n").encode())
    readme = (
        "---\nlicense: other\nlicense_name: conceptual-captions\ntask_categories:\n"
        "- image-to-text\nsize_categories:\n- 1M<n<10M\n---\n"
        "# Dataset Card for Conceptual Captions (CC3M), webdataset (stand-in)\n\n"
        "Shards `cc3m-train-{0000..}.tar` (jpg, txt, json) and `cc3m-validation-{0000..}.tar` "
        "(jpg, txt). Generated by vlprep for tests.\n"
    )
    _write(repo / "README.md", readme.encode())
    _write(repo / ".gitattributes", b"*.tar filter=lfs diff=lfs merge=lfs -text\n")
    return repo


CALTECH101_REPO = "vlprep-standin/caltech-101"
CALTECH101_CATEGORIES = ("Faces_easy", "accordion", "airplanes", "anchor", "ant")
ZIP_DATE = (2020, 1, 2, 3, 4, 0)
ARCHIVE_MTIME = 1_600_000_000


def _tar_bytes(files: dict[str, bytes], *, mtime: int = ARCHIVE_MTIME) -> bytes:
    """A tar of `files` with their folders as members, as GNU tar lists them (deterministic)."""
    buf = io.BytesIO()
    folders = sorted(
        {name.rsplit("/", i)[0] for name in files for i in range(1, name.count("/") + 1)}
    )
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(folders, key=lambda folder: (folder.count("/"), folder)):
            info = tarfile.TarInfo(name + "/")
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
            tar.addfile(info)
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(files[name]), 0o644, mtime
            tar.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()


def _fake_mat(rng: random.Random) -> bytes:
    """Bytes shaped like a MATLAB 5.0 MAT-file: the 128-byte header, then some data."""
    text = b"MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2007"
    return text.ljust(124, b" ") + b"\x00\x01IM" + rng.randbytes(rng.randint(200, 600))


def make_caltech101_repo(root: str | Path, *, images_per_category: int = 3, seed: int = 0) -> Path:
    """Write `ROOT/datasets/vlprep-standin/caltech-101` holding `caltech-101.zip` shaped like
    the one Caltech publishes (and torchvision unpacks); return the repo dir.

    The zip holds `caltech-101/101_ObjectCategories.tar.gz` (`101_ObjectCategories/<category>/
    image_0001.jpg` ...), `caltech-101/Annotations.tar` (`Annotations/<category>/
    annotation_0001.mat` ...; Faces_easy's folder is named Faces_3 there, as in the real one)
    and `caltech-101/show_annotation.m`: archives inside an archive, on the hub.
    """
    repo = _repo_dir(root, CALTECH101_REPO)
    images, annotations = {}, {}
    for category in CALTECH101_CATEGORIES:
        rng = random.Random(f"caltech101:{seed}:{category}")
        folder = "Faces_3" if category == "Faces_easy" else category
        for index in range(1, images_per_category + 1):
            width, height = rng.choice([(48, 32), (32, 48), (40, 40)])
            images[f"101_ObjectCategories/{category}/image_{index:04d}.jpg"] = _jpeg(
                rng, width, height
            )
            annotations[f"Annotations/{folder}/annotation_{index:04d}.mat"] = _fake_mat(rng)
    inner_tar_gz = gzip.compress(_tar_bytes(images), mtime=0)
    members = {
        "caltech-101/101_ObjectCategories.tar.gz": inner_tar_gz,
        "caltech-101/Annotations.tar": _tar_bytes(annotations),
        "caltech-101/show_annotation.m": b"function show_annotation(imgpath, annotationpath)\n",
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("caltech-101/", ZIP_DATE), b"")
        for name, data in members.items():
            info = zipfile.ZipInfo(name, ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED if name.endswith(".m") else zipfile.ZIP_STORED
            zf.writestr(info, data)
    _write(repo / "caltech-101.zip", buf.getvalue())
    readme = (
        "---\nlicense: cc-by-4.0\ntask_categories:\n- image-classification\n---\n"
        "# Caltech 101 (stand-in)\n\n`caltech-101.zip` as Caltech publishes it: two archives "
        "inside (images, annotations). Generated by vlprep for tests.\n"
    )
    _write(repo / "README.md", readme.encode())
    _write(repo / ".gitattributes", b"*.zip filter=lfs diff=lfs merge=lfs -text\n")
    return repo


GENERATORS = {
    "laion-coco": make_laion_coco_repo,
    "cc3m-wds": make_cc3m_wds_repo,
    "caltech-101": make_caltech101_repo,
}


def main(argv: list[str] | None = None) -> int:
    parser = cli_parser(__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, type=Path, help="directory holding datasets/")
    parser.add_argument("--page-size", type=int, default=DEFAULT_PAGE_SIZE)
    parser.add_argument("--faults", type=Path, help="JSON file with a list of fault rules")
    parser.add_argument(
        "--generate", default="", help=f"comma list of repos to write first: {sorted(GENERATORS)}"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s hub-standin: %(message)s")
    for name in filter(None, args.generate.split(",")):
        if name not in GENERATORS:
            parser.error(f"--generate: unknown repo {name!r}; choose from {sorted(GENERATORS)}")
        log.info("generated %s", GENERATORS[name](args.root))
    faults = json.loads(args.faults.read_text()) if args.faults else []
    hub = HubStandin(args.root, args.port, args.host, page_size=args.page_size, faults=faults)
    return serve_cli(hub, args, f"{args.root} as a Hugging Face Hub")


if __name__ == "__main__":
    sys.exit(main())
