"""Stand-in dataset host: serves a directory over HTTP/1.1 on 127.0.0.1, with faults on demand.

Real dataset hosts drop connections, rate-limit, answer with HTML login pages and replace
files in place. The downloader must survive all of that, so the tests and demos need a host
that misbehaves exactly when told to. This one speaks enough HTTP for that: GET/HEAD, single
byte ranges (206/416), strong ETags, Last-Modified, If-Range, and `sendfile` for speed. Each
connection has its own thread, so dozens of parallel ranged downloads are served at once.

Real hosts are also slow in ways that decide how a downloader should fetch a large file, so
the host as a whole can be made slow like them (settings; all off by default):

    rate            cap every connection's file bodies at `rate` bytes/s: a token bucket per
                    connection, paced in slices of ~20 ms, so N connections get N x rate
    latency         wait `latency` seconds before every answer's first byte (the round trip
                    a real host is away; ranged requests pay it too)
    max_connections at most N requests in flight per client IP; past that, answer 429 with
                    `Retry-After: 1`, as CDNs do (counted as `over_limit` in the statistics)
    ignore_range    answer every GET with 200 and the whole file, without Accept-Ranges,
                    as hosts that do not support ranges do

Settings are given at start-up (`--rate`, `--latency`, `--max-connections`, `--ignore-range`)
or at run time: `POST /_standin/settings` (a JSON object; the keys it names change),
`GET` shows them, `DELETE` turns them all off.

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
`GET /_standin/stats` reports, per path, requests, statuses, body bytes sent (`bytes_sent`,
counted as they go out, so what a killed client was sent is in it; `?settle=0` answers
without waiting for running requests, to follow a download), `over_limit` (requests
refused by max_connections), `peak_concurrent` (per client IP, the most requests for the path
it had in flight at once) and the last request's Range/If-Range/User-Agent/Accept-Encoding;
`DELETE` resets them.
From Python: `with StandinServer(root, rate=4e6) as srv: srv.url, srv.set_faults([...]),
srv.set_settings(latency=0.04), srv.stats()`.
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
import time
import urllib.parse
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from standin.base import Service, StateServer, cli_parser, copy_with_faults, serve_cli, served_size

log = logging.getLogger(__name__)

CONTROL_PREFIX = "_standin/"
COPY_CHUNK = 1 << 20
# Uncapped bodies go out in sendfile calls of this size: few enough to cost nothing, and
# bytes_sent follows a long answer while it runs (a benchmark kills a client mid-file by it).
SENDFILE_MAX = 16 << 20
RECORDED_HEADERS = ("Range", "If-Range", "User-Agent", "Accept-Encoding")
_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")
# Pacing under a rate cap: one slice of the body per ~20 ms, within these sizes. Big enough
# that 32 capped connections cost little CPU, small enough that the stream is smooth.
PACE_SECONDS = 0.02
PACE_MIN, PACE_MAX = 16 << 10, 1 << 20
OVER_LIMIT_RETRY_AFTER = "1"
_RATE_RE = re.compile(r"(\d+(?:\.\d*)?)\s*([kmg]?)(i?)b?(?:/s)?", re.IGNORECASE)

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


@dataclass(frozen=True)
class HostSettings:
    """How slow the whole host is (see the module docstring); the defaults slow nothing.

    Frozen: a request reads `state.settings` once and keeps that snapshot, and a change swaps
    in a new object, so no lock is needed to read them.
    """

    rate: float | None = None  # bytes/s per connection, file bodies only
    latency: float = 0.0  # seconds before each answer's first byte
    max_connections: int | None = None  # requests in flight per client IP
    ignore_range: bool = False

    def __post_init__(self) -> None:
        if self.rate is not None and not self.rate > 0:
            raise ValueError(f"rate must be a positive number of bytes/s or null, got {self.rate}")
        if not self.latency >= 0:
            raise ValueError(f"latency must be >= 0 seconds, got {self.latency}")
        if self.max_connections is not None and (
            isinstance(self.max_connections, bool)
            or not isinstance(self.max_connections, int)
            or self.max_connections < 1
        ):
            raise ValueError(
                f"max_connections must be an integer >= 1 or null, got {self.max_connections!r}"
            )
        if not isinstance(self.ignore_range, bool):
            raise ValueError(f"ignore_range must be true or false, got {self.ignore_range!r}")

    def changed(self, changes: dict[str, Any]) -> "HostSettings":
        """These settings with `changes` applied; unknown names are errors, as with faults."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}; known: {sorted(asdict(self))}")
        changes = dict(changes)
        for name in ("rate", "latency"):  # JSON and the CLI give ints or floats alike
            if isinstance(changes.get(name), int | float) and not isinstance(changes[name], bool):
                changes[name] = float(changes[name])
        return replace(self, **changes)


