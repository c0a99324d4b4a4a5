"""Stand-in Google Drive on 127.0.0.1, reached by gdown's real Drive code paths.

gdown applies its Drive logic (the virus-scan confirmation, the quota page) only to URLs whose
host is drive.google.com or docs.google.com, and it rewrites every such URL to
`https://drive.google.com/uc?id=<id>`, so a plain `http://127.0.0.1` URL would skip exactly
what needs testing. This stand-in is therefore an HTTP proxy that is also the far end: the
client is given `proxy=<address>` and `verify=<ca_file>`; the stand-in answers
`CONNECT drive.google.com:443` (and drive.usercontent.google.com, docs.google.com,
accounts.google.com) itself, terminates TLS with a certificate for those names signed by a
throwaway CA it writes to `ca_file`, and serves Drive's answers inside the tunnel. Nothing is
ever forwarded: a CONNECT to any other host gets 403. Plain absolute-URI proxy requests
(`GET http://drive.google.com/uc?...`) and direct requests (`curl http://127.0.0.1:PORT/uc?id=`,
the control endpoints below) are served the same way.

Drive's answers, as gdown 6.5 meets them (2024-):

    GET https://drive.google.com/uc?id=ID[&export=download]
        303 -> https://drive.usercontent.google.com/download?id=ID&export=download
    GET https://drive.usercontent.google.com/download?id=ID&export=download[&confirm=t&uuid=U]
        file of at most `scan_limit` bytes, or confirm=t with a uuid this server issued:
            200 (206 for a Range, If-Range honoured) with the bytes and
            Content-Disposition: attachment; filename="NAME"
        larger file, not confirmed: 200 "Virus scan warning" page whose #download-form (GET
            to https://drive.usercontent.google.com/download) holds hidden id, export,
            confirm=t and a fresh uuid
        quota:      200 "Quota exceeded" page ("Too many users have viewed or downloaded...")
        not_found:  404 HTML page (also any id that was never seeded)
        private:    302 to https://accounts.google.com/ServiceLogin?..., a 200 sign-in page

The warning and quota pages follow Drive's markup where gdown reads it (one line, the
#download-form and its hidden inputs, `<p class="uc-error-subcaption">`); the not-found and
sign-in pages are plain approximations, which gdown only sees are not a download. Drive asks
for confirmation above about 100 MB; the default `scan_limit` is 16 KiB so that the world's
tiny archives take that path too.

Files are seeded from a directory of `<file_id>/<filename>` (one file per id directory) and/or
a mapping `{file_id: path}` (the file keeps its name). Per-file faults, set at start or with
`set_faults` / `POST /_drive/faults` (JSON `{file_id: {...}}`, replaces all):

    quota: true       the quota page instead of the file (the confirmation page too)
    private: true     the sign-in redirect
    not_found: true   404, as if the file had been deleted
    drop_after: N     the first transfer that reaches file offset N is cut there (once)
    wrong_bytes: N    every transfer flips the byte at offset N (null: the middle)
    trickle: RATE     send at most RATE bytes/s

Faults may instead be rules in `standin.server`'s format, a JSON list (either form replaces
all faults): `{"kind": ..., "path": <file id glob>, "after": N, "times": K, ...params}`.
status, ratelimit, html and not_found answer in place of any /download of the file (its
confirmation page too) and count those requests; drop, trickle, wrong_bytes, wrong_length and
change (`to`: another seeded file id, whose bytes are served in its place) apply to the answers
that send the file, and count only those. Drive's own 5xx and 429 answers are HTML pages.

`GET /_drive/stats` (or `stats()`) counts requests per host, and per file id: requests, body
bytes sent, statuses and the Range headers received, so tests can prove what went over the
wire.

    with DriveStandin(root) as drive:
        gdown.download(id=file_id, output=out, proxy=drive.proxy, verify=str(drive.ca_file))

CLI: `python -m standin.drive --root DIR --ca-file CA.pem --port 0 --port-file F
[--scan-limit BYTES] [--faults JSON_FILE]`.
"""

