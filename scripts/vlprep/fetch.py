"""The one downloader every HTTP catalog entry goes through: resumable, verified, retried.

Dataset hosts are slow, flaky and sometimes wrong, and the files are tens of gigabytes, so a
download must survive restarts and must never leave unverified bytes where later steps look:

* bytes stream into `<dest>.part`; `<dest>.part.json` keeps the first response's ETag and
  Last-Modified so a resumed request (`Range` + `If-Range`) restarts from 0 when the remote
  file changed in between;
* the file is hashed while it streams (in a worker thread, so hashing overlaps the network
  read) and moves to `dest` only when size and checksum match;
* connection errors, timeouts, cut-off bodies, 5xx and 429 are retried with exponential
  backoff and jitter (honouring Retry-After); other 4xx, HTML pages and wrong files move on to
  the next mirror URL; when every URL fails, one FetchError lists them all;
* a file the catalog gives no checksum for must start like its format (vlprep.sniff: a zip
  with `PK\\x03\\x04`, JSON with `{` or `[`...), checked on the first bytes as they arrive and
  again before it is installed, and must not be tiny next to the catalog's `approx_size`;
* a full disk stops the download with a DiskFullError saying how much is needed and free;
  `.part` is kept, and the rerun resumes at its last byte.
"""

import email.utils
import hashlib
import json
import logging
import os
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
import urllib3

from vlprep import __version__
from vlprep.atomic import staged
from vlprep.errors import DiskFullError, FetchError
from vlprep.progress import bar
from vlprep.sniff import (
    SNIFF_BYTES,
    describe,
    expected_format,
    format_problem,
    implausibly_small,
    looks_like_html,
)
from vlprep.space import disk_full, is_disk_full

log = logging.getLogger(__name__)

CHUNK = 4 << 20  # big reads keep Python overhead low; 4 MiB measured best on loopback
QUEUE_DEPTH = 8  # chunks in flight between reader and hasher (32 MiB)
HEADERS = {
    "User-Agent": f"vlprep/{__version__} (dataset downloader; python-requests)",
    "Accept-Encoding": "identity",  # the bytes on disk must be the bytes the checksum names
}
HTML_TYPES = ("text/html", "application/xhtml+xml")


class _Retry(Exception):
    """A transient failure: try the same URL again after a pause."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class _UrlFailed(Exception):
    """This URL will not deliver the file: move on to the next one."""


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
    md5: str | None = None,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 1.0,
    max_backoff: float = 60.0,
    expect_binary: bool = True,
    session: requests.Session | None = None,
    archive: str | None = None,
    approx_size: int | None = None,
) -> dict[str, Any]:
    """Download `entry` from the first of `urls` that delivers it to `dest`, verified.

    `retries` counts attempts per URL after the first. sha256 is always computed (and
    reported); md5 only when the catalog gives md5 but no sha256. Without either, the file
    must start like its format (the catalog's `archive` kind, else `dest`'s suffix) and not
    be tiny next to `approx_size`. Returns a report: url, bytes (transferred over the
    network), resumed_from (offset the final transfer started at), attempts, sha256, md5,
    seconds. Raises FetchError when no URL delivers, DiskFullError when the disk fills up.
    """
    if not urls:
        raise FetchError(f"{entry}: no URL to download {dest} from")
    expected = expected_digest(sha256, md5)
    download = _Download(
        entry,
        Path(dest),
        size=size,
        expected=expected,
        timeout=timeout,
        expect_binary=expect_binary,
        session=session or requests.Session(),
        fmt=expected_format(Path(dest).name, archive),
        approx_size=approx_size,
    )
    try:
        return download.run(urls, _Backoff(retries, backoff, max_backoff))
    finally:
        if session is None:
            download.session.close()


def expected_digest(sha256: str | None, md5: str | None) -> tuple[str, str] | None:
    """The checksum that settles a file: sha256 if published, else md5, else none."""
    if sha256:
        return ("sha256", sha256.lower())
    if md5:
        return ("md5", md5.lower())
    return None


@dataclass
class _Backoff:
    """How often and how long to wait before trying a URL again."""

    retries: int
    base: float
    cap: float

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Retry-After if the server sent one, else exponential with equal jitter; capped."""
        if retry_after is not None:
            return min(self.cap, retry_after)
        step = min(self.cap, self.base * 2 ** (attempt - 1))
        return step / 2 + random.uniform(0, step / 2)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if absent."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class _Digests:
    """Running hashes of the bytes in `.part`, plus how many bytes they cover.

    Each hash runs in its own worker thread: hashlib releases the GIL on large buffers, so
    hashing overlaps the socket reads (and md5 overlaps sha256) instead of adding to them;
    on loopback that made a 1 GB download about 1.4x faster than hashing inline.
    """

    def __init__(self, names: list[str]) -> None:
        self._hashes = {name: hashlib.new(name) for name in names}
        self.count = 0

    def hexdigest(self, name: str) -> str | None:
        digest = self._hashes.get(name)
        return digest.hexdigest() if digest else None

    @contextmanager
    def feeder(self) -> Iterator[Callable[[bytes], None]]:
        """Yield `feed(chunk)`; on exit every fed chunk has been hashed."""
        queues: list[queue.Queue[bytes | None]] = []
        workers = []
        for name, digest in self._hashes.items():
            pending: queue.Queue[bytes | None] = queue.Queue(QUEUE_DEPTH)
            worker = threading.Thread(
                target=_hash_worker, args=(pending, digest), name=f"vlprep-{name}", daemon=True
            )
            worker.start()
            queues.append(pending)
            workers.append(worker)

        def feed(chunk: bytes) -> None:
            for pending in queues:
                pending.put(chunk)
            self.count += len(chunk)

        try:
            yield feed
        finally:
            for pending in queues:
                pending.put(None)
            for worker in workers:
                worker.join()


