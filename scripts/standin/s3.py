"""Stand-in S3 endpoint: a real S3 server (moto) on 127.0.0.1, behind a front that misbehaves.

S3 catalog entries are fetched with boto3 and unsigned requests, so the far end in tests and
the demo must speak real S3: moto's server does (buckets, ACLs, Range, If-Match, 412, 416,
S3 XML errors). What moto cannot do is fail the way a real network does, so clients talk to a
small loopback front that forwards every request to moto and, on GetObject, applies fault
rules as in `standin.server` (same rule format: path glob over `bucket/key`, `after`,
`times`; only GetObject requests count towards them):

    drop         close the connection after `bytes` body bytes (default: half the body)
    wrong_bytes  flip the byte at object offset `offset` (default: the middle); same length
    wrong_length serve the object as if it held only its first `bytes` bytes (default: half),
                 Content-Length and Content-Range agreeing: a complete answer of the wrong size
    trickle      send at most `rate` bytes/s (default 65536)
    status       answer `code` (default 503) with an S3 XML error (503: SlowDown)
    ratelimit    answer 429 TooManyRequests with `Retry-After: <retry_after>` (default 1)
    html         answer `code` (default 200) with an HTML page (a captive portal or proxy)
    change       answer for the object `to` (`bucket/key`) instead, as if the object had been
                 replaced: its bytes and its ETag, so a resume's If-Match fails (412)

`POST|GET|DELETE /_standin/faults` and `GET|DELETE /_standin/stats` work as in the HTTP
stand-in; stats count, per `bucket/key`, requests, statuses and body bytes the front sent.

Objects come from a directory: `<root>/<bucket>/<key...>` files become objects of public
buckets, uploaded with ACL public-read (moto ignores bucket policies for anonymous requests).
moto keeps objects in memory, so keep the seeded files small.

From Python: `with S3Standin(root) as s3: fetch_s3(..., endpoint_url=s3.endpoint_url)`;
`s3.upload(bucket, key, data, public=False)` adds or replaces an object.
CLI: `python -m standin.s3 --root R [--private GLOB] --port 0 --port-file F`.

moto's state is global to its process: run one S3Standin per process at a time (each stop
resets it); the CLI runs in its own process.
"""

import fnmatch
import http.client
import json
import logging
import socket
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from standin.base import Service, StateServer, cli_parser, copy_with_faults, serve_cli, served_size
from standin.server import CONTROL_PREFIX, HTML_PAGE, FaultControls, StandinState

log = logging.getLogger(__name__)

S3_FAULTS = (
    "drop", "wrong_bytes", "wrong_length", "trickle", "status", "ratelimit", "html", "change",
)  # fmt: skip
ERROR_CODES = {429: "TooManyRequests", 500: "InternalError", 503: "SlowDown"}
COPY_CHUNK = 1 << 20
UPSTREAM_TIMEOUT = 60.0
# Headers that describe one hop, not the message (RFC 9110 7.6.1); plus Expect, which this
# front has already answered for the client.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer"}
    | {"transfer-encoding", "upgrade", "expect"}
)
RECORDED_HEADERS = ("Range", "If-Match", "User-Agent")
# Query parameters a GetObject may carry; anything else is another API (acl, tagging, ...).
GET_OBJECT_PARAMS = frozenset({"x-id", "versionId", "partNumber"})


class S3State(StandinState):
    """Fault rules and statistics (as in the HTTP stand-in) plus where moto listens."""

    def __init__(self, upstream: tuple[str, int], faults: list[dict[str, Any]] | None) -> None:
        self.upstream = upstream
        super().__init__(Path("."), faults)

    def set_faults(self, specs: list[dict[str, Any]]) -> None:
        for spec in specs:
            if spec.get("kind") not in S3_FAULTS:
                raise ValueError(f"S3 fault kind must be one of {S3_FAULTS}, got {spec!r}")
        super().set_faults(specs)


class _MotoRequestHandler(MotoRequestHandler):
    """moto's handler, logging through this module instead of one stderr line per request."""

    def log(self, type: str, message: str, *args: Any) -> None:
        level = logging.DEBUG if type == "info" else logging.WARNING
        log.log(level, "moto: %s %s", self.address_string(), message % args)