def parse_rate(text: str) -> float:
    """Bytes per second from `4000000`, `4M`, `4MB/s` (powers of 1000) or `4MiB` (of 1024)."""
    match = _RATE_RE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"not a rate: {text!r} (say 4000000, 4M, 4MB/s or 4MiB)")
    number, prefix, binary = match.groups()
    base = 1024 if binary else 1000
    return float(number) * base ** " kmg".index(prefix.lower() or " ")


class Pacer:
    """One connection's token bucket, as virtual scheduling: `due` is when the bytes sent so
    far are paid for at `rate`. Credit is at most one slice, so a connection that was idle
    does not burst, and sleeping late is caught up on (not lost) while within that slice."""

    def __init__(self) -> None:
        self.due = 0.0

    @staticmethod
    def slice(rate: float) -> int:
        """Bytes to send between waits: ~PACE_SECONDS worth, within PACE_MIN..PACE_MAX."""
        return int(min(max(rate * PACE_SECONDS, PACE_MIN), PACE_MAX))

    def wait(self) -> None:
        """Sleep until the bucket has a slice's credit again (at once if it has)."""
        wait = self.due - PACE_SECONDS - time.monotonic()
        if wait > 0:
            time.sleep(wait)

    def charge(self, sent: int, rate: float) -> None:
        """Charge `sent` bytes just sent. Waiting is before the next send, not after this
        one, so the last slice of an answer is not followed by a pointless sleep."""
        self.due = max(self.due, time.monotonic()) + sent / rate


