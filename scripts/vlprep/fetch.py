"""The one downloader every HTTP catalog entry goes through: resumable, verified, retried.

Dataset hosts are slow, flaky and sometimes wrong, and the files are tens of gigabytes, so a
download must survive restarts and must never leave unverified bytes where later steps look.
What every downloader shares is vlprep.transfer's (the retry policy, hashing while streaming,
`<dest>.part` and its sidecar, the disk-full handling, the verified install); this module adds
what is HTTP's:

* a GET with `Accept-Encoding: identity` (the bytes on disk must be the bytes the checksum
  names); the first response's ETag and Last-Modified go into the sidecar, so a resumed
  request (`Range` + `If-Range`) restarts from 0 when the remote file changed in between;
* 5xx and 429 are retried, honouring Retry-After; other 4xx, an HTML page (by Content-Type,
  or by its first bytes when the announced size is wrong) and a file of another size move on
  to the next mirror URL (`candidate_urls`);
* 416 on a resume means `.part` is complete (it is verified) or does not fit (restart);
* a file the catalog gives no checksum for must start like its format (vlprep.sniff: a zip
  with `PK\\x03\\x04`, JSON with `{` or `[`...), checked on the first bytes as they arrive and
  again before it is installed, and must not be tiny next to the catalog's `approx_size`.
"""

import logging
from pathlib import Path
from typing import Any

import requests
import urllib3

from vlprep import __version__
from vlprep.errors import FetchError
from vlprep.ranged import (
    CONTROL_SUFFIX,
    DEFAULT_CONNECTIONS,
    SEGMENT,
    Changed,
    RangedTransfer,
    RangeState,
    overloaded,
    pump,
)
from vlprep.sniff import SNIFF_BYTES, implausibly_small, looks_like_html

# CHUNK, parse_retry_after and looks_like_html are used here and stay importable from here.
from vlprep.transfer import (
    CHUNK,
    Backoff,
    Retry,
    Transfer,
    UrlFailed,
    expected_digest,
    parse_content_range,
    parse_retry_after,
)

log = logging.getLogger(__name__)

HEADERS = {
    "User-Agent": f"vlprep/{__version__} (dataset downloader; python-requests)",
    "Accept-Encoding": "identity",  # the bytes on disk must be the bytes the checksum names
}
HTML_TYPES = ("text/html", "application/xhtml+xml")


def candidate_urls(url: str, mirrors: dict[str, list[str]] | None) -> list[str]:
    """The URLs to try for `url`: its mirror rewrites in order, then `url` itself.

    `mirrors` maps a URL prefix to replacement prefixes; the longest matching prefix wins.
    """
    prefixes = [prefix for prefix in mirrors or {} if url.startswith(prefix)]
    if not prefixes:
        return [url]
    prefix = max(prefixes, key=len)
    rewritten = [replacement + url[len(prefix) :] for replacement in mirrors[prefix]]
    return list(dict.fromkeys([*rewritten, url]))


