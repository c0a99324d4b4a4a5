"""Stand-in dataset host: serves a directory over HTTP/1.1 on 127.0.0.1, with faults on demand.

Real dataset hosts drop connections, rate-limit, answer with HTML login pages and replace
files in place. The downloader must survive all of that, so the tests and demos need a host
that misbehaves exactly when told to. This one speaks enough HTTP for that: GET/HEAD, single
byte ranges (206/416), strong ETags, Last-Modified, If-Range, and `sendfile` for speed.

Faults are rules `{"kind": ..., "path": glob, "after": N, "times": K, ...params}`. A rule
counts the requests whose path (no leading slash) matches `path`; it is active from the
`after`-th match on (default 0, for `change` 1) for `times` matches (default: forever).

    drop         close the connection after `bytes` body bytes (default: half the body)
    status       answer `code` (default 503) instead of the file
    ratelimit    answer 429 with `Retry-After: <retry_after>` (default 1; a string is sent as is)
    trickle      send at most `rate` bytes/s (default 65536)
    html         answer `code` (default 200) with an HTML page of `content_type` (text/html)
    wrong_bytes  flip the byte at file offset `offset` (default: the middle); same length
    wrong_length serve the file as if it held only its first `bytes` bytes (default: half):
                 Content-Length, Content-Range and body agree, a complete answer of the wrong size
    not_found    answer `code` (default 404)
    change       serve the file `to` (relative to the root) in place of the requested one

Rules are set at start-up (`--faults FILE`, a JSON list) or at run time:
`POST /_standin/faults` (JSON list, replaces), `GET` lists them, `DELETE` clears them.
`GET /_standin/stats` reports, per path, requests, statuses, body bytes sent and the last
request's Range/If-Range/User-Agent/Accept-Encoding; `DELETE` resets them.
From Python: `with StandinServer(root) as srv: srv.url, srv.set_faults([...]), srv.stats()`.
"""

import copy
import email.utils
import fnmatch
import json
import logging
import mimetypes
import os
import re
import socket
import sys
import threading
import urllib.parse
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from standin.base import Service, StateServer, cli_parser, copy_with_faults, serve_cli, served_size

log = logging.getLogger(__name__)

CONTROL_PREFIX = "_standin/"
COPY_CHUNK = 1 << 20
SENDFILE_MAX = 1 << 30
RECORDED_HEADERS = ("Range", "If-Range", "User-Agent", "Accept-Encoding")
_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")

# Parameters each fault kind accepts, with their defaults (None: computed per request).
FAULT_PARAMS: dict[str, dict[str, Any]] = {
    "drop": {"bytes": None},
    "status": {"code": 503},
    "ratelimit": {"retry_after": 1},
    "trickle": {"rate": 65536},
    "html": {"code": 200, "content_type": "text/html; charset=utf-8"},
    "wrong_bytes": {"offset": None},
    "wrong_length": {"bytes": None},
    "not_found": {"code": 404},
    "change": {"to": None},
}
HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Sign in required</title></head>\n"
    b"<body><h1>Please sign in to download this file</h1>"
    b"<p>Your download quota may have been exceeded.</p></body></html>\n"
)


@dataclass
class FaultRule:
    """One switchable fault, with the number of requests it has matched so far."""

    kind: str
    path: str = "*"
    after: int = 0
    times: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    hits: int = 0

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> "FaultRule":
        """Validate a JSON rule; unknown kinds or keys are errors so typos do not go unnoticed."""
        spec = dict(spec)
        kind = spec.pop("kind", None)
        if kind not in FAULT_PARAMS:
            raise ValueError(f"fault kind must be one of {sorted(FAULT_PARAMS)}, got {kind!r}")
        path = str(spec.pop("path", "*")).lstrip("/")
        after = int(spec.pop("after", 1 if kind == "change" else 0))
        times = spec.pop("times", None)
        unknown = set(spec) - set(FAULT_PARAMS[kind])
        if unknown:
            raise ValueError(f"fault {kind!r} does not take {sorted(unknown)}")
        if kind == "change" and not spec.get("to"):
            raise ValueError("fault 'change' needs 'to': the file served once it has changed")
        params = {**FAULT_PARAMS[kind], **spec}
        return cls(kind, path, after, None if times is None else int(times), params)

    def to_dict(self) -> dict[str, Any]:
        head = {"kind": self.kind, "path": self.path, "after": self.after, "times": self.times}
        return head | self.params | {"hits": self.hits}

    def hit(self, rel: str) -> bool:
        """Count a request for `rel`; True if the rule applies to this request."""
        if not fnmatch.fnmatchcase(rel, self.path):
            return False
        index = self.hits
        self.hits += 1
        return index >= self.after and (self.times is None or index < self.after + self.times)