import copy
import datetime
import email.utils
import html
import ipaddress
import json
import logging
import os
import socket
import ssl
import sys
import tempfile
import threading
import urllib.parse
import uuid
from collections import Counter
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from standin.base import Service, StateServer, cli_parser, copy_with_faults, serve_cli, served_size
from standin.server import HTML_PAGE, FaultRule, etag_of, parse_range

log = logging.getLogger(__name__)

DRIVE = "drive.google.com"
USERCONTENT = "drive.usercontent.google.com"
ACCOUNTS = "accounts.google.com"
HOSTS = (DRIVE, USERCONTENT, "docs.google.com", ACCOUNTS)
CONTROL = "/_drive/"
DEFAULT_SCAN_LIMIT = 16 << 10  # Drive's is ~100 MB; small, so tiny stand-in archives confirm too
FAULT_KEYS = frozenset({"quota", "private", "not_found", "drop_after", "wrong_bytes", "trickle"})
# Rule kinds (standin.server's format): those that replace an answer, those that shape a file's.
REPLY_RULES = ("status", "ratelimit", "html", "not_found")
BODY_RULES = ("drop", "trickle", "wrong_bytes", "wrong_length", "change")
MAX_UUIDS = 10_000  # confirmation tokens remembered; the oldest are forgotten
COPY_CHUNK = 64 << 10  # small writes keep "bytes sent" close to what the client received

_HEAD = (
    '<!DOCTYPE html><html><head><title>{title}</title><meta http-equiv="content-type" '
    'content="text/html; charset=utf-8"/><link rel="icon" '
    'href="//ssl.gstatic.com/images/branding/product/1x/drive_2020q4_32dp.png"/></head>'
)
# Drive sends these pages as one line; gdown parses them line by line, so layout matters.
VIRUS_SCAN_PAGE = (
    _HEAD.format(title="Google Drive - Virus scan warning")
    + '<body><div class="uc-main"><div id="uc-text"><p class="uc-warning-caption">Google Drive '
    'can&#39;t scan this file for viruses.</p><p class="uc-warning-subcaption"><span '
    'class="uc-name-size"><a href="/open?id={id}">{name}</a> ({size})</span> is too large for '
    "Google to scan for viruses. Would you still like to download this file?</p>"
    '<form id="download-form" action="https://drive.usercontent.google.com/download" '
    'method="get"><input type="submit" id="uc-download-link" class="goog-inline-block '
    'jfk-button jfk-button-action" value="Download anyway"/><input type="hidden" name="id" '
    'value="{id}"><input type="hidden" name="export" value="download"><input type="hidden" '
    'name="confirm" value="t"><input type="hidden" name="uuid" value="{uuid}"></form></div>'
    '</div><div class="uc-footer"><hr class="uc-footer-divider"></div></body></html>'
)
QUOTA_TEXT = (
    "Too many users have viewed or downloaded this file recently. Please try accessing the "
    "file again later. If the file you are trying to access is particularly large or is "
    "shared with many people, it may take up to 24 hours to be able to view or download the "
    "file. If you still can't access a file after 24 hours, contact your domain administrator."
)
QUOTA_PAGE = (
    _HEAD.format(title="Google Drive - Quota exceeded")
    + '<body><div class="uc-main"><div id="uc-text"><p class="uc-error-caption">Sorry, you '
    'can&#39;t view or download this file at this time.</p><p class="uc-error-subcaption">'
    + QUOTA_TEXT
    + '</p></div></div><div class="uc-footer"><hr class="uc-footer-divider"></div></body></html>'
)
NOT_FOUND_PAGE = (
    _HEAD.format(title="Google Drive - Page Not Found")
    + '<body><div class="errorMessage">Sorry, the file you have requested does not exist.'
    "<br>Make sure that you have the correct URL and the file exists.</div></body></html>"
)
ERROR_PAGE = (
    "<!DOCTYPE html><html lang=en><meta charset=utf-8><title>Error {code} ({reason})!!1</title>"
    "<p><b>{code}.</b> <ins>That\u2019s an error.</ins><p>{text} <ins>That\u2019s all we "
    "know.</ins></html>"
)
SIGN_IN_PAGE = (
    _HEAD.format(title="Sign in - Google Accounts")
    + '<body><form id="identifier-form"><h1>Sign in</h1><div>to continue to Google Drive</div>'
    '<input type="email" name="identifier"></form></body></html>'
)


