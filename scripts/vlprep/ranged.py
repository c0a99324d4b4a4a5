"""One big file over several connections at once, resumable range by range.

Slow academic hosts cap each connection at a few MB/s and sit tens of milliseconds away, so a
single stream uses a fraction of the link. vlprep.fetch hands a file here when its host says it
serves ranges (`Accept-Ranges: bytes`) and the file spans at least two segments:

* the file is cut into SEGMENT-sized ranges; `connections` workers each take the next missing
  one and GET it (`Range` + `If-Range` with the first response's ETag or Last-Modified), writing
  what arrives as it arrives (pump) at its offset in the `.part` (sparse, full size); the first response, already streaming from
  byte 0, serves the first segment;
* a control file beside it (`<dest>.part.ranges`) records what is on disk: finished ranges and
  how far each running one got, rewritten atomically every FLUSH_BYTES (or FLUSH_SECONDS), so a
  kill loses at most that much; the rerun fetches only what is missing;
* the checksum is still computed over the file in order: a hasher thread follows the prefix of
  the file that is complete from byte 0 and hashes it as it grows (from the page cache), so the
  digest is ready when the last range lands; nothing is held whole in memory;
* a range answered with 200 (the file changed, or the host ignores ranges after all) or with
  another total size throws the parts away: the download restarts cleanly, as one stream;
* politeness: connections to one host are limited across processes (HostSlots: lock files,
  so the concurrent jobs Snakemake's `downloads` resource lets run share one budget), 429 and
  503 are waited out per connection (Retry-After honoured), and a host that answers them under
  load is given fewer connections from then on.
"""

import fcntl
import hashlib
import json
import logging
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from vlprep.atomic import staged
from vlprep.progress import bar
from vlprep.space import disk_full
from vlprep.transfer import Backoff, Digests, Retry

log = logging.getLogger(__name__)

SEGMENT = 16 << 20  # a range per request: long enough that a request's latency is noise
MAX_READ = 4 << 20  # a read returns what has arrived, at most this much
FLUSH_BYTES = 1 << 20  # at most this much received is not yet in the control file
FLUSH_SECONDS = 0.25
HASH_POLL = 0.02  # seconds between the hasher's looks at the complete prefix
CONTROL_SUFFIX = ".part.ranges"
DEFAULT_CONNECTIONS = 16  # per host, as aria2c's -x16 that users reach for


class Changed(Exception):
    """A range request got the whole file or another size: the remote file is not the one
    the parts are of (or the host ignores ranges); start again from nothing."""


# ---- what is on disk --------------------------------------------------------------------


def merge(spans: list[list[int]]) -> list[list[int]]:
    """Half-open [start, end) spans, sorted and joined where they touch or overlap."""
    joined: list[list[int]] = []
    for start, end in sorted(spans):
        if end <= start:
            continue
        if joined and start <= joined[-1][1]:
            joined[-1][1] = max(joined[-1][1], end)
        else:
            joined.append([start, end])
    return joined


def missing(done: list[list[int]], size: int, segment: int) -> list[tuple[int, int]]:
    """The spans of [0, size) not in `done`, cut into pieces of at most `segment` bytes."""
    gaps, at = [], 0
    for start, end in merge(done) + [[size, size]]:
        if start > at:
            gaps.append((at, min(start, size)))
        at = max(at, end)
    pieces = []
    for start, end in gaps:
        pieces += [(s, min(s + segment, end)) for s in range(start, end, segment)]
    return pieces