class StandinState:
    """Fault rules and per-path statistics, shared by all request threads."""

    def __init__(self, root: Path, faults: list[dict[str, Any]] | None = None) -> None:
        self.root = root.resolve()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy = 0
        self._rules: list[FaultRule] = []
        self._stats: dict[str, dict[str, Any]] = {}
        self.set_faults(faults or [])

    def set_faults(self, specs: list[dict[str, Any]]) -> None:
        rules = [FaultRule.from_dict(spec) for spec in specs]
        with self._lock:
            self._rules = rules

    def faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.to_dict() for rule in self._rules]

    def active_faults(self, rel: str) -> dict[str, dict[str, Any]]:
        """Params of the faults that apply to this request, by kind (first rule of a kind wins)."""
        active: dict[str, dict[str, Any]] = {}
        with self._lock:
            for rule in self._rules:
                if rule.hit(rel):
                    active.setdefault(rule.kind, dict(rule.params))
        return active

    def begin(self) -> None:
        """A file request started; `stats` waits for it to be recorded."""
        with self._lock:
            self._busy += 1

    def record(self, rel: str, status: int, body_bytes: int, headers: dict[str, str]) -> None:
        """Count one answered request; keep its interesting headers so tests can check them."""
        with self._lock:
            self._busy -= 1
            self._idle.notify_all()
            entry = self._stats.setdefault(rel, {"requests": 0, "bytes_sent": 0, "statuses": {}})
            entry["last_request"] = headers
            entry["requests"] += 1
            entry["bytes_sent"] += body_bytes
            entry["statuses"][str(status)] = entry["statuses"].get(str(status), 0) + 1

    def stats(self, settle: float = 2.0) -> dict[str, dict[str, Any]]:
        """Per-path statistics, after waiting up to `settle` s for requests still being answered.

        A client returns as soon as it has the last byte, maybe before the server thread has
        counted it; waiting here keeps tests free of that race.
        """
        with self._idle:
            self._idle.wait_for(lambda: self._busy == 0, timeout=settle)
            return copy.deepcopy(self._stats)

    def reset_stats(self, settle: float = 2.0) -> None:
        """Forget the statistics, after requests still being answered are counted (see stats)."""
        with self._idle:
            self._idle.wait_for(lambda: self._busy == 0, timeout=settle)
            self._stats.clear()