def fetch(
    entry: str,
    urls: list[str],
    dest: Path,
    *,
    size: int | None,
    sha256: str | None = None,
    sha1: str | None = None,
    md5: str | None = None,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 1.0,
    max_backoff: float = 60.0,
    expect_binary: bool = True,
    session: requests.Session | None = None,
    archive: str | None = None,
    approx_size: int | None = None,
    connections: int = DEFAULT_CONNECTIONS,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Download `entry` from the first of `urls` that delivers it to `dest`, verified.

    `retries` counts attempts per URL after the first. sha256 is always computed (and
    reported); sha1 or md5 only when it is the catalog's strongest checksum (sha256, else
    sha1, else md5). Without any, the file must start like its format (the catalog's
    `archive` kind, else `dest`'s suffix) and not be tiny next to `approx_size`. Returns a
    report: url, bytes (transferred over the network), resumed_from (offset the final
    transfer started at), attempts, sha256, sha1, md5, seconds. Raises FetchError when no URL
    delivers, DiskFullError when the disk fills up.

    A file of at least two segments from a host that serves ranges is fetched over up to
    `connections` connections (vlprep.ranged; 1: one stream). `headers` go with every
    request (a hub's Authorization).
    """
    if not urls:
        raise FetchError(f"{entry}: no URL to download {dest} from")
    policy = Backoff(retries, backoff, max_backoff)
    download = _HttpDownload(
        entry,
        Path(dest),
        size=size,
        expected=expected_digest(sha256=sha256, sha1=sha1, md5=md5),
        timeout=timeout,
        expect_binary=expect_binary,
        session=session or requests.Session(),
        archive=archive,
        approx_size=approx_size,
        connections=connections,
        policy=policy,
        headers=headers,
    )
    try:
        return download.run(urls, policy)
    finally:
        if session is None:
            download.session.close()


class _HttpDownload(RangedTransfer, Transfer):
    """vlprep.transfer's download state with a GET (Range + If-Range on a resume) as the
    transport; big files from hosts that serve ranges over several (vlprep.ranged)."""

    def __init__(
        self,
        entry: str,
        dest: Path,
        *,
        size: int | None,
        expected: tuple[str, str] | None,
        timeout: float,
        expect_binary: bool,
        session: requests.Session,
        archive: str | None = None,
        approx_size: int | None = None,
        connections: int = 1,
        policy: Backoff | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(
            entry,
            dest,
            size=size,
            expected=expected,
            archive=archive,
            approx_size=approx_size,
            expect_binary=expect_binary,
        )
        self.headers = {**HEADERS, **(headers or {})}
        self.timeout = timeout
        self.session = session
        self.connections = max(1, connections)
        self.policy = policy or Backoff(5, 1.0, 60.0)
        self.ranges = self.dest.with_name(self.dest.name + CONTROL_SUFFIX)

    def attempt(self, url: str) -> None:
        """One GET: stream what is missing into `.part`, then verify and install it; over
        several connections when the host serves ranges and the file is big enough."""
        state = self.resumable_ranges()
        if state is not None:
            self.ranged(url, _host(url), state, self._range_opener(url, state), None)
            return
        offset = self.resume_offset()
        headers = dict(self.headers)
        if offset:
            headers["Range"] = f"bytes={offset}-"
            validator = self.validator()
            if validator:
                headers["If-Range"] = validator
            log.info("%s: resuming at byte %d from %s", self.entry, offset, url)
        elif self.may_split(self.size):
            # ask for the first range only: a 206 starts the ranged download, a host that
            # ignores ranges answers 200 and the file comes as one stream
            headers["Range"] = f"bytes=0-{SEGMENT - 1}"
        resp = self._get(self.session, url, headers)
        with resp:
            start = self._check(url, resp, offset)
            if start == 0 and self._splits(resp):
                if resp.status_code == 206:  # _check records validators only for a 200
                    self.start_fresh(
                        {
                            "url": url,
                            "etag": resp.headers.get("ETag"),
                            "last_modified": resp.headers.get("Last-Modified"),
                        }
                    )
                state = RangeState(self.ranges, self.body_total, self.validator(), [])
                see = self.head_watch(url, 0)

                def first(begin: int, end: int, write) -> None:
                    def read(n: int) -> bytes:
                        chunk = _read_arrived(resp, n, begin)
                        see(chunk)
                        return chunk

                    pump(read, end - begin, write)

                self.ranged(url, _host(url), state, self._range_opener(url, state), first)
                return
            if start is not None:
                total = _body_total(resp, start)
                self.receive(url, lambda: _read(resp, CHUNK, self.digests.count), start, total)
        self.install(url)

    def _get(self, session: requests.Session, url: str, headers: dict) -> requests.Response:
        """A streamed GET; a connection failure or timeout is a Retry, any other a UrlFailed."""
        try:
            return session.get(
                url, headers=headers, stream=True, timeout=(self.timeout, self.timeout)
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise Retry(f"connection failed: {exc}") from exc
        except requests.RequestException as exc:
            raise UrlFailed(f"request failed: {exc}") from exc

    # -- over several connections (vlprep.ranged) ---------------------------------------

    def _splits(self, resp: requests.Response) -> bool:
        """Whether this first response starts a ranged download: a 206 to the first range,
        or a 200 from a host that says it serves ranges (the size was not known before)."""
        ranged = resp.status_code == 206 or (
            resp.status_code == 200 and resp.headers.get("Accept-Ranges", "").lower() == "bytes"
        )
        return ranged and self.may_split(self.body_total)

    def _range_opener(self, url: str, state: RangeState):
        """A worker's GET of one range (Range + If-Range), on its own connection with the
        main session's proxy settings."""
        size = state.size

        def open_range():
            session = requests.Session()
            session.trust_env = self.session.trust_env
            session.proxies.update(self.session.proxies)

            def serve(start: int, end: int, write) -> None:
                headers = {**self.headers, "Range": f"bytes={start}-{end - 1}"}
                if state.validator:
                    headers["If-Range"] = state.validator
                resp = self._get(session, url, headers)
                with resp:
                    status = resp.status_code
                    if status == 429 or status == 503:
                        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                        raise overloaded(f"HTTP {status} {resp.reason}", retry_after)
                    if status >= 500:
                        raise Retry(f"HTTP {status} {resp.reason}")
                    if status == 200:
                        raise Changed("the host sent the whole file for a range (changed, or "
                                      "ranges ignored)")  # fmt: skip
                    if status == 416:
                        raise Changed("HTTP 416 for a range inside the file: it is shorter now")
                    if status != 206:
                        raise UrlFailed(f"HTTP {status} {resp.reason} for a range")
                    first, total = parse_content_range(resp.headers.get("Content-Range"))
                    if total != size or first != start:
                        raise Changed(f"the host sent bytes from {first} of {total}, asked "
                                      f"from {start} of {size}")  # fmt: skip
                    write(b"")
                    pump(lambda n: _read_arrived(resp, n, start), end - start, write)

            serve.close = session.close
            return serve

        return open_range

    # -- responses ---------------------------------------------------------------------

    def _check(self, url: str, resp: requests.Response, offset: int) -> int | None:
        """Where the body starts in the file, or None if `.part` is already complete.

        Raises Retry for transient statuses and UrlFailed when this URL cannot deliver.
        """
        status = resp.status_code
        if status == 416:
            self._check_416(resp, offset)
            return None
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            raise Retry(f"HTTP {status} {resp.reason}", retry_after)
        if status not in (200, 206):
            raise UrlFailed(f"HTTP {status} {resp.reason}")
        ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if self.expect_binary and ctype in HTML_TYPES:
            raise UrlFailed(self._html_message(url, resp))
        if status == 206:
            start, total = parse_content_range(resp.headers.get("Content-Range"))
            self._check_total(url, resp, total)
            if start != offset:
                self.discard()
                raise Retry(f"server sent bytes from {start}, asked for {offset}", 0.0)
            return start
        if offset:
            log.info(
                "%s: %s sent the whole file (changed, or Range ignored); restarting",
                self.entry,
                url,
            )
        length = resp.headers.get("Content-Length")
        self._check_total(url, resp, int(length) if length and length.isdigit() else None)
        self.start_fresh(
            {
                "url": url,
                "etag": resp.headers.get("ETag"),
                "last_modified": resp.headers.get("Last-Modified"),
            }
        )
        return 0

    def _check_416(self, resp: requests.Response, offset: int) -> None:
        """416 on a resume: `.part` is complete (verify it) or longer than the file (restart)."""
        if not offset:
            raise UrlFailed("HTTP 416 without a Range request")
        _, total = parse_content_range(resp.headers.get("Content-Range"))
        if total == offset and self.size in (None, offset):
            self.resumed_from = offset
            return
        self.discard()
        raise Retry(f"HTTP 416: {self.part.name} does not fit the remote file; restarting", 0.0)

    def _check_total(self, url: str, resp: requests.Response, total: int | None) -> None:
        """A file of another size is the wrong file; say so, or that it is an HTML page.

        Without an exact size, a body far below the catalog's approx_size is not the file.
        """
        self.body_total = total
        if total is not None and implausibly_small(total, self.approx_size):
            raise UrlFailed(self.tiny_message(url, total, "announces"))
        if self.size is None or total is None or total == self.size:
            return
        if self.expect_binary and looks_like_html(_read(resp, SNIFF_BYTES, 0)):
            raise UrlFailed(self._html_message(url, resp))
        raise UrlFailed(
            f"wrong file: the host announces {total} bytes, the catalog says {self.size}"
        )

    def _html_message(self, url: str, resp: requests.Response) -> str:
        if resp.url and resp.url != url:
            url = f"{url} (redirected to {resp.url})"
        return (
            f"{url} returned an HTML page (a login, quota or error page) instead of the file; "
            "try a mirror, or download the file by hand into manual_dir"
        )

    def validator(self) -> str | None:
        """If-Range value from the sidecar: a strong ETag, else Last-Modified."""
        meta = self.recorded()
        etag = meta.get("etag")
        if etag and not etag.startswith("W/"):
            return etag
        return meta.get("last_modified")


def _read(resp: requests.Response, amount: int, received: int) -> bytes:
    """Next `amount` bytes of the raw body (never decoded), fewer only at its end; a broken
    connection becomes a Retry."""
    try:
        return resp.raw.read(amount, decode_content=False)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise Retry(f"connection lost at byte {received}: {exc}") from exc


def _read_arrived(resp: requests.Response, most: int, received: int) -> bytes:
    """What of the raw body has arrived, up to `most` bytes (one recv; empty at its end)."""
    try:
        return resp.raw.read1(most, decode_content=False)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise Retry(f"connection lost at byte {received}: {exc}") from exc


def _host(url: str) -> str:
    return urllib3.util.parse_url(url).host or ""


def _body_total(resp: requests.Response, start: int) -> int | None:
    """Size of the whole file implied by this response's Content-Length, if given."""
    length = resp.headers.get("Content-Length")
    return start + int(length) if length and length.isdigit() else None
