"""The transfer base the three single-file downloaders share: HTTP (vlprep.fetch), S3
(vlprep.s3) and Google Drive (vlprep.gdrive).

Each downloader speaks its own protocol (a GET, a GetObject, gdown); what makes a download safe
to restart and safe to trust is written here, once, and each downloader subclasses `Transfer`:

* the retry policy: a transient failure (dropped connection, timeout, cut-off body, 5xx, 429)
  raises `Retry` and is tried again after `Backoff.delay`: exponential with equal jitter, or
  the server's Retry-After (`parse_retry_after`), capped either way; `Transfer.retrying` gives
  a URL 1 + retries attempts, then raises `UrlFailed`, which moves `Transfer.run` on to the
  next mirror URL; when every URL fails, one FetchError lists them all;
* the running digests: `Digests` hashes the bytes while they stream, each hash in a worker
  thread, so hashing overlaps the network read instead of adding to it;
* the checksum that settles a file: `expected_digest` (`catalog_digest` for a catalog entry)
  picks sha256 if the catalog gives one, else sha1, else md5; sha256 is always computed and
  reported, the others only when they are the one that settles the file;
* the resume state: bytes stream into `<dest>.part`, and its sidecar `<dest>.part.json`
  records what they are a part of (the first response's validators: ETag and Last-Modified,
  or Drive's file id and size), so a resume continues only into the same remote file and a
  changed one restarts from byte 0. `.part` outlives failed attempts and runs; a `.part`
  without its sidecar, longer than the file, or not starting like the file is discarded;
* the disk-full handling: a full disk or used-up quota stops the download with a DiskFullError
  saying how much is needed and free (vlprep.space); `.part` is kept and the rerun resumes at
  its last byte. A full disk is not retried: waiting does not free space;
* the verified atomic install: `.part` is renamed to `dest` only once its size and checksum
  match the catalog (without a checksum, once it starts like its format and is not tiny next
  to `approx_size`, vlprep.sniff); on a mismatch `.part` and its sidecar are discarded, so
  nothing unverified is ever at `dest` and no wrong bytes are resumed.

A downloader supplies `attempt(url)` (one request: stream into `.part` with `receive`, then
`install`) and may override the messages: `advice`, `failed`, `wrong_file`,
`check_unverified`.
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
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vlprep.atomic import staged
from vlprep.errors import DiskFullError, FetchError
from vlprep.progress import bar
from vlprep.sniff import (
    SNIFF_BYTES,
    describe,
    expected_format,
    format_problem,
    implausibly_small,
)
from vlprep.space import disk_full, is_disk_full

log = logging.getLogger(__name__)

CHUNK = 4 << 20  # big reads keep Python overhead low; 4 MiB measured best on loopback
QUEUE_DEPTH = 8  # chunks in flight between reader and hasher (32 MiB)
CHECKSUMS = ("sha256", "sha1", "md5")  # the catalog's checksum keys, strongest first
PART_SUFFIX = ".part"
SIDECAR_SUFFIX = ".part.json"


# -- the retry policy --------------------------------------------------------------------


class Retry(Exception):
    """A transient failure: try the same URL again after a pause (`retry_after` seconds, if
    the server or the failure says how long; else the backoff's)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class UrlFailed(Exception):
    """This URL will not deliver the file: move on to the next one."""


@dataclass
class Backoff:
    """How often and how long to wait before trying a URL again."""

    retries: int  # attempts per URL after the first
    base: float  # seconds before the first retry (before jitter)
    cap: float  # no pause is longer, whatever the server asks

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


def parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) from `bytes a-b/total` or `bytes */total`; None if unknown.

    HTTP's Content-Range, which S3 answers a ranged GetObject with too.
    """
    if not value or not value.startswith("bytes "):
        return None, None
    span, _, total = value[6:].partition("/")
    first = span.split("-")[0]
    return (
        int(first) if first.isdigit() else None,
        int(total) if total.isdigit() else None,
    )


# -- the checksum that settles a file, and the running digests ----------------------------


def hash_file(path: str | Path, digest: Any) -> str:
    """`digest` (a hashlib object) of a whole file, read in CHUNK blocks: memory stays flat."""
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def expected_digest(
    *, sha256: str | None = None, sha1: str | None = None, md5: str | None = None
) -> tuple[str, str] | None:
    """The checksum that settles a file, as (hash name, lower-case hex): sha256 if published,
    else sha1, else md5, else None."""
    for name, value in (("sha256", sha256), ("sha1", sha1), ("md5", md5)):
        if value:
            return (name, value.lower())
    return None


def catalog_digest(source: Mapping[str, Any]) -> tuple[str, str] | None:
    """expected_digest of a catalog entry (its sha256, sha1 and md5 keys)."""
    return expected_digest(**{name: source.get(name) for name in CHECKSUMS})


def digest_names(expected: tuple[str, str] | None) -> list[str]:
    """The hashes a download computes: sha256 (always reported), and the expected one."""
    if expected and expected[0] != "sha256":
        return ["sha256", expected[0]]
    return ["sha256"]


class Digests:
    """Running hashes of the bytes in `.part`, plus how many bytes they cover.

    Each hash runs in its own worker thread: hashlib releases the GIL on large buffers, so
    hashing overlaps the socket reads (and md5 overlaps sha256) instead of adding to them;
    on loopback that made a 1 GB download about 1.4x faster than hashing inline.
    """

    def __init__(self, names: list[str]) -> None:
        self._hashes = {name: hashlib.new(name) for name in names}
        self.count = 0

    def hexdigest(self, name: str) -> str | None:
        """The hex digest so far of hash `name`; None if it is not computed."""
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


def megabytes(size: int | None) -> str:
    return "unknown size" if size is None else f"{size / 1e6:.1f} MB"


# -- one file on its way to dest ----------------------------------------------------------


class Transfer:
    """The state of fetching one catalog file into `dest`, across attempts and URLs.

    `expected` is expected_digest's answer; `archive` (the catalog's kind, else `dest`'s
    suffix) names the format a file without a checksum must show; `approx_size` counts only
    when the exact `size` is unknown. `expect_binary` refuses an HTML page early even when a
    checksum would settle the file later (hosts send those; S3 never does).
    """

    mode: int | None = None  # permissions `dest` gets when installed (None: as created)

    def __init__(
        self,
        entry: str,
        dest: Path,
        *,
        size: int | None,
        expected: tuple[str, str] | None,
        archive: str | None = None,
        approx_size: int | None = None,
        expect_binary: bool = True,
    ) -> None:
        self.entry = entry
        self.dest = Path(dest)
        self.part = self.dest.with_name(self.dest.name + PART_SUFFIX)
        self.meta = self.dest.with_name(self.dest.name + SIDECAR_SUFFIX)
        self.size = size
        self.expected = expected
        self.fmt = expected_format(self.dest.name, archive)  # what the first bytes must show
        self.approx_size = approx_size if size is None else None
        self.expect_binary = expect_binary
        self.body_total: int | None = None  # the file size the current response implies
        self.names = digest_names(expected)
        self.digests = Digests(self.names)
        self.attempts = 0
        self.transferred = 0
        self.resumed_from = 0

    # -- driving -----------------------------------------------------------------------

    def attempt(self, url: str) -> None:
        """One request for `url`: stream what is missing into `.part`, then `install` it.

        Raises Retry for a transient failure, UrlFailed when `url` cannot deliver the file.
        """
        raise NotImplementedError

    def run(self, urls: list[str], policy: Backoff) -> dict[str, Any]:
        """Try each URL in turn; return the report of the one that delivered."""
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        failures: dict[str, str] = {}
        log.info("%s: fetching %s into %s", self.entry, megabytes(self.size), self.dest)
        for url in urls:
            try:
                self.retrying(url, policy)
            except UrlFailed as exc:
                failures[url] = str(exc)
                log.warning("%s: giving up on %s: %s", self.entry, url, exc)
                continue
            except OSError as exc:  # from writing `.part` or its sidecar; not retried
                if is_disk_full(exc):
                    raise self.disk_full(exc) from None
                raise
            return self.report(url, time.monotonic() - started)
        raise self.failed(failures)

    def retrying(self, url: str, policy: Backoff) -> None:
        """Attempt `url` up to 1 + retries times, pausing between transient failures."""
        log.info("%s: trying %s", self.entry, url)
        for attempt in range(1, policy.retries + 2):
            self.attempts += 1
            try:
                self.attempt(url)
                return
            except Retry as exc:
                if attempt > policy.retries:
                    raise UrlFailed(f"{exc} (gave up after {attempt} attempts)") from exc
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

    def failed(self, failures: dict[str, str]) -> FetchError:
        """The error when every URL failed, `failures` saying why for each."""
        tried = "\n".join(f"  {url}: {reason}" for url, reason in failures.items())
        return FetchError(
            f"{self.entry}: could not download {self.dest.name}; tried {len(failures)} "
            f"URL(s):\n{tried}\n{self.advice()}"
        )

    def advice(self) -> str:
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
            f"differs, check the catalog entry's {'/'.join(CHECKSUMS)} against the host; "
            f"{partial}; or download the file by hand into manual_dir."
        )

    def report(self, url: str, seconds: float) -> dict[str, Any]:
        """What the download did: url, bytes (transferred over the network), resumed_from
        (where the final transfer started), attempts, sha256, sha1, md5, seconds."""
        rate = self.transferred / 1e6 / seconds if seconds > 0 else float("inf")
        log.info(
            "%s: done from %s: %s transferred in %.1f s (%.1f MB/s), %d attempt(s)",
            self.entry,
            url,
            megabytes(self.transferred),
            seconds,
            rate,
            self.attempts,
        )
        return {
            "url": url,
            "bytes": self.transferred,
            "resumed_from": self.resumed_from,
            "attempts": self.attempts,
            **{name: self.digests.hexdigest(name) for name in CHECKSUMS},
            "seconds": round(seconds, 3),
        }

    # -- the disk filling up -------------------------------------------------------------

    def partial_file(self) -> Path:
        """The file the bytes received so far are in."""
        return self.part

    def disk_full(self, err: OSError) -> DiskFullError:
        """The disk filled up while the partial file was written: what is needed, and that
        the rerun resumes."""
        path = self.partial_file()
        have = path.stat().st_size if path.exists() else 0
        total = self.size or self.body_total or self.approx_size
        return disk_full(
            err,
            path,
            entry=self.entry,
            needed=max(0, total - have) if total else None,
            then=(
                f"{path} is kept with the {have:,} bytes received: free some space (or "
                "move data_root to a bigger disk) and run the same command again; the "
                f"download resumes at byte {have:,}."
            ),
        )

    # -- is it the file at all? ----------------------------------------------------------

    def tiny_message(self, url: str, total: int, verb: str) -> str:
        return (
            f"{url} {verb} {total:,} bytes, but the catalog puts {self.dest.name} at about "
            f"{self.approx_size:,} (approx_size): that is a placeholder or an error page, not "
            "the file; try a mirror, or download the file by hand into manual_dir"
        )

    def head_problem(self, head: bytes, *, complete: bool) -> str | None:
        """Why a file starting with `head` cannot be the catalog's file; None if it may be.

        A checksum settles a file after the transfer, so then only a page is refused early
        (hosts send those); without one, the first bytes must show the expected format.
        """
        if self.expected:
            if not self.expect_binary or self.fmt == "markup":
                return None
            return format_problem(head, None, complete=complete)
        return format_problem(head, self.fmt, complete=complete)

    def check_head(self, url: str, head: bytes, *, complete: bool) -> None:
        """Discard `.part` and give up on `url` if the file's first bytes are not the file."""
        problem = self.head_problem(head, complete=complete)
        if problem:
            self.discard()
            raise UrlFailed(
                f"{url} did not send {describe(self.fmt)} for {self.dest.name}: {problem}; "
                "try a mirror, or download the file by hand into manual_dir"
            )

    def head_watch(self, url: str, start: int) -> Callable[[bytes], None]:
        """A function to call with each chunk before it is written: it checks the file's first
        bytes (on a resume, those in `.part` first) until SNIFF_BYTES of them are known, so a
        short page is judged as soon as it is in."""
        head = bytearray(self.part_head() if start else b"")
        self.check_head(url, bytes(head), complete=False)

        def see(chunk: bytes) -> None:
            if len(head) < SNIFF_BYTES:
                head.extend(chunk[: SNIFF_BYTES - len(head)])
                self.check_head(url, bytes(head), complete=False)

        return see

    def part_head(self) -> bytes:
        with self.part.open("rb") as src:
            return src.read(SNIFF_BYTES)

    def check_unverified(self, url: str, have: int) -> None:
        """Before installing a file no checksum vouches for: its format and its size."""
        self.check_head(url, self.part_head(), complete=True)
        if implausibly_small(have, self.approx_size):
            self.discard()
            raise UrlFailed(self.tiny_message(url, have, "sent"))

    # -- the .part file and its sidecar --------------------------------------------------

    def resume_offset(self) -> int:
        """Bytes of `.part` worth keeping: 0 if there is none, no sidecar, too many, or its
        first bytes show it is not the file."""
        if not self.part.exists():
            return 0
        have = self.part.stat().st_size
        if have == 0 or not self.meta.exists():
            self.discard()
            return 0
        if self.size is not None and have > self.size:
            log.warning("%s: %s is larger than the file; restarting", self.entry, self.part)
            self.discard()
            return 0
        problem = self.head_problem(self.part_head(), complete=False)
        if problem:  # an older run kept a page: never continue it into the file
            log.warning("%s: %s is not the file (%s); restarting", self.entry, self.part, problem)
            self.discard()
            return 0
        return have

    def recorded(self) -> dict[str, Any]:
        """What the sidecar says `.part` is a part of; {} if there is none (or it is torn)."""
        try:
            return json.loads(self.meta.read_text())
        except (OSError, ValueError):
            return {}

    def record(self, fields: dict[str, Any]) -> None:
        """Write the sidecar: what the bytes in `.part` belong to."""
        with staged(self.meta) as tmp:
            tmp.write_text(json.dumps(fields))

    def start_fresh(self, fields: dict[str, Any]) -> None:
        """Drop any `.part` and record what the new one will be a part of."""
        self.discard()
        self.record(fields)

    def discard(self) -> None:
        """Delete `.part` and its sidecar: the next bytes start the file again."""
        self.part.unlink(missing_ok=True)
        self.meta.unlink(missing_ok=True)
        self.digests = Digests(self.names)

    def receive(
        self, url: str, read: Callable[[], bytes], start: int, end: int | None = None
    ) -> None:
        """Append what `read()` returns (until b"") to `.part` from byte `start`, hashing as
        it goes; Retry if the body stops short of byte `end` (None: not announced)."""
        if self.digests.count != start:
            self.rehash_part(start)
        self.resumed_from = start
        see = self.head_watch(url, start)
        with (
            # Append, or create: never truncate, which makes ext4 flush the file on close.
            self.part.open("ab" if start else "xb") as out,
            self.digests.feeder() as feed,
            bar(
                self.size or end,
                self.entry,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                initial=start,
            ) as progress,
        ):
            while chunk := read():
                see(chunk)
                out.write(chunk)
                feed(chunk)
                self.transferred += len(chunk)
                progress.update(len(chunk))
        if end is not None and self.digests.count < end:
            raise Retry(f"body ended at byte {self.digests.count} of {end}")

    def rehash_part(self, upto: int) -> None:
        """Hash the first `upto` bytes already in `.part` (a resume from an earlier run)."""
        self.digests = Digests(self.names)
        with self.part.open("rb") as src, self.digests.feeder() as feed:
            while self.digests.count < upto:
                chunk = src.read(min(CHUNK, upto - self.digests.count))
                if not chunk:
                    raise Retry(f"{self.part.name} shrank while resuming", 0.0)
                feed(chunk)

    # -- the verified install ------------------------------------------------------------

    def install(self, url: str) -> None:
        """Rename `.part` to `dest` if size and checksum match (without a checksum: if it
        passes check_unverified); else discard it and raise what wrong_file says."""
        have = self.part.stat().st_size
        if self.digests.count != have:
            self.rehash_part(have)
        resumed = self.resumed_from
        if self.size is not None and have != self.size:
            self.discard()
            raise self.wrong_file(
                url, "size", f"size mismatch: expected {self.size} bytes, got {have}", resumed
            )
        if self.expected:
            name, want = self.expected
            got = self.digests.hexdigest(name)
            if got != want:
                self.discard()
                raise self.wrong_file(
                    url, name, f"{name} mismatch: expected {want}, got {got}", resumed
                )
        else:
            self.check_unverified(url, have)
        if self.mode is not None:
            self.part.chmod(self.mode)
        os.replace(self.part, self.dest)
        self.meta.unlink(missing_ok=True)

    def wrong_file(self, url: str, what: str, problem: str, resumed: int) -> Exception:
        """The error for a `.part` (already discarded) whose `what` (size, or a hash name)
        is not the catalog's. A wrong checksum after a resume may be two versions spliced:
        try again from byte 0; otherwise `url` serves another file."""
        if resumed and what != "size":
            return Retry(f"{problem} (after resuming at byte {resumed}); restarting from 0", 0.0)
        return UrlFailed(problem)