def human_size(size: int) -> str:
    """Size as Drive prints it on the warning page: 245M, 1.2G."""
    for unit, scale in (("G", 1 << 30), ("M", 1 << 20), ("k", 1 << 10)):
        if size >= scale:
            value = size / scale
            return f"{value:.1f}{unit}" if value < 10 else f"{value:.0f}{unit}"
    return f"{size}"


def seed_files(root: Path | None, files: dict[str, str | Path] | None) -> dict[str, Path]:
    """{file_id: path} from a `<file_id>/<filename>` tree plus an explicit mapping."""
    seeded: dict[str, Path] = {}
    if root is not None:
        for folder in sorted(Path(root).iterdir()):
            entries = [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
            if len(entries) != 1:
                raise ValueError(f"{folder}: a Drive id folder must hold exactly one file")
            seeded[folder.name] = entries[0].resolve()
    for file_id, path in (files or {}).items():
        seeded[file_id] = Path(path).resolve()
    return seeded


def check_faults(faults: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Validate `{file_id: {fault: value}}`; unknown fault names are an error, not ignored."""
    if not isinstance(faults, dict):
        raise ValueError(f"Drive faults must be a mapping or a list of rules, got {faults!r}")
    for file_id, spec in faults.items():
        unknown = set(spec) - FAULT_KEYS
        if unknown:
            raise ValueError(
                f"{file_id}: unknown faults {sorted(unknown)}; known: {sorted(FAULT_KEYS)}"
            )
    return copy.deepcopy(faults)


class Certificates:
    """A throwaway CA and a server certificate for the Drive hosts, as PEM files in `directory`."""

    def __init__(self, directory: Path, ca_file: Path | None = None) -> None:
        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vlprep stand-in Drive CA")])
        ca_cert = (
            self._builder(ca_name, ca_name, ca_key.public_key(), now)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, DRIVE)])
        cert = (
            self._builder(name, ca_name, key.public_key(), now)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(host) for host in HOSTS]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        self.ca_file = ca_file or directory / "drive-ca.pem"
        self.cert_file = directory / "drive-cert.pem"
        self.key_file = directory / "drive-key.pem"
        _write_whole(self.ca_file, ca_cert.public_bytes(serialization.Encoding.PEM))
        _write_whole(self.cert_file, cert.public_bytes(serialization.Encoding.PEM))
        pem_key = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_whole(self.key_file, pem_key, mode=0o600)

    @staticmethod
    def _builder(
        subject: x509.Name, issuer: x509.Name, public_key: Any, now: datetime.datetime
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign,
        crl_sign=cert_sign, encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _write_whole(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write a file whole (a reader never sees half of it), with `mode`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


class DriveState:
    """Seeded files, faults, issued confirmation tokens and statistics, shared by all threads."""

    def __init__(
        self,
        files: dict[str, Path],
        faults: dict[str, dict[str, Any]] | list[dict[str, Any]] | None,
        scan_limit: int,
        tls: ssl.SSLContext,
    ) -> None:
        self.files = files
        self.scan_limit = scan_limit
        self.tls = tls
        self._lock = threading.Lock()
        self._faults: dict[str, dict[str, Any]] = {}
        self._rules: list[FaultRule] = []
        self._dropped: set[str] = set()
        self._uuids: dict[str, str] = {}  # uuid -> file id, oldest first
        self._hosts: Counter[str] = Counter()
        self._per_file: dict[str, dict[str, Any]] = {}
        self.set_faults(faults or {})

    def set_faults(self, faults: dict[str, dict[str, Any]] | list[dict[str, Any]]) -> None:
        """Replace every fault: a `{file_id: {...}}` mapping, or a list of rules."""
        rules: list[FaultRule] = []
        checked: dict[str, dict[str, Any]] = {}
        if isinstance(faults, list):
            for spec in faults:
                if spec.get("kind") not in REPLY_RULES + BODY_RULES:
                    raise ValueError(
                        f"Drive rule kind must be one of {REPLY_RULES + BODY_RULES}, got {spec!r}"
                    )
                rules.append(FaultRule.from_dict(spec))
        else:
            checked = check_faults(faults)
        with self._lock:
            self._faults, self._rules = checked, rules
            self._dropped.clear()

    def rule_faults(self, file_id: str, kinds: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        """Params of the rules of `kinds` that apply to this request for `file_id`, by kind;
        only rules of those kinds count it."""
        active: dict[str, dict[str, Any]] = {}
        with self._lock:
            for rule in self._rules:
                if rule.kind in kinds and rule.hit(file_id):
                    active.setdefault(rule.kind, dict(rule.params))
        return active

    def faults_of(self, file_id: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._faults.get(file_id, {}))

    def take_drop(self, file_id: str, start: int, count: int) -> int | None:
        """Where to cut a transfer of [start, start + count), if it is the first to reach
        the file's drop_after offset (the fault fires once)."""
        with self._lock:
            offset = self._faults.get(file_id, {}).get("drop_after")
            if offset is None or file_id in self._dropped:
                return None
            if not start <= int(offset) < start + count:
                return None
            self._dropped.add(file_id)
            return int(offset)

    def issue_uuid(self, file_id: str) -> str:
        token = str(uuid.uuid4())
        with self._lock:
            self._uuids[token] = file_id
            while len(self._uuids) > MAX_UUIDS:
                self._uuids.pop(next(iter(self._uuids)))
        return token

    def confirmed(self, file_id: str, query: dict[str, str]) -> bool:
        with self._lock:
            return query.get("confirm") == "t" and self._uuids.get(query.get("uuid", "")) == file_id

    def count_host(self, host: str) -> None:
        with self._lock:
            self._hosts[host] += 1

    def record(self, file_id: str, status: int, sent: int, range_header: str | None) -> None:
        with self._lock:
            entry = self._per_file.setdefault(
                file_id, {"requests": 0, "bytes_sent": 0, "statuses": {}, "ranges": []}
            )
            entry["requests"] += 1
            entry["bytes_sent"] += sent
            entry["statuses"][str(status)] = entry["statuses"].get(str(status), 0) + 1
            if range_header:
                entry["ranges"].append(range_header)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"hosts": dict(self._hosts), "files": copy.deepcopy(self._per_file)}


class _TlsWriter:
    """`wfile` over a TLS socket: every write is sent whole, as the handler expects."""

    closed = False

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self._sock = sock

    def write(self, data: bytes) -> int:
        self._sock.sendall(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class DriveHandler(BaseHTTPRequestHandler):
    """One client connection: a proxy CONNECT (then TLS), a proxied request, or a direct one."""

    protocol_version = "HTTP/1.1"
    server_version = "GSE"
    server: StateServer
    tunnel_host: str | None = None
    tls_socket: ssl.SSLSocket | None = None
    send_body = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s %s", self.tunnel_host or "-", self.address_string(), format % args)

    def finish(self) -> None:
        super().finish()
        if self.tls_socket is not None:
            self.tls_socket.close()

    # -- proxying ------------------------------------------------------------------------

    def do_CONNECT(self) -> None:
        host, _, port = self.path.rpartition(":")
        state: DriveState = self.server.state
        state.count_host(f"CONNECT {host}")
        if host not in HOSTS or port != "443":
            self._reply(HTTPStatus.FORBIDDEN, f"the Drive stand-in does not serve {self.path}\n")
            self.close_connection = True
            return
        self.send_response(HTTPStatus.OK, "Connection established")
        self.end_headers()
        try:
            tls = state.tls.wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.warning("TLS handshake for %s failed: %s", host, exc)
            self.close_connection = True
            return
        # Later requests on this connection are read from inside the tunnel, which stays
        # open although CONNECT itself came as HTTP/1.0 (http.client sends it so).
        self.tls_socket, self.tunnel_host = tls, host
        self.rfile = tls.makefile("rb")
        self.wfile = _TlsWriter(tls)
        self.close_connection = False

    def do_GET(self) -> None:
        self._handle(send_body=True)

    def do_HEAD(self) -> None:
        self._handle(send_body=False)

    def do_POST(self) -> None:
        if urllib.parse.urlsplit(self.path).path != CONTROL + "faults":
            self._reply(HTTPStatus.METHOD_NOT_ALLOWED, "POST only on /_drive/faults\n")
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            self.server.state.set_faults(json.loads(self.rfile.read(length) or b"{}"))
        except (ValueError, TypeError, AttributeError) as exc:
            self._reply(HTTPStatus.BAD_REQUEST, f"bad faults: {exc}\n")
            return
        self._reply(HTTPStatus.OK, '{"ok": true}\n', "application/json")

    # -- Drive ---------------------------------------------------------------------------

    def _handle(self, send_body: bool) -> None:
        self.send_body = send_body
        url = urllib.parse.urlsplit(self.path)
        host = self.tunnel_host or url.hostname or (self.headers.get("Host") or "").split(":")[0]
        query = dict(urllib.parse.parse_qsl(url.query))
        state: DriveState = self.server.state
        state.count_host(host)
        try:
            if url.path.startswith(CONTROL):
                self._control(url.path)
            elif url.path in ("/uc", "/open"):
                self._redirect_to_usercontent(query)
            elif url.path == "/download":
                self._download(query)
            elif url.path == "/ServiceLogin":
                self._reply(HTTPStatus.OK, SIGN_IN_PAGE, "text/html; charset=utf-8")
            else:
                self._reply(HTTPStatus.NOT_FOUND, NOT_FOUND_PAGE, "text/html; charset=utf-8")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError) as exc:
            log.debug("client went away: %s", exc)
            self.close_connection = True

    def _control(self, path: str) -> None:
        if path == CONTROL + "stats":
            self._reply(HTTPStatus.OK, json.dumps(self.server.state.stats()), "application/json")
        else:
            self._reply(HTTPStatus.NOT_FOUND, "unknown control endpoint\n")

    def _redirect_to_usercontent(self, query: dict[str, str]) -> None:
        file_id = query.get("id", "")
        target = f"https://{USERCONTENT}/download?" + urllib.parse.urlencode(
            {"id": file_id, "export": "download"}
        )
        self._reply(HTTPStatus.SEE_OTHER, "", "text/html; charset=UTF-8", {"Location": target})

    def _download(self, query: dict[str, str]) -> None:
        state: DriveState = self.server.state
        file_id = query.get("id", "")
        path = state.files.get(file_id)
        faults = state.faults_of(file_id)
        html_type = "text/html; charset=utf-8"
        replies = state.rule_faults(file_id, REPLY_RULES)
        if replies:
            self._rule_reply(file_id, replies)
        elif path is None or faults.get("not_found") or not path.is_file():
            self._record_page(file_id, HTTPStatus.NOT_FOUND, NOT_FOUND_PAGE)
        elif faults.get("private"):
            back = urllib.parse.quote(f"https://{USERCONTENT}/download?id={file_id}", safe="")
            location = (
                f"https://{ACCOUNTS}/ServiceLogin?service=wise&passive=1209600&continue={back}"
            )
            self._reply(HTTPStatus.FOUND, "", html_type, {"Location": location})
            state.record(file_id, HTTPStatus.FOUND, 0, None)
        elif faults.get("quota"):
            self._record_page(file_id, HTTPStatus.OK, QUOTA_PAGE)
        elif path.stat().st_size > state.scan_limit and not state.confirmed(file_id, query):
            page = VIRUS_SCAN_PAGE.format(
                id=html.escape(file_id),
                name=html.escape(path.name),
                size=human_size(path.stat().st_size),
                uuid=state.issue_uuid(file_id),
            )
            self._record_page(file_id, HTTPStatus.OK, page)
        else:
            self._send_file(file_id, path, faults, state.rule_faults(file_id, BODY_RULES))

    def _record_page(
        self, file_id: str, status: int, page: str, headers: dict[str, str] | None = None
    ) -> None:
        self._reply(status, page, "text/html; charset=utf-8", headers)
        self.server.state.record(file_id, status, 0, None)

    def _rule_reply(self, file_id: str, replies: dict[str, dict[str, Any]]) -> None:
        """Answer a /download as a status, ratelimit, html or not_found rule says."""
        if "not_found" in replies:
            self._record_page(file_id, replies["not_found"]["code"], NOT_FOUND_PAGE)
        elif "status" in replies:
            code = HTTPStatus(replies["status"]["code"])
            text = "The server encountered an error. Please try again later."
            page = ERROR_PAGE.format(code=code.value, reason=code.phrase, text=text)
            self._record_page(file_id, code, page)
        elif "ratelimit" in replies:
            code = HTTPStatus.TOO_MANY_REQUESTS
            text = "We're sorry, but you have sent too many requests to us recently."
            page = ERROR_PAGE.format(code=code.value, reason=code.phrase, text=text)
            retry_after = {"Retry-After": str(replies["ratelimit"]["retry_after"])}
            self._record_page(file_id, code, page, retry_after)
        else:
            html_rule = replies["html"]
            self._reply(html_rule["code"], HTML_PAGE.decode(), html_rule["content_type"])
            self.server.state.record(file_id, html_rule["code"], 0, None)

    def _send_file(
        self, file_id: str, path: Path, faults: dict[str, Any], rules: dict[str, dict[str, Any]]
    ) -> None:
        state: DriveState = self.server.state
        range_header = self.headers.get("Range")
        status, sent = HTTPStatus.OK, 0
        if "change" in rules:
            path = state.files.get(rules["change"]["to"], path)
        try:
            with path.open("rb") as fh:
                st = os.fstat(fh.fileno())
                size = served_size(st.st_size, rules)
                headers = {
                    "Content-Disposition": f'attachment; filename="{path.name}"',
                    "Last-Modified": email.utils.formatdate(st.st_mtime, usegmt=True),
                    "ETag": etag_of(st),
                    "Accept-Ranges": "bytes",
                    "Cache-Control": "no-cache, no-store, max-age=0, must-revalidate",
                }
                if_range = self.headers.get("If-Range")
                span = None
                if not if_range or if_range in (headers["ETag"], headers["Last-Modified"]):
                    try:
                        span = parse_range(range_header, size)
                    except ValueError:
                        status = HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE
                        headers["Content-Range"] = f"bytes */{size}"
                        self._reply(status, "", "text/plain", headers)
                        return
                start, end = span or (0, size - 1)
                if span:
                    status = HTTPStatus.PARTIAL_CONTENT
                    headers["Content-Range"] = f"bytes {start}-{end}/{size}"
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(end - start + 1))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.send_body:
                    sent = self._copy(file_id, fh, start, end - start + 1, faults, rules)
        finally:
            state.record(file_id, status, sent, range_header)

    def _copy(
        self,
        file_id: str,
        fh: Any,
        start: int,
        count: int,
        faults: dict[str, Any],
        rules: dict[str, dict[str, Any]],
    ) -> int:
        """Send the body, cut at drop_after the first time (or where a drop rule says);
        returns the bytes sent."""
        sent = [0]

        def count_sent(n: int) -> None:
            sent[0] += n

        drop_at = self.server.state.take_drop(file_id, start, count)
        limit = count if drop_at is None else drop_at - start
        if "drop" in rules:
            cut = rules["drop"]["bytes"]
            limit = min(limit, count // 2 if cut is None else int(cut))
        copy_faults = {kind: rules[kind] for kind in ("wrong_bytes", "trickle") if kind in rules}
        if "wrong_bytes" in faults:
            copy_faults["wrong_bytes"] = {"offset": faults["wrong_bytes"]}
        if faults.get("trickle"):
            copy_faults["trickle"] = {"rate": faults["trickle"]}
        if copy_faults:
            copy_with_faults(self.wfile.write, fh, start, limit, copy_faults, count_sent)
        else:
            _copy_plain(self.wfile.write, fh, start, limit, count_sent)
        if limit < count:
            log.info("dropping %s at file offset %d", file_id, start + limit)
            self.close_connection = True
            (self.tls_socket or self.connection).shutdown(socket.SHUT_RDWR)
        return sent[0]

    def _reply(
        self,
        status: int,
        body: str,
        content_type: str = "text/plain; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.send_body:
            self.wfile.write(data)


def _copy_plain(write: Any, fh: Any, start: int, count: int, sent: Any) -> None:
    """Send `count` bytes from `start` in COPY_CHUNK writes, counting each as it goes out."""
    fh.seek(start)
    done = 0
    while done < count:
        data = fh.read(min(COPY_CHUNK, count - done))
        if not data:
            break
        write(data)
        done += len(data)
        sent(len(data))


class DriveStandin(Service):
    """The Drive stand-in in a background thread: `with DriveStandin(root) as drive:`."""

    name = "drive"

    def __init__(
        self,
        root: str | Path | None = None,
        files: dict[str, str | Path] | None = None,
        *,
        faults: dict[str, dict[str, Any]] | list[dict[str, Any]] | None = None,
        scan_limit: int = DEFAULT_SCAN_LIMIT,
        ca_file: str | Path | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        ipaddress.ip_address(host)  # a name here could resolve off the machine; refuse it
        self._certs_dir = tempfile.TemporaryDirectory(prefix="vlprep-drive-")
        self.certificates = Certificates(
            Path(self._certs_dir.name), Path(ca_file) if ca_file else None
        )
        state = DriveState(
            seed_files(Path(root) if root else None, files),
            faults,
            scan_limit,
            self.certificates.server_context(),
        )
        super().__init__(DriveHandler, state, host, port)

    @property
    def proxy(self) -> str:
        """What the client takes as its proxy (gdown's `proxy=`)."""
        return self.address

    @property
    def ca_file(self) -> Path:
        """The CA certificate the client must trust (gdown's `verify=`)."""
        return self.certificates.ca_file

    def set_faults(self, faults: dict[str, dict[str, Any]] | list[dict[str, Any]]) -> None:
        """Replace every fault: per-file faults, or a list of rules (drop_after counts afresh)."""
        self.state.set_faults(faults)

    def stats(self) -> dict[str, Any]:
        return self.state.stats()

    def closing(self) -> None:
        self._certs_dir.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = cli_parser(__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True, help="<file_id>/<filename> tree")
    parser.add_argument("--ca-file", type=Path, required=True, help="where to write the CA cert")
    parser.add_argument("--scan-limit", type=int, default=DEFAULT_SCAN_LIMIT)
    parser.add_argument("--faults", type=Path, help='JSON file: {"<file_id>": {"quota": true}}')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s drive: %(message)s")
    faults = json.loads(args.faults.read_text()) if args.faults else {}
    server = DriveStandin(
        args.root, faults=faults, scan_limit=args.scan_limit, ca_file=args.ca_file,
        port=args.port, host=args.host,
    )  # fmt: skip
    files = len(server.state.files)
    return serve_cli(server, args, f"{files} Drive files from {args.root} (CA {args.ca_file})")


if __name__ == "__main__":
    sys.exit(main())