def _hash_worker(pending: "queue.Queue[bytes | None]", digest: Any) -> None:
    while (chunk := pending.get()) is not None:
        digest.update(chunk)


class _Download:
    """The state of fetching one entry into `dest`, across attempts and URLs."""

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
        fmt: str | None = None,
        approx_size: int | None = None,
    ) -> None:
        self.entry = entry
        self.dest = dest
        self.part = dest.with_name(dest.name + ".part")
        self.meta = dest.with_name(dest.name + ".part.json")
        self.size = size
        self.expected = expected
        self.timeout = timeout
        self.expect_binary = expect_binary
        self.session = session
        self.fmt = fmt  # the format the first bytes must show (vlprep.sniff), if known
        self.approx_size = approx_size if size is None else None
        self.body_total: int | None = None  # the file size the current response implies
        self.names = ["sha256"] + (["md5"] if expected and expected[0] == "md5" else [])
        self.digests = _Digests(self.names)
        self.attempts = 0
        self.transferred = 0
        self.resumed_from = 0

    # -- driving -----------------------------------------------------------------------

    def run(self, urls: list[str], policy: _Backoff) -> dict[str, Any]:
        """Try each URL in turn; return the report of the one that delivered."""
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        failures: dict[str, str] = {}
        log.info("%s: fetching %s into %s", self.entry, _megabytes(self.size), self.dest)
        for url in urls:
            try:
                self._from_url(url, policy)
            except _UrlFailed as exc:
                failures[url] = str(exc)
                log.warning("%s: giving up on %s: %s", self.entry, url, exc)
                continue
            except OSError as exc:  # from writing `.part` or its sidecar; not retried
                if is_disk_full(exc):
                    raise self._disk_full(exc) from None
                raise
            return self._report(url, time.monotonic() - started)
        tried = "\n".join(f"  {url}: {reason}" for url, reason in failures.items())
        raise FetchError(
            f"{self.entry}: could not download {self.dest.name}; tried {len(failures)} "
            f"URL(s):\n{tried}\n{self._advice()}"
        )

    def _advice(self) -> str:
        """What to do after every URL failed; a `.part` is mentioned only if it still exists
        (a wrong checksum or a page has already discarded it)."""
        if self.part.exists():
            partial = (
                f"{self.part} ({self.part.stat().st_size:,} bytes) is kept and a rerun resumes "
                "it (delete it to start over)"
            )
        else:
            partial = "the partial file was discarded, so a rerun starts from byte 0"
        return (
            "What to do: check the mirrors in the config and the network; if a checksum "
            f"differs, check the catalog entry's sha256/md5 against the host; {partial}; or "
            "download the file by hand into manual_dir."
        )

    def _from_url(self, url: str, policy: _Backoff) -> None:
        """Attempt `url` up to 1 + retries times, pausing between transient failures."""
        log.info("%s: trying %s", self.entry, url)
        for attempt in range(1, policy.retries + 2):
            self.attempts += 1
            try:
                self._attempt(url)
                return
            except _Retry as exc:
                if attempt > policy.retries:
                    raise _UrlFailed(f"{exc} (gave up after {attempt} attempts)") from exc
                delay = policy.delay(attempt, exc.retry_after)
                log.warning(
                    "%s: %s from %s; retry %d/%d in %.1f s",
                    self.entry,
                    exc,
                    url,
                    attempt,
                    policy.retries,
                    delay,
                )
                time.sleep(delay)

    def _attempt(self, url: str) -> None:
        """One GET: stream what is missing into `.part`, then verify and install it."""
        offset = self._resume_offset()
        headers = dict(HEADERS)
        if offset:
            headers["Range"] = f"bytes={offset}-"
            validator = self._validator()
            if validator:
                headers["If-Range"] = validator
            log.info("%s: resuming at byte %d from %s", self.entry, offset, url)
        try:
            resp = self.session.get(
                url, headers=headers, stream=True, timeout=(self.timeout, self.timeout)
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _Retry(f"connection failed: {exc}") from exc
        except requests.RequestException as exc:
            raise _UrlFailed(f"request failed: {exc}") from exc
        with resp:
            start = self._check(url, resp, offset)
            if start is not None:
                self._receive(url, resp, start)
        self._install(url)

    # -- responses ---------------------------------------------------------------------

    def _check(self, url: str, resp: requests.Response, offset: int) -> int | None:
        """Where the body starts in the file, or None if `.part` is already complete.

        Raises _Retry for transient statuses and _UrlFailed when this URL cannot deliver.
        """
        status = resp.status_code
        if status == 416:
            self._check_416(resp, offset)
            return None
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            raise _Retry(f"HTTP {status} {resp.reason}", retry_after)
        if status not in (200, 206):
            raise _UrlFailed(f"HTTP {status} {resp.reason}")
        ctype = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if self.expect_binary and ctype in HTML_TYPES:
            raise _UrlFailed(self._html_message(url, resp))
        if status == 206:
            start, total = _content_range(resp.headers.get("Content-Range"))
            self._check_total(url, resp, total)
            if start != offset:
                self._discard()
                raise _Retry(f"server sent bytes from {start}, asked for {offset}", 0.0)
            return start
        if offset:
            log.info(
                "%s: %s sent the whole file (changed, or Range ignored); restarting",
                self.entry,
                url,
            )
        length = resp.headers.get("Content-Length")
        self._check_total(url, resp, int(length) if length and length.isdigit() else None)
        self._start_fresh(url, resp)
        return 0

    def _check_416(self, resp: requests.Response, offset: int) -> None:
        """416 on a resume: `.part` is complete (verify it) or longer than the file (restart)."""
        if not offset:
            raise _UrlFailed("HTTP 416 without a Range request")
        _, total = _content_range(resp.headers.get("Content-Range"))
        if total == offset and self.size in (None, offset):
            self.resumed_from = offset
            return
        self._discard()
        raise _Retry(f"HTTP 416: {self.part.name} does not fit the remote file; restarting", 0.0)

    def _check_total(self, url: str, resp: requests.Response, total: int | None) -> None:
        """A file of another size is the wrong file; say so, or that it is an HTML page.

        Without an exact size, a body far below the catalog's approx_size is not the file.
        """
        self.body_total = total
        if total is not None and implausibly_small(total, self.approx_size):
            raise _UrlFailed(self._tiny_message(url, total, "announces"))
        if self.size is None or total is None or total == self.size:
            return
        if self.expect_binary and looks_like_html(_read(resp, SNIFF_BYTES, 0)):
            raise _UrlFailed(self._html_message(url, resp))
        raise _UrlFailed(
            f"wrong file: the host announces {total} bytes, the catalog says {self.size}"
        )

    def _html_message(self, url: str, resp: requests.Response) -> str:
        if resp.url and resp.url != url:
            url = f"{url} (redirected to {resp.url})"
        return (
            f"{url} returned an HTML page (a login, quota or error page) instead of the file; "
            "try a mirror, or download the file by hand into manual_dir"
        )

    def _tiny_message(self, url: str, total: int, verb: str) -> str:
        return (
            f"{url} {verb} {total:,} bytes, but the catalog puts {self.dest.name} at about "
            f"{self.approx_size:,} (approx_size): that is a placeholder or an error page, not "
            "the file; try a mirror, or download the file by hand into manual_dir"
        )

    # -- is it the file at all? ------------------------------------------------------

    def _head_problem(self, head: bytes, *, complete: bool) -> str | None:
        """Why a file starting with `head` cannot be the catalog's file; None if it may be.

        A checksum settles a file after the transfer, so then only a page is refused early
        (hosts send those); without one, the first bytes must show the expected format.
        """
        if self.expected:
            if not self.expect_binary or self.fmt == "markup":
                return None
            return format_problem(head, None, complete=complete)
        return format_problem(head, self.fmt, complete=complete)

    def _check_head(self, url: str, head: bytes, *, complete: bool) -> None:
        """Discard `.part` and give up on `url` if the file's first bytes are not the file."""
        problem = self._head_problem(head, complete=complete)
        if problem:
            self._discard()
            raise _UrlFailed(
                f"{url} did not send {describe(self.fmt)} for {self.dest.name}: {problem}; "
                "try a mirror, or download the file by hand into manual_dir"
            )

    def _head_watch(self, url: str, start: int) -> Callable[[bytes], None]:
        """A function to call with each chunk before it is written: it checks the file's first
        bytes (on a resume, those in `.part` first) until SNIFF_BYTES of them are known, so a
        short page is judged as soon as it is in."""
        head = bytearray(self._part_head() if start else b"")
        self._check_head(url, bytes(head), complete=False)

        def see(chunk: bytes) -> None:
            if len(head) < SNIFF_BYTES:
                head.extend(chunk[: SNIFF_BYTES - len(head)])
                self._check_head(url, bytes(head), complete=False)

        return see

    def _part_head(self) -> bytes:
        with self.part.open("rb") as src:
            return src.read(SNIFF_BYTES)

    def _check_unverified(self, url: str, have: int) -> None:
        """Before installing a file no checksum vouches for: its format and its size."""
        if self.expected:
            return
        self._check_head(url, self._part_head(), complete=True)
        if implausibly_small(have, self.approx_size):
            self._discard()
            raise _UrlFailed(self._tiny_message(url, have, "sent"))

    def _disk_full(self, err: OSError) -> DiskFullError:
        """The disk filled up while `.part` was written: what is needed, and that it resumes."""
        have = self.part.stat().st_size if self.part.exists() else 0
        total = self.size or self.body_total or self.approx_size
        return disk_full(
            err,
            self.part,
            entry=self.entry,
            needed=max(0, total - have) if total else None,
            then=(
                f"{self.part} is kept with the {have:,} bytes received: free some space (or "
                "move data_root to a bigger disk) and run the same command again; the "
                f"download resumes at byte {have:,}."
            ),
        )

    # -- the .part file ----------------------------------------------------------------

    def _resume_offset(self) -> int:
        """Bytes of `.part` worth keeping: 0 if there is none, no sidecar, too many, or its
        first bytes show it is not the file."""
        if not self.part.exists():
            return 0
        have = self.part.stat().st_size
        if have == 0 or not self.meta.exists():
            self._discard()
            return 0
        if self.size is not None and have > self.size:
            log.warning("%s: %s is larger than the file; restarting", self.entry, self.part)
            self._discard()
            return 0
        problem = self._head_problem(self._part_head(), complete=False)
        if problem:  # an older run kept a page: never continue it into the file
            log.warning("%s: %s is not the file (%s); restarting", self.entry, self.part, problem)
            self._discard()
            return 0
        return have

    def _validator(self) -> str | None:
        """If-Range value from the sidecar: a strong ETag, else Last-Modified."""
        try:
            meta = json.loads(self.meta.read_text())
        except (OSError, ValueError):
            return None
        etag = meta.get("etag")
        if etag and not etag.startswith("W/"):
            return etag
        return meta.get("last_modified")

    def _start_fresh(self, url: str, resp: requests.Response) -> None:
        """Drop any `.part` and record this response's validators for later resumes."""
        self._discard()
        meta = {
            "url": url,
            "etag": resp.headers.get("ETag"),
            "last_modified": resp.headers.get("Last-Modified"),
        }
        with staged(self.meta) as tmp:
            tmp.write_text(json.dumps(meta))

    def _discard(self) -> None:
        self.part.unlink(missing_ok=True)
        self.meta.unlink(missing_ok=True)
        self.digests = _Digests(self.names)

    def _receive(self, url: str, resp: requests.Response, start: int) -> None:
        """Append the body to `.part` from `start`, hashing as it goes."""
        if self.digests.count != start:
            self._rehash_part(start)
        self.resumed_from = start
        total = self.size or _body_total(resp, start)
        see = self._head_watch(url, start)
        with (
            # Append, or create: never truncate, which makes ext4 flush the file on close.
            self.part.open("ab" if start else "xb") as out,
            self.digests.feeder() as feed,
            bar(
                total, self.entry, unit="B", unit_scale=True, unit_divisor=1024, initial=start
            ) as progress,
        ):
            while chunk := _read(resp, CHUNK, self.digests.count):
                see(chunk)
                out.write(chunk)
                feed(chunk)
                self.transferred += len(chunk)
                progress.update(len(chunk))
        expected_total = _body_total(resp, start)
        if expected_total is not None and self.digests.count < expected_total:
            raise _Retry(f"body ended at byte {self.digests.count} of {expected_total}")

    def _rehash_part(self, upto: int) -> None:
        """Hash the first `upto` bytes already in `.part` (a resume from an earlier run)."""
        self.digests = _Digests(self.names)
        with self.part.open("rb") as src, self.digests.feeder() as feed:
            while self.digests.count < upto:
                chunk = src.read(min(CHUNK, upto - self.digests.count))
                if not chunk:
                    raise _Retry(f"{self.part.name} shrank while resuming", 0.0)
                feed(chunk)

    def _install(self, url: str) -> None:
        """Move `.part` to `dest` if size and checksum match; else discard it."""
        have = self.part.stat().st_size
        if self.digests.count != have:
            self._rehash_part(have)
        if self.size is not None and have != self.size:
            self._discard()
            raise _UrlFailed(f"size mismatch: expected {self.size} bytes, got {have}")
        if self.expected:
            name, want = self.expected
            got = self.digests.hexdigest(name)
            if got != want:
                resumed = self.resumed_from
                self._discard()
                if resumed:
                    raise _Retry(
                        f"{name} mismatch after resuming at byte {resumed}; restarting from 0",
                        0.0,
                    )
                raise _UrlFailed(f"{name} mismatch: expected {want}, got {got}")
        self._check_unverified(url, have)
        os.replace(self.part, self.dest)
        self.meta.unlink(missing_ok=True)

    def _report(self, url: str, seconds: float) -> dict[str, Any]:
        rate = self.transferred / 1e6 / seconds if seconds > 0 else float("inf")
        log.info(
            "%s: done from %s: %s transferred in %.1f s (%.1f MB/s), %d attempt(s)",
            self.entry,
            url,
            _megabytes(self.transferred),
            seconds,
            rate,
            self.attempts,
        )
        return {
            "url": url,
            "bytes": self.transferred,
            "resumed_from": self.resumed_from,
            "attempts": self.attempts,
            "sha256": self.digests.hexdigest("sha256"),
            "md5": self.digests.hexdigest("md5"),
            "seconds": round(seconds, 3),
        }


def _read(resp: requests.Response, amount: int, received: int) -> bytes:
    """Next chunk of the raw body (never decoded); a broken connection becomes a _Retry."""
    try:
        return resp.raw.read(amount, decode_content=False)
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise _Retry(f"connection lost at byte {received}: {exc}") from exc


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) from `bytes a-b/total` or `bytes */total`; None if unknown."""
    if not value or not value.startswith("bytes "):
        return None, None
    span, _, total = value[6:].partition("/")
    first = span.split("-")[0]
    return (
        int(first) if first.isdigit() else None,
        int(total) if total.isdigit() else None,
    )


def _body_total(resp: requests.Response, start: int) -> int | None:
    """Size of the whole file implied by this response's Content-Length, if given."""
    length = resp.headers.get("Content-Length")
    return start + int(length) if length and length.isdigit() else None


def _megabytes(size: int | None) -> str:
    return "unknown size" if size is None else f"{size / 1e6:.1f} MB"