class _MotoServer:
    """moto's S3 server in a background thread (what moto's ThreadedMotoServer does, but with
    a free port, a quick shutdown and its socket closed, which keeps test teardown fast)."""

    def __init__(self, host: str) -> None:
        app = DomainDispatcherApplication(create_backend_app)
        self._httpd = make_server(host, 0, app, threaded=True, request_handler=_MotoRequestHandler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="moto",
            daemon=True,
        )
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def stop(self) -> None:
        """Forget every bucket (moto's backends are process-global), then shut down."""
        conn = http.client.HTTPConnection(*self.address, timeout=10)
        try:
            conn.request("POST", "/moto-api/reset")
            conn.getresponse().read()
        except OSError as exc:
            log.warning("could not reset moto: %s", exc)
        finally:
            conn.close()
        self._httpd.shutdown()
        self._thread.join()
        self._httpd.server_close()


class S3FrontHandler(BaseHTTPRequestHandler):
    """Forwards one client connection's requests to moto; faults apply to GetObject bodies."""

    protocol_version = "HTTP/1.1"
    server_version = "vlprep-s3-standin/1"
    server: StateServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

    def _dispatch(self) -> None:
        split = urllib.parse.urlsplit(self.path)
        rel = urllib.parse.unquote(split.path).lstrip("/")
        if rel.startswith(CONTROL_PREFIX):
            self._control(rel)
            return
        state: S3State = self.server.state
        faults = state.active_faults(rel) if self._is_get_object(rel, split.query) else {}
        status, sent = HTTPStatus.BAD_GATEWAY, 0
        state.begin()
        try:
            status, sent = self._answer(rel, faults)
        finally:
            seen = {name: self.headers[name] for name in RECORDED_HEADERS if name in self.headers}
            state.record(rel, status, sent, {"Method": self.command, **seen})

    def _is_get_object(self, rel: str, query: str) -> bool:
        bucket, _, key = rel.partition("/")
        params = urllib.parse.parse_qs(query, keep_blank_values=True)
        return self.command == "GET" and bool(bucket and key) and set(params) <= GET_OBJECT_PARAMS

    # -- answering ---------------------------------------------------------------------

    def _answer(self, rel: str, faults: dict[str, dict]) -> tuple[int, int]:
        """Reply to one request; returns (status, body bytes sent)."""
        if "status" in faults:
            return self._s3_error(faults["status"]["code"], rel)
        if "ratelimit" in faults:
            retry_after = {"Retry-After": str(faults["ratelimit"]["retry_after"])}
            return self._s3_error(HTTPStatus.TOO_MANY_REQUESTS, rel, retry_after)
        if "html" in faults:
            html = faults["html"]
            return html["code"], self._reply(html["code"], HTML_PAGE, html["content_type"])
        path = self.path
        if "change" in faults:
            split = urllib.parse.urlsplit(self.path)
            to = urllib.parse.quote(faults["change"]["to"].lstrip("/"))
            path = urllib.parse.urlunsplit(split._replace(path="/" + to))
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._reply(HTTPStatus.LENGTH_REQUIRED, b"send a Content-Length\n")
        upstream = http.client.HTTPConnection(*self.server.state.upstream, timeout=UPSTREAM_TIMEOUT)
        try:
            length = int(self.headers.get("Content-Length") or 0)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            # The client's Host header goes through unchanged, so signed requests stay valid.
            body = _chunks(self.rfile, length) if length else None
            upstream.request(self.command, path, body=body, headers=headers)
            resp = upstream.getresponse()
        except OSError as exc:
            upstream.close()
            log.warning("moto did not answer %s %s: %s", self.command, self.path, exc)
            return self._s3_error(HTTPStatus.BAD_GATEWAY, rel)
        try:
            return resp.status, self._relay(resp, faults)
        finally:
            resp.close()
            upstream.close()

    def _relay(self, resp: http.client.HTTPResponse, faults: dict[str, dict]) -> int:
        """Send moto's response on; returns the body bytes sent."""
        self.send_response_only(resp.status, resp.reason)
        cut = self._cut_headers(resp, faults) if resp.status in (200, 206) else {}
        for name, value in resp.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, cut.get(name.lower(), value))
        has_body = self.command != "HEAD" and resp.status not in (204, 304)
        if has_body and resp.length is None:
            self.send_header("Connection", "close")  # no length: the end of the body is EOF
        self.end_headers()
        if not has_body:
            return 0
        counter = _Counter()
        try:
            if faults and resp.status in (200, 206):
                self._send_with_faults(resp, faults, counter)
            else:
                while chunk := resp.read(COPY_CHUNK):
                    self.wfile.write(chunk)
                    counter(len(chunk))
        except (BrokenPipeError, ConnectionResetError) as exc:
            log.debug("client went away: %s", exc)
            self.close_connection = True
        return counter.total

    def _cut_headers(
        self, resp: http.client.HTTPResponse, faults: dict[str, dict]
    ) -> dict[str, str]:
        """Content-Length and Content-Range of an object served shorter (wrong_length), by
        lower-case header name; {} when the object is served as it is."""
        length = int(resp.getheader("Content-Length") or 0)
        start, total = _span(resp.getheader("Content-Range"), length)
        size = served_size(total, faults)
        if size == total:
            return {}
        end = max(start, min(start + length, size)) - 1
        cut = {"content-length": str(max(0, end - start + 1))}
        if resp.getheader("Content-Range"):
            cut["content-range"] = f"bytes {start}-{end}/{size}"
        return cut

    def _send_with_faults(
        self, resp: http.client.HTTPResponse, faults: dict[str, dict], counter: "_Counter"
    ) -> None:
        """Send the object bytes through copy_with_faults; a drop ends the connection."""
        length = int(resp.getheader("Content-Length") or 0)
        start, total = _span(resp.getheader("Content-Range"), length)
        if "wrong_bytes" in faults and faults["wrong_bytes"]["offset"] is None:
            faults["wrong_bytes"]["offset"] = total // 2
        length = max(0, min(length, served_size(total, faults) - start))  # wrong_length
        limit = length
        if "drop" in faults:
            drop_at = faults["drop"]["bytes"]
            limit = min(length, length // 2 if drop_at is None else int(drop_at))
        copy_with_faults(self.wfile.write, _Body(resp, start), start, limit, faults, counter)
        if limit < length:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    def _s3_error(
        self, code: int, rel: str, headers: dict[str, str] | None = None
    ) -> tuple[int, int]:
        name = ERROR_CODES.get(code, "ServiceUnavailable")
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{name}</Code><Message>{name} (stand-in fault)</Message>"
            f"<Resource>/{rel}</Resource><RequestId>standin</RequestId></Error>"
        ).encode()
        return code, self._reply(code, body, "application/xml", headers)

    def _reply(
        self,
        status: int,
        body: bytes,
        content_type: str = "text/plain; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> int:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return 0
        self.wfile.write(body)
        return len(body)

    # -- control -----------------------------------------------------------------------

    def _control(self, rel: str) -> None:
        state: S3State = self.server.state
        what = rel[len(CONTROL_PREFIX) :]
        if (what, self.command) == ("faults", "POST"):
            length = int(self.headers.get("Content-Length") or 0)
            try:
                state.set_faults(json.loads(self.rfile.read(length) or b"[]"))
            except (ValueError, TypeError, AttributeError) as exc:
                self._reply(HTTPStatus.BAD_REQUEST, f"bad fault rules: {exc}\n".encode())
                return
            self._reply_json(state.faults())
        elif what in ("faults", "stats") and self.command == "DELETE":
            state.set_faults([]) if what == "faults" else state.reset_stats()
            self._reply_json({"ok": True})
        elif what in ("faults", "stats") and self.command == "GET":
            self._reply_json(state.faults() if what == "faults" else state.stats())
        else:
            self._reply(HTTPStatus.NOT_FOUND, b"unknown control endpoint or method\n")

    def _reply_json(self, data: Any) -> None:
        self._reply(HTTPStatus.OK, json.dumps(data, indent=1).encode(), "application/json")


class _Counter:
    """Body bytes sent so far, told after every chunk (so a dropped client is still charged)."""

    def __init__(self) -> None:
        self.total = 0

    def __call__(self, n: int) -> None:
        self.total += n


class _Body:
    """moto's response body as the positioned file that copy_with_faults reads from."""

    def __init__(self, resp: http.client.HTTPResponse, start: int) -> None:
        self._resp = resp
        self._start = start

    def seek(self, pos: int) -> None:
        if pos != self._start:
            raise ValueError(f"the body starts at {self._start}, cannot seek to {pos}")

    def read(self, size: int) -> bytes:
        return self._resp.read(size)


def _chunks(rfile: BinaryIO, length: int) -> Iterator[bytes]:
    """A request body of `length` bytes, streamed through in pieces."""
    left = length
    while left > 0:
        chunk = rfile.read(min(COPY_CHUNK, left))
        if not chunk:
            return
        left -= len(chunk)
        yield chunk


def _span(content_range: str | None, length: int) -> tuple[int, int]:
    """(first byte, object size) of a response: from Content-Range, else the whole object."""
    if content_range and content_range.startswith("bytes "):
        span, _, total = content_range[6:].partition("/")
        return int(span.split("-")[0]), int(total)
    return 0, length


class S3Standin(FaultControls, Service):
    """moto plus the fault front, on 127.0.0.1: `with S3Standin(root) as s3: s3.endpoint_url`.

    The buckets and objects exist as soon as the constructor returns (the CLI relies on
    that: its port file appears only once everything can be downloaded).
    """

    name = "s3-standin"

    def __init__(
        self,
        root: str | Path | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        faults: list[dict[str, Any]] | None = None,
        private: tuple[str, ...] = (),
    ) -> None:
        self._moto = _MotoServer(host)
        try:
            super().__init__(S3FrontHandler, S3State(self._moto.address, faults), host, port)
            self._admin = _admin_client(self._moto.url)
            if root is not None:
                self.seed(Path(root), private)
        except BaseException:
            self._moto.stop()
            if hasattr(self, "_httpd"):
                self._httpd.server_close()
            raise

    @property
    def endpoint_url(self) -> str:
        """What `endpoint_url=` / the config's `s3_endpoint` should be set to."""
        return self.address

    @property
    def moto_url(self) -> str:
        """moto itself, without faults (for set-up and checks that must not be disturbed)."""
        return self._moto.url

    # -- content -----------------------------------------------------------------------

    def seed(self, root: Path, private: tuple[str, ...] = ()) -> list[str]:
        """Upload `<root>/<bucket>/<key...>` files; those matching a `private` glob (over
        `bucket/key`) get ACL private. Returns the s3:// URLs, sorted."""
        if not root.is_dir():
            raise FileNotFoundError(f"S3 stand-in root {root} is not a directory")
        urls = []
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            bucket, _, key = path.relative_to(root).as_posix().partition("/")
            if not key:
                log.warning("ignoring %s: files must sit inside a bucket folder", path)
                continue
            public = not any(fnmatch.fnmatchcase(f"{bucket}/{key}", glob) for glob in private)
            urls.append(self.upload(bucket, key, path, public=public))
        log.info("seeded %d object(s) from %s", len(urls), root)
        return urls

    def create_bucket(self, bucket: str) -> None:
        """Create a publicly listable bucket; nothing happens if it exists."""
        existing = {b["Name"] for b in self._admin.list_buckets().get("Buckets", [])}
        if bucket not in existing:
            self._admin.create_bucket(Bucket=bucket, ACL="public-read")

    def upload(self, bucket: str, key: str, source: Path | bytes, *, public: bool = True) -> str:
        """Add or replace an object (ACL public-read unless `public=False`); returns its URL."""
        self.create_bucket(bucket)
        acl = "public-read" if public else "private"
        if isinstance(source, bytes):
            self._admin.put_object(Bucket=bucket, Key=key, Body=source, ACL=acl)
        else:
            self._admin.upload_file(str(source), bucket, key, ExtraArgs={"ACL": acl})
        return f"s3://{bucket}/{key}"

    # -- life cycle ----------------------------------------------------------------------

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            self._admin.close()
            self._moto.stop()

    def serve_forever(self) -> None:
        try:
            super().serve_forever()
        finally:
            self._admin.close()
            self._moto.stop()


def _admin_client(moto_url: str) -> Any:
    """A signed client straight to moto (dummy keys), for creating buckets and objects."""
    return boto3.session.Session(
        aws_access_key_id="standin", aws_secret_access_key="standin", region_name="us-east-1"
    ).client("s3", endpoint_url=moto_url, config=Config(retries={"total_max_attempts": 1}))


def main(argv: list[str] | None = None) -> int:
    parser = cli_parser(__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, type=Path, help="holds <bucket>/<key...> files")
    parser.add_argument(
        "--private", action="append", default=[], help="bucket/key glob to upload as private"
    )
    parser.add_argument("--faults", type=Path, help="JSON file with a list of fault rules")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s s3-standin: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto logs every request
    faults = json.loads(args.faults.read_text()) if args.faults else []
    s3 = S3Standin(args.root, args.port, args.host, faults, tuple(args.private))
    return serve_cli(s3, args, f"{args.root} as S3 (moto at {s3.moto_url})")


if __name__ == "__main__":
    sys.exit(main())