class RangeState:
    """Which bytes of `.part` hold the file: finished spans plus the running ranges' progress;
    persisted to the control file."""

    def __init__(self, path: Path, size: int, validator: str | None, done: list[list[int]]):
        self.path, self.size, self.validator = path, size, validator
        self.done = merge(done)
        self.running: dict[int, int] = {}  # range start -> bytes of it written
        self.lock = threading.Condition()
        self.unsaved = 0
        self.saved_at = time.monotonic()

    @classmethod
    def load(cls, path: Path, size: int | None, validator: str | None) -> "RangeState | None":
        """The state a control file records, if it is of this file (size and validator)."""
        try:
            data = json.loads(path.read_text())
            done = [[int(a), int(b)] for a, b in data["done"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if size is not None and data.get("size") != size:
            return None
        if data.get("validator") != validator or not isinstance(data.get("size"), int):
            return None
        if any(not 0 <= a <= b <= data["size"] for a, b in done):
            return None
        return cls(path, data["size"], validator, done)

    def spans(self) -> list[list[int]]:
        running = [[start, start + n] for start, n in self.running.items()]
        return merge(self.done + running)

    def have(self) -> int:
        return sum(end - start for start, end in self.spans())

    def prefix(self) -> int:
        """How many bytes from byte 0 are on disk."""
        spans = self.spans()
        return spans[0][1] if spans and spans[0][0] == 0 else 0

    def begin(self, start: int) -> None:
        with self.lock:
            self.running[start] = 0

    def advance(self, start: int, n: int) -> None:
        with self.lock:
            self.running[start] += n
            self.unsaved += n
            # no notify: the hasher looks every HASH_POLL seconds (waking it for every chunk
            # of 16 connections costs more than it saves)
            due = time.monotonic() - self.saved_at >= FLUSH_SECONDS
            if self.unsaved >= FLUSH_BYTES or due:
                self._save()

    def end(self, start: int, finished: bool) -> None:
        """A range stops: all of it is on disk (finished), or only what was written."""
        with self.lock:
            written = self.running.pop(start)
            if written:
                self.done = merge(self.done + [[start, start + written]])
            self._save()
            self.lock.notify_all()

    def save(self) -> None:
        with self.lock:
            self._save()

    def _save(self) -> None:
        data = {"size": self.size, "validator": self.validator, "done": self.spans()}
        with staged(self.path) as tmp:
            tmp.write_text(json.dumps(data))
        self.unsaved = 0
        self.saved_at = time.monotonic()


# ---- a budget of connections per host, across processes ----------------------------------


class HostSlots:
    """At most `limit` connections to `host` from every vlprep process on this machine: a
    connection holds an exclusive lock on one of `limit` slot files (released by the kernel
    if the process dies)."""

    def __init__(self, host: str, limit: int, folder: Path | None = None) -> None:
        self.limit = max(1, limit)
        folder = folder or Path(tempfile.gettempdir()) / f"vlprep-hosts-{os.getuid()}"
        folder.mkdir(parents=True, exist_ok=True)
        safe = hashlib.sha1(host.encode()).hexdigest()[:16]
        self.files = [folder / f"{safe}.{i}.lock" for i in range(self.limit)]

    @contextmanager
    def slot(self, stop: threading.Event) -> Iterator[bool]:
        """Hold a free slot while the block runs; yields False if `stop` was set first."""
        while not stop.is_set():
            for path in self.files:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                try:
                    yield True
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                    os.close(fd)
                return
            stop.wait(0.2)
        yield False


# ---- the parallel download --------------------------------------------------------------


# A worker's way to fetch ranges: serve(start, end, write) writes bytes [start, end) through
# `write` as they arrive (first write(b"") once the answer's headers accept the range), raising Retry (transient; `.overloaded` for a 429/503), Changed or
# UrlFailed; an opener makes one per worker (its own connection), with an optional close().
Serve = Callable[[int, int, Callable[[bytes], None]], None]


class RangedFetch:
    """Fetch what `state` lacks into `part` over `connections` workers, each with its own
    `open_range()`, hashing the file in order into `feed` (vlprep.transfer.Digests.feeder's)."""

    def __init__(
        self,
        *,
        entry: str,
        host: str,
        part: Path,
        state: RangeState,
        connections: int,
        policy: Backoff,
        open_range: Callable[[], Serve],
        slots: HostSlots | None = None,
        segment: int = SEGMENT,
    ) -> None:
        self.entry, self.part, self.state, self.policy = entry, part, state, policy
        self.open_range = open_range
        self.slots = slots or HostSlots(host, connections)
        self.allowed = max(1, connections)
        self.todo: queue.Queue[tuple[int, int]] = queue.Queue()
        for span in missing(state.done, state.size, segment):
            self.todo.put(span)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.transferred = 0
        self.inflight = 0  # our requests the host is answering or sending right now
        self.count_lock = threading.Lock()

    def run(
        self,
        feed: Callable[[bytes], None],
        first: Serve | None = None,
    ) -> None:
        """Download every missing range and hash the whole file in order (`transferred` counts
        the bytes received). `first(start, end, write)`, if given, serves the first missing range from
        a response already open (it starts at byte 0). Raises Changed, Retry or UrlFailed."""
        fd = os.open(self.part, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if os.fstat(fd).st_size != self.state.size:
                os.ftruncate(fd, self.state.size)  # sparse: ranges land at their offsets
            self.state.save()
            opening = None
            if first is not None and not self.todo.empty():
                opening = (self.todo.get_nowait(), first)
            count = min(self.allowed, self.todo.qsize() + (opening is not None))
            with bar(
                self.state.size,
                self.entry,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                initial=self.state.have(),
            ) as progress:
                hasher = threading.Thread(target=self._hash, args=(fd, feed), daemon=True)
                hasher.start()
                workers = [
                    threading.Thread(
                        target=self._work,
                        args=(i, fd, progress, opening if i == 0 else None),
                        daemon=True,
                    )
                    for i in range(max(1, count))
                ]
                for worker in workers:
                    worker.start()
                for worker in workers:
                    worker.join()
                if self.error is None and self.state.have() < self.state.size:
                    left = self.state.size - self.state.have()
                    self._fail(Retry(f"{left:,} bytes still missing; resuming them"))
                hasher.join()
        finally:
            self.state.save()
            os.close(fd)
        if self.error is not None:
            raise self.error

    # -- the hasher -----------------------------------------------------------------------

    def _hash(self, fd: int, feed: Callable[[bytes], None]) -> None:
        """Hash the file from byte 0 as its complete prefix grows."""
        hashed = 0
        try:
            while hashed < self.state.size:
                with self.state.lock:
                    while (ready := self.state.prefix()) <= hashed and not self.stop.is_set():
                        self.state.lock.wait(HASH_POLL)
                if ready <= hashed:
                    return  # stopped
                while hashed < ready:
                    chunk = os.pread(fd, min(4 << 20, ready - hashed), hashed)
                    if not chunk:
                        raise Retry(f"{self.part.name} shrank while hashing")
                    feed(chunk)
                    hashed += len(chunk)
        except BaseException as err:  # noqa: BLE001 - handed to run()
            self._fail(err)

    # -- the workers ----------------------------------------------------------------------

    def _fail(self, err: BaseException) -> None:
        if self.error is None:
            self.error = err
        self.stop.set()
        with self.state.lock:
            self.state.lock.notify_all()

    def _work(self, index: int, fd: int, progress, opening) -> None:
        """Take missing ranges until none is left (or the host got fewer connections), each
        while holding a host slot; a failed range goes back to the queue, after a pause."""
        serve = self.open_range()
        failures = 0  # in a row; a host busy with our other connections is not failing
        try:
            while not self.stop.is_set() and (index < self.allowed or opening):
                if opening is not None:
                    (start, end), this = opening
                    opening = None
                else:
                    try:
                        start, end = self.todo.get_nowait()
                    except queue.Empty:
                        return
                    this = serve
                with self.slots.slot(self.stop) as got:
                    if not got:
                        return
                    try:
                        self._receive(fd, start, end, progress, this)
                        failures = 0
                        continue
                    except Retry as exc:
                        if not getattr(exc, "requeued", False):
                            self.todo.put((start, end))
                        busy = getattr(exc, "overloaded", False) and self._slow_down(str(exc))
                        failures += not busy
                        retry = exc
                if failures > self.policy.retries:
                    reason = f"range {start}-{end - 1}: {retry} (gave up after {failures} attempts)"
                    self._fail(Retry(reason))
                    return
                delay = self.policy.delay(max(1, failures), retry.retry_after)
                log.warning(
                    "%s: range %d-%d: %s; again in %.1f s", self.entry, start, end - 1, retry, delay
                )
                if self.stop.wait(delay):
                    return
        except BaseException as err:  # noqa: BLE001 - Changed, UrlFailed, OSError, or a bug:
            self._fail(err)  # every worker stops, run() raises it
        finally:
            getattr(serve, "close", lambda: None)()

    def _receive(self, fd: int, start: int, end: int, progress, serve) -> None:
        """Let `serve(start, end, write)` write range [start, end) at its offset; what arrived
        is kept (and recorded) whatever happens; a short range is put back for the rest."""
        written = 0
        self.state.begin(start)
        with self.count_lock:
            self.inflight += 1

        def write(chunk: bytes) -> None:
            # write(b"") when the response's headers say the host serves the range: a look
            # at `stop` before the body
            nonlocal written
            if self.stop.is_set():
                raise Retry("stopping")
            chunk = chunk[: end - start - written]
            os.pwrite(fd, chunk, start + written)
            written += len(chunk)
            self.state.advance(start, len(chunk))
            with self.count_lock:
                self.transferred += len(chunk)
            progress.update(len(chunk))

        try:
            serve(start, end, write)
        except Retry as exc:
            exc.requeued = written > 0
            raise
        finally:
            with self.count_lock:
                self.inflight -= 1
            self.state.end(start, written == end - start)
            if 0 < written < end - start and not self.stop.is_set():
                self.todo.put((start + written, end))
        if written < end - start:
            short = Retry(f"body ended at byte {start + written} of a range ending at {end}")
            short.requeued = written > 0
            raise short

    def _slow_down(self, answer: str) -> bool:
        """A host refusing under load gets fewer connections from now on: as many as our other
        requests to it at this moment (a host that limits connections refuses the ones past
        its limit; counted from the request on, as the host counts them, since their answers
        may not have arrived yet), or half as many when there are none. Returns whether there
        are: the refusal then means "busy with your own", not a failure."""
        with self.count_lock:
            before, others = self.allowed, self.inflight
            self.allowed = max(1, min(self.allowed, others) if others else self.allowed // 2)
            if self.allowed < before:
                log.warning(
                    "%s: the host answered %s under %d connections; using %d",
                    self.entry,
                    answer,
                    before,
                    self.allowed,
                )
        return others > 0


def pump(read: Callable[[int], bytes], length: int, write: Callable[[bytes], None]) -> None:
    """Copy `length` bytes from `read` to `write` until the body ends. `read(n)` returns what
    has arrived, up to n (one recv, as read1): a fast link gives big chunks (little Python work
    per byte) and a slow one small ones, written as they come, so a kill loses only what the
    kernel held and the last FLUSH_BYTES, whatever the link's speed."""
    left = length
    while left > 0:
        chunk = read(min(MAX_READ, left))
        if not chunk:
            return
        write(chunk)
        left -= len(chunk)


def overloaded(reason: str, retry_after: float | None) -> Retry:
    """The Retry for a 429 or 503 answered to one range: wait, and use fewer connections."""
    err = Retry(reason, retry_after)
    err.overloaded = True
    return err


# ---- what a downloader (vlprep.transfer.Transfer) adds to use it --------------------------


class RangedTransfer:
    """Mixed into a vlprep.transfer.Transfer subclass (HTTP, S3): the control file beside
    `.part`, kept in step with `.part` (discarded and installed with it), the ranged run with
    its verification, and the way back to one stream. The subclass sets `self.ranges`
    (`<dest>.part.ranges`), `self.connections` and `self.policy`, and gives `validator()`."""

    def validator(self) -> str | None:
        raise NotImplementedError

    def discard(self) -> None:
        super().discard()
        self.ranges.unlink(missing_ok=True)

    def install(self, url: str) -> None:
        super().install(url)
        self.ranges.unlink(missing_ok=True)

    def may_split(self, size: int | None) -> bool:
        """Whether a file of `size` bytes is worth several connections."""
        return self.connections > 1 and size is not None and size >= 2 * SEGMENT

    def resumable_ranges(self) -> "RangeState | None":
        """The state of a ranged `.part` an earlier attempt left, if it can go on ranged;
        else (another file, or one connection now) what a single stream can resume is kept."""
        if not self.ranges.exists():
            return None
        state = RangeState.load(self.ranges, self.size, self.validator())
        if state is not None and self.part.exists() and self.connections > 1:
            log.info(
                "%s: resuming with %.1f of %.1f MB on disk, over up to %d connections",
                self.entry,
                state.have() / 1e6,
                state.size / 1e6,
                self.connections,
            )
            self.resumed_from = state.have()
            return state
        if state is None or not self.part.exists():
            self.discard()
            return None
        prefix = state.prefix()  # one stream resumes from the end of the prefix at byte 0
        os.truncate(self.part, prefix)
        self.ranges.unlink(missing_ok=True)
        if not prefix:
            self.discard()
        return None

    def ranged(
        self, url: str, host: str, state: RangeState, open_range: Callable[[], Serve], first
    ) -> None:
        """Fetch what `state` lacks, hashing in order, then verify and install; a file that
        changed (or a host that ignores ranges) starts again as one stream."""
        self.digests = Digests(self.names)
        fetcher = RangedFetch(
            entry=self.entry,
            host=host,
            part=self.part,
            state=state,
            connections=self.connections,
            policy=self.policy,
            open_range=open_range,
        )
        try:
            with self.digests.feeder() as feed:
                fetcher.run(feed, first)
        except Changed as exc:
            self.discard()
            self.connections = 1
            raise Retry(f"{exc}; starting again as one stream", 0.0) from None
        finally:
            self.transferred += fetcher.transferred
        self.install(url)

    def disk_full(self, err: OSError):
        """As Transfer's, but a ranged `.part` is sparse: what it holds is in its control file."""
        state = RangeState.load(self.ranges, self.size, self.validator())
        if state is None:
            return super().disk_full(err)
        return disk_full(
            err,
            self.part,
            entry=self.entry,
            needed=state.size - state.have(),
            then=(
                f"{self.part} is kept with the {state.have():,} bytes received (its ranges are in "
                f"{self.ranges.name}): free some space (or move data_root to a bigger disk) and "
                "run the same command again; only the missing ranges are fetched."
            ),
        )