def etag_of(st: os.stat_result) -> str:
    """Strong ETag from inode, size and mtime: stable across restarts, new when the file is."""
    return f'"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"'


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single `bytes=` range; None to serve the whole file.

    Raises ValueError when the range cannot be satisfied (the caller answers 416).
    Multi-range and malformed headers are ignored, which RFC 9110 allows.
    """
    match = _RANGE_RE.fullmatch((header or "").strip())
    if not match or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":
        start, end = max(0, size - int(last)), size - 1
    else:
        start = int(first)
        end = min(size - 1, int(last)) if last else size - 1
        if last and int(last) < start:
            return None
    if start >= size or end < start:
        raise ValueError("unsatisfiable range")
    return start, end


class StandinHandler(BaseHTTPRequestHandler):
    """One connection; `server.state` holds the root, the faults and the statistics."""

    protocol_version = "HTTP/1.1"
    server_version = "vlprep-standin/1"
    server: StateServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle(send_body=True)

    def do_HEAD(self) -> None:
        self._handle(send_body=False)

    def do_POST(self) -> None:
        if self._rel() != CONTROL_PREFIX + "faults":
            self._reply(HTTPStatus.METHOD_NOT_ALLOWED, b"POST only on /_standin/faults\n")
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            self.server.state.set_faults(json.loads(self.rfile.read(length) or b"[]"))
        except (ValueError, TypeError, AttributeError) as exc:
            self._reply(HTTPStatus.BAD_REQUEST, f"bad fault rules: {exc}\n".encode())
            return
        self._reply_json(self.server.state.faults())

    def do_DELETE(self) -> None:
        rel = self._rel()
        if rel == CONTROL_PREFIX + "faults":
            self.server.state.set_faults([])
        elif rel == CONTROL_PREFIX + "stats":
            self.server.state.reset_stats()
        else:
            self._reply(HTTPStatus.METHOD_NOT_ALLOWED, b"DELETE only on /_standin/*\n")
            return
        self._reply_json({"ok": True})

    def _rel(self) -> str:
        return urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")

    def _reply(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        headers: dict[str, str] | None = None,
        send_body: bool = True,
    ) -> int:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)
            return len(body)
        return 0

    def _reply_json(self, data: Any) -> None:
        self._reply(HTTPStatus.OK, json.dumps(data, indent=1).encode(), "application/json")

    def _handle(self, send_body: bool) -> None:
        rel = self._rel()
        if rel.startswith(CONTROL_PREFIX):
            self._control(rel)
            return
        status, sent = HTTPStatus.INTERNAL_SERVER_ERROR, 0
        self.server.state.begin()
        try:
            status, sent = self._serve(rel, self.server.state.active_faults(rel), send_body)
        finally:
            seen = {name: self.headers[name] for name in RECORDED_HEADERS if name in self.headers}
            self.server.state.record(rel, status, sent, seen)

    def _control(self, rel: str) -> None:
        if rel == CONTROL_PREFIX + "stats":
            self._reply_json(self.server.state.stats())
        elif rel == CONTROL_PREFIX + "faults":
            self._reply_json(self.server.state.faults())
        else:
            self._reply(HTTPStatus.NOT_FOUND, b"unknown control endpoint\n")

    def _serve(self, rel: str, faults: dict[str, dict], send_body: bool) -> tuple[int, int]:
        """Answer one file request; returns (status, body bytes sent)."""
        early = self._fault_reply(faults, send_body)
        if early:
            return early
        source = self._resolve(faults["change"]["to"] if "change" in faults else rel)
        if source is None:
            code = HTTPStatus.NOT_FOUND
            return code, self._reply(code, f"{rel}: not found\n".encode(), send_body=send_body)
        with source.open("rb") as fh:
            st = os.fstat(fh.fileno())
            size = served_size(st.st_size, faults)
            headers = {
                "ETag": etag_of(st),
                "Last-Modified": email.utils.formatdate(st.st_mtime, usegmt=True),
                "Accept-Ranges": "bytes",
            }
            try:
                span = self._requested_span(size, headers)
            except ValueError:
                code = HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE
                headers["Content-Range"] = f"bytes */{size}"
                return code, self._reply(code, b"", headers=headers, send_body=send_body)
            start, end = span or (0, size - 1)
            code = HTTPStatus.PARTIAL_CONTENT if span else HTTPStatus.OK
            if span:
                headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            self.send_response(code)
            ctype = mimetypes.guess_type(source.name)[0] or "application/octet-stream"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(end - start + 1))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if not send_body:
                return code, 0
            return code, self._send_file(fh, start, end - start + 1, faults)

    def _fault_reply(self, faults: dict[str, dict], send_body: bool) -> tuple[int, int] | None:
        """Answer for the faults that replace the file entirely, or None to serve it."""
        if "not_found" in faults:
            code = faults["not_found"]["code"]
            return code, self._reply(code, b"not found (fault)\n", send_body=send_body)
        if "status" in faults:
            code = faults["status"]["code"]
            return code, self._reply(code, b"server error (fault)\n", send_body=send_body)
        if "ratelimit" in faults:
            code = HTTPStatus.TOO_MANY_REQUESTS
            headers = {"Retry-After": str(faults["ratelimit"]["retry_after"])}
            body = b"too many requests (fault)\n"
            return code, self._reply(code, body, headers=headers, send_body=send_body)
        if "html" in faults:
            html = faults["html"]
            code = html["code"]
            return code, self._reply(code, HTML_PAGE, html["content_type"], send_body=send_body)
        return None

    def _resolve(self, rel: str) -> Path | None:
        """The file under the root that `rel` names, or None (missing, a directory, outside)."""
        root = self.server.state.root
        path = (root / rel).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return None
        return path

    def _requested_span(self, size: int, headers: dict[str, str]) -> tuple[int, int] | None:
        """The range to serve, honouring If-Range (a stale validator means: whole file)."""
        if_range = self.headers.get("If-Range")
        if if_range and if_range not in (headers["ETag"], headers["Last-Modified"]):
            return None
        return parse_range(self.headers.get("Range"), size)

    def _send_file(self, fh, start: int, length: int, faults: dict[str, dict]) -> int:
        """Send `length` bytes from `start`, applying drop/trickle/wrong_bytes; returns bytes sent.

        Bytes are counted as they go out, so a client that vanishes mid-body (killed, timed
        out) is still charged for what it was sent: the tests measure re-transfer with this.
        """
        limit = length
        if "drop" in faults:
            drop_at = faults["drop"]["bytes"]
            limit = min(length, length // 2 if drop_at is None else int(drop_at))
        self.body_sent = 0
        try:
            if "trickle" in faults or "wrong_bytes" in faults:
                self._copy_slowly(fh, start, limit, faults)
            else:
                self._sendfile(fh, start, limit)
        except (BrokenPipeError, ConnectionResetError) as exc:
            log.debug("client went away: %s", exc)
            self.close_connection = True
            return self.body_sent
        if limit < length:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        return self.body_sent

    def _sendfile(self, fh, start: int, count: int) -> None:
        self.wfile.flush()
        out_fd, in_fd = self.connection.fileno(), fh.fileno()
        while self.body_sent < count:
            chunk = min(count - self.body_sent, SENDFILE_MAX)
            n = os.sendfile(out_fd, in_fd, start + self.body_sent, chunk)
            if n == 0:
                break
            self.body_sent += n

    def _copy_slowly(self, fh, start: int, count: int, faults: dict[str, dict]) -> None:
        """Python-side copy for the faults that must see or pace the bytes."""
        copy_with_faults(self.wfile.write, fh, start, count, faults, self._count_sent)

    def _count_sent(self, n: int) -> None:
        self.body_sent += n


class FaultControls:
    """Faults and statistics of a service whose state is a StandinState, from Python."""

    state: StandinState

    def set_faults(self, faults: list[dict[str, Any]]) -> None:
        self.state.set_faults(faults)

    def clear_faults(self) -> None:
        self.state.set_faults([])

    def faults(self) -> list[dict[str, Any]]:
        return self.state.faults()

    def stats(self) -> dict[str, dict[str, Any]]:
        return self.state.stats()

    def reset_stats(self) -> None:
        self.state.reset_stats()


class StandinServer(FaultControls, Service):
    """The stand-in host in a background thread, for tests: `with StandinServer(root) as srv:`."""

    name = "standin"

    def __init__(
        self,
        root: str | Path,
        port: int = 0,
        host: str = "127.0.0.1",
        faults: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(StandinHandler, StandinState(Path(root), faults), host, port)

    @property
    def url(self) -> str:
        """Base URL with a trailing slash: `srv.url + "coco/train.zip"`."""
        return self.address + "/"


def main(argv: list[str] | None = None) -> int:
    parser = cli_parser(__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, type=Path, help="directory to serve")
    parser.add_argument("--faults", type=Path, help="JSON file with a list of fault rules")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s standin: %(message)s")
    faults = json.loads(args.faults.read_text()) if args.faults else []
    server = StandinServer(args.root, args.port, args.host, faults)
    return serve_cli(server, args, f"{args.root} ({len(faults)} fault rules)")


if __name__ == "__main__":
    sys.exit(main())