class StandinState:
    """Fault rules, the host's settings, requests in flight per client and per-path
    statistics, shared by all request threads."""

    def __init__(
        self,
        root: Path,
        faults: list[dict[str, Any]] | None = None,
        settings: HostSettings | None = None,
    ) -> None:
        self.root = root.resolve()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy = 0
        self._rules: list[FaultRule] = []
        self._stats: dict[str, dict[str, Any]] = {}
        self.settings = settings or HostSettings()
        self._in_flight: Counter[str] = Counter()  # by client IP
        self._in_flight_path: Counter[tuple[str, str]] = Counter()  # by (client IP, path)
        self.set_faults(faults or [])

    def set_settings(self, **changes: Any) -> HostSettings:
        """Change the named settings (the others stay); returns them all."""
        with self._lock:
            self.settings = self.settings.changed(changes)
            return self.settings

    def reset_settings(self) -> HostSettings:
        with self._lock:
            self.settings = HostSettings()
            return self.settings

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

    def admit(self, client: str, rel: str, limit: int | None) -> bool:
        """Let a request from `client` in unless it already has `limit` in flight (then the
        caller answers 429); an admitted request is `release`d when answered."""
        with self._lock:
            if limit is not None and self._in_flight[client] >= limit:
                return False
            self._in_flight[client] += 1
            self._in_flight_path[client, rel] += 1
            peaks = self._entry(rel).setdefault("peak_concurrent", {})
            peaks[client] = max(peaks.get(client, 0), self._in_flight_path[client, rel])
            return True

    def release(self, client: str, rel: str) -> None:
        with self._lock:
            self._in_flight[client] -= 1
            self._in_flight_path[client, rel] -= 1
            # Counters keep zero entries; dropping them keeps a long benchmark's state small.
            if not self._in_flight[client]:
                del self._in_flight[client]
            if not self._in_flight_path[client, rel]:
                del self._in_flight_path[client, rel]

    def count_sent(self, rel: str, n: int) -> None:
        """Add body bytes to `rel`'s bytes_sent as they go out, before the request is recorded,
        so `stats(settle=0)` shows a download's progress."""
        with self._lock:
            self._entry(rel)["bytes_sent"] += n

    def _entry(self, rel: str) -> dict[str, Any]:
        """`rel`'s statistics, created empty (the caller holds the lock)."""
        return self._stats.setdefault(
            rel, {"requests": 0, "bytes_sent": 0, "statuses": {}, "over_limit": 0}
        )

    def record(
        self,
        rel: str,
        status: int,
        body_bytes: int,
        headers: dict[str, str],
        over_limit: bool = False,
    ) -> None:
        """Count one answered request; keep its interesting headers so tests can check them."""
        with self._lock:
            self._busy -= 1
            self._idle.notify_all()
            entry = self._entry(rel)
            entry["last_request"] = headers
            entry["requests"] += 1
            entry["bytes_sent"] += body_bytes
            entry["statuses"][str(status)] = entry["statuses"].get(str(status), 0) + 1
            entry["over_limit"] += over_limit

    def stats(self, settle: float = 2.0) -> dict[str, dict[str, Any]]:
        """Per-path statistics, after waiting up to `settle` s for requests still being answered.

        A client returns as soon as it has the last byte, maybe before the server thread has
        counted it; waiting here keeps tests free of that race. `settle=0` answers at once,
        with the bytes sent so far by requests still running (to follow a download).
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
    settings: HostSettings  # the host's settings as this request began

    def setup(self) -> None:
        super().setup()
        self.pacer = Pacer()  # per connection: the cap holds across keep-alive requests

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle(send_body=True)

    def do_HEAD(self) -> None:
        self._handle(send_body=False)

    def do_POST(self) -> None:
        rel = self._rel()
        if rel not in (CONTROL_PREFIX + "faults", CONTROL_PREFIX + "settings"):
            message = b"POST only on /_standin/faults and /_standin/settings\n"
            self._reply(HTTPStatus.METHOD_NOT_ALLOWED, message)
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        state = self.server.state
        try:
            if rel == CONTROL_PREFIX + "settings":
                changes = json.loads(body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("settings must be a JSON object")
                self._reply_json(asdict(state.set_settings(**changes)))
                return
            state.set_faults(json.loads(body or b"[]"))
        except (ValueError, TypeError, AttributeError) as exc:
            what = rel.removeprefix(CONTROL_PREFIX)
            self._reply(HTTPStatus.BAD_REQUEST, f"bad {what}: {exc}\n".encode())
            return
        self._reply_json(state.faults())

    def do_DELETE(self) -> None:
        rel = self._rel()
        if rel == CONTROL_PREFIX + "faults":
            self.server.state.set_faults([])
        elif rel == CONTROL_PREFIX + "stats":
            self.server.state.reset_stats()
        elif rel == CONTROL_PREFIX + "settings":
            self.server.state.reset_settings()
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
        state = self.server.state
        self.settings = settings = state.settings
        client = self.client_address[0]
        status, sent = HTTPStatus.INTERNAL_SERVER_ERROR, 0
        self.rel, self.counted_live = rel, 0
        state.begin()
        admitted = state.admit(client, rel, settings.max_connections)
        try:
            if settings.latency:
                time.sleep(settings.latency)  # a refusal comes from as far away as a file
            if admitted:
                status, sent = self._serve(rel, state.active_faults(rel), send_body)
            else:
                status = HTTPStatus.TOO_MANY_REQUESTS
                headers = {"Retry-After": OVER_LIMIT_RETRY_AFTER}
                body = b"too many connections from your address\n"
                sent = self._reply(status, body, headers=headers, send_body=send_body)
        finally:
            if admitted:
                state.release(client, rel)
            seen = {name: self.headers[name] for name in RECORDED_HEADERS if name in self.headers}
            unrecorded = sent - self.counted_live  # e.g. an error page's body
            state.record(rel, status, unrecorded, seen, over_limit=not admitted)

    def _control(self, rel: str) -> None:
        if rel == CONTROL_PREFIX + "stats":
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            try:
                settle = float(query.get("settle", ["2"])[0])
            except ValueError:
                self._reply(HTTPStatus.BAD_REQUEST, b"settle must be a number of seconds\n")
                return
            self._reply_json(self.server.state.stats(settle))
        elif rel == CONTROL_PREFIX + "faults":
            self._reply_json(self.server.state.faults())
        elif rel == CONTROL_PREFIX + "settings":
            self._reply_json(asdict(self.server.state.settings))
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
            }
            if not self.settings.ignore_range:
                headers["Accept-Ranges"] = "bytes"
            try:
                span = None if self.settings.ignore_range else self._requested_span(size, headers)
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
        self.rate = self.settings.rate
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
        """Send with `sendfile` (no copy through Python: 32 capped connections stay cheap), in
        paced slices under a rate cap."""
        self.wfile.flush()
        out_fd, in_fd = self.connection.fileno(), fh.fileno()
        most = self.pacer.slice(self.rate) if self.rate else SENDFILE_MAX
        while self.body_sent < count:
            chunk = min(count - self.body_sent, most)
            if self.rate:
                self.pacer.wait()
            n = os.sendfile(out_fd, in_fd, start + self.body_sent, chunk)
            if n == 0:
                break
            self._count_sent(n)
            if self.rate:
                self.pacer.charge(n, self.rate)

    def _copy_slowly(self, fh, start: int, count: int, faults: dict[str, dict]) -> None:
        """Python-side copy for the faults that must see or pace the bytes."""
        write = self._paced_write if self.rate else self.wfile.write
        copy_with_faults(write, fh, start, count, faults, self._count_sent)

    def _paced_write(self, data: bytes | bytearray) -> None:
        """Write under the connection's rate cap (on top of a trickle fault's own pacing)."""
        view, most = memoryview(data), self.pacer.slice(self.rate)
        for begin in range(0, len(view), most):
            piece = view[begin : begin + most]
            self.pacer.wait()
            self.wfile.write(piece)
            self.pacer.charge(len(piece), self.rate)

    def _count_sent(self, n: int) -> None:
        self.body_sent += n
        self.counted_live += n
        self.server.state.count_sent(self.rel, n)


class FaultControls:
    """Faults, settings and statistics of a service whose state is a StandinState, from
    Python."""

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

    def set_settings(self, **changes: Any) -> dict[str, Any]:
        """Change the named host settings (rate, latency, max_connections, ignore_range);
        returns them all."""
        return asdict(self.state.set_settings(**changes))

    def settings(self) -> dict[str, Any]:
        return asdict(self.state.settings)


class StandinServer(FaultControls, Service):
    """The stand-in host in a background thread, for tests: `with StandinServer(root) as srv:`."""

    name = "standin"

    def __init__(
        self,
        root: str | Path,
        port: int = 0,
        host: str = "127.0.0.1",
        faults: list[dict[str, Any]] | None = None,
        *,
        rate: float | None = None,
        latency: float = 0.0,
        max_connections: int | None = None,
        ignore_range: bool = False,
    ) -> None:
        settings = HostSettings().changed(
            {
                "rate": rate,
                "latency": latency,
                "max_connections": max_connections,
                "ignore_range": ignore_range,
            }
        )
        state = StandinState(Path(root), faults, settings)
        super().__init__(StandinHandler, state, host, port)

    @property
    def url(self) -> str:
        """Base URL with a trailing slash: `srv.url + "coco/train.zip"`."""
        return self.address + "/"


def main(argv: list[str] | None = None) -> int:
    parser = cli_parser(__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, type=Path, help="directory to serve")
    parser.add_argument("--faults", type=Path, help="JSON file with a list of fault rules")
    parser.add_argument(
        "--rate", type=parse_rate, help="cap per connection, bytes/s (4000000, 4MB/s, 4MiB)"
    )
    parser.add_argument(
        "--latency", type=float, default=0.0, help="seconds before each answer's first byte"
    )
    parser.add_argument(
        "--max-connections", type=int, help="requests in flight per client IP; then 429"
    )
    parser.add_argument(
        "--ignore-range", action="store_true", help="answer Range requests with the whole file"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s standin: %(message)s")
    faults = json.loads(args.faults.read_text()) if args.faults else []
    server = StandinServer(
        args.root,
        args.port,
        args.host,
        faults,
        rate=args.rate,
        latency=args.latency,
        max_connections=args.max_connections,
        ignore_range=args.ignore_range,
    )
    shown = {k: v for k, v in server.settings().items() if v not in (None, 0.0, False)}
    return serve_cli(server, args, f"{args.root} ({len(faults)} fault rules, settings {shown})")


if __name__ == "__main__":
    sys.exit(main())
