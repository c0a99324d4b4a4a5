"""BLIP's `laion_synthetic_filtered_large.json` (one 20 GB JSON array) -> MiniGPT-4's TSV.

MiniGPT-4's `convert_laion.py` loads the whole array (`json.load`), takes the header from the
first object's keys and writes every object's values, in that object's own key order, with
`csv.writer(f, delimiter="\\t")`: QUOTE_MINIMAL, `""` for a quote, CRLF line ends, UTF-8 text.
`convert_json_to_tsv` writes the same bytes wherever the seed is right (every object has exactly
the keys `caption`, `url` in that order), streaming in bounded memory, and differs where the
seed is wrong:

- the header is the fixed `columns`; each row holds those keys' values in that order, whatever
  the object's key order (the seed shifts columns); other keys are ignored and counted;
- an item of the array is decoded by `json` (strict: no raw control character, no bad escape)
  from its first byte, the file read as UTF-8 with invalid bytes kept (surrogateescape). A
  *record* is an item that decodes as an object with every column a string; it is *good*, and
  gives a row, when those strings are valid Unicode (no invalid UTF-8 byte, no lone surrogate
  escape such as `"\\ud83d"`, which the seed's UTF-8 writer cannot encode). Every other item
  is *malformed*: `on_error="fail"` raises ConversionError naming the file, the byte offset
  and an excerpt, and writes nothing; `on_error="skip"` drops it, counts it (`skipped`) and
  keeps the first few reasons. What skip drops:
  - an item that decodes (a record that is not good, an object lacking a column or with a
    non-string one, anything but an object): exactly its bytes, one count;
  - an item that does not decode (broken JSON: truncated, a quote lost, a raw control
    character, a bad escape...; or a value json cannot build: an integer of over 4300
    digits, nesting past the recursion limit): its end is unknown, so the bytes from its
    first byte up to the next *record start*, one count: a `{` after a `,` (and whitespace)
    where a record, good or not, decodes and is followed by `,`, `]` or the end of the
    file. The search starts just past the broken item's `{`, not where `json` gave up, which
    can lie in the next records (`{"caption": "x", "url, {"caption": "y", ...` has a key
    `url, {`). Items inside that stretch (more broken JSON, non-records) go with it,
    uncounted; a good record after its `,` is a record start, so it is never inside one.
    Without a record start the stretch runs to the end of the file, the `]` included;
  - a missing `,` between two items: nothing, one count; a `]` followed by more than
    whitespace: from the `]` to the next record start, one count.
  Objects nested in a broken item that are themselves records (`"x": [0, {"caption": ...}]`)
  cannot be told from items, and are read as such;
- a UTF-8 byte-order mark before the array is tolerated (the seed's `json.load` rejects it);
  an empty array gives the header alone (the seed fails on `data[0]`).

Speed (DuckDB's `read_json` or better on one core): a run of records laid out like its first
one (same keys in the same order, same whitespace) is converted a block of about a megabyte at a
time, with no Python object per record. numpy finds the quotes and checks that the bytes
around every record's values are exactly the layout's; each value's closing quote is
overwritten by its separator (tab, or CR LF after the last value) and Arrow's `take` gathers
values and separators into the TSV bytes. Such values need no quoting (JSON forbids raw quotes
and control characters in strings) and Arrow checks that they are UTF-8. Records of the
layout whose strings hold escapes are decoded by `json` in one batch per block. Other records
are decoded one by one by `json` from a decoded chunk, and the first doubtful one (malformed,
or the last of the array) takes the careful path that reports byte offsets. Rows are written
exactly as `csv.writer` writes them (`_tsv_row`; the tests check it on every code point).
With `workers > 1` the file is cut into byte ranges at verified record starts; worker
processes convert ranges into part files which are appended in order, and a range whose start
the previous range's scan does not land on is converted again from where that scan ended, so a
wrong cut can cost time but never a row.
"""

import csv
import io
import json
import logging
import os
import re
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from vlprep.atomic import staged
from vlprep.errors import ConversionError
from vlprep.progress import bar

try:  # both come with img2dataset (pandas, pyarrow); without them every record takes the slow path
    import numpy as np
    import pyarrow as pa
except ImportError:  # pragma: no cover
    np = pa = None

log = logging.getLogger(__name__)

COLUMNS = ("caption", "url")
BLOCK = 1 << 20  # bytes scanned per fast step (small enough to stay in cache)
TASK_BYTES = 64 << 20  # input bytes per worker task
SLOW_WINDOW = 64 << 10  # look-ahead for the slow path and for probing cut points
FIRST_GUESS = 2048  # first window the slow path decodes a record in (grown x4 as needed)
MAX_RECORD = 64 << 20  # a record longer than this is treated as malformed
CUT_TOKEN = 16  # json reports a token cut by a window's end (`\ud8`, `fals`) <= 5 chars before
MIN_FAST = 2048  # ranges shorter than this are not worth the vectorised set-up
MIN_SCAN = 16 << 10  # the fast path's look-ahead after a short run (see _Converter._fast)
SLOW_CHUNK = 16 << 10  # bytes decoded at once by _Converter._slow_run
SHORT_RUN = 32  # a fast run of fewer records costs more than it saves: back off (see _fast)
MAX_BACKOFF = 1024  # records
REASONS_KEPT = 5
EXCERPT = 60

_WS = rb"[ \t\n\r]*"
_WS_RUN = re.compile(_WS)
_WS_TEXT = re.compile(r"[ \t\n\r]*")
_VALUE = rb'[^"\\\x00-\x1f]*(?:\\[^\x00-\x1f][^"\\\x00-\x1f]*)*'  # a JSON string's body, roughly
_CANDIDATE = re.compile(rb"," + _WS + rb"\{")
_DECODER = json.JSONDecoder()
# What json raises for bytes it cannot decode: JSONDecodeError (a ValueError), the ValueError
# of an integer past int()'s 4300 digits, RecursionError for nesting past the recursion limit.
_UNDECODABLE = (ValueError, RecursionError)
_NEEDS_QUOTES = re.compile(r'[\t\n\r"]')  # what makes csv.writer quote a field
_QUOTE_OR_EOL = re.compile(r'[\n\r"]')
_BOM = b"\xef\xbb\xbf"


class _Malformed(Exception):
    def __init__(self, offset: int, reason: str):
        super().__init__(reason)
        self.offset = offset
        self.reason = reason


@dataclass
class _Result:
    """What one scan of a byte range did."""

    start: int
    stop: int = 0  # first record start at or past the range end (or EOF when closed)
    rows: int = 0
    skipped: int = 0
    extra_keys: int = 0
    closed: bool = False  # saw the array's closing bracket
    reasons: list[str] = field(default_factory=list)
    part: str | None = None


class _Layout:
    """The bytes around a record's values, learnt from one record.

    `head` runs from a record's `{` to the opening quote of its first value, `mids[j]` from the
    closing quote of value j to the opening quote of value j + 1, and `tail` from the closing
    quote of the last value to the next record's `{`; `link` (tail + head) joins two records.
    With k values a record has 4k quotes: quote t = 4j + 2 opens value j, 4j + 3 closes it. A
    record has this layout when the bytes from its quote 4j + 3 equal mids[j] and those from its
    last quote equal `link` (whose own quotes are then the next record's first three).
    """

    def __init__(self, head: bytes, mids: list[bytes], tail: bytes):
        self.k = len(mids) + 1
        self.period = 4 * self.k
        self.head = head
        self.tail = tail
        self.link = tail + head
        self.close = tail.index(b"}") + 1  # just past the record's `}`, from its last quote
        self.windows = [(4 * j + 3, _Pattern(mid)) for j, mid in enumerate(mids)]
        self.windows.append((self.period - 1, _Pattern(self.link)))
        self.ctrl_head = _count_ctrl(head)
        self.ctrl = sum(_count_ctrl(mid) for mid in mids) + _count_ctrl(self.link)


class _Pattern:
    """A byte string compared at many offsets at once, eight bytes (one uint64 load) a time."""

    def __init__(self, pattern: bytes):
        self.size = max(len(pattern), 8)  # bytes a check may read
        self.words = []
        for off in sorted({*range(0, len(pattern) - 7, 8), max(len(pattern) - 8, 0)}):
            chunk = pattern[off : off + 8]
            mask = (1 << (8 * len(chunk))) - 1  # a pattern shorter than 8 bytes: its low bytes
            self.words.append((off, int.from_bytes(chunk, "little"), mask))

    def found(self, words, starts):
        """Which `starts` (offsets into the array `words` views) the pattern starts at."""
        last = len(words) + 7 - self.size
        ok = starts <= last
        at = np.minimum(starts, last)
        for off, want, mask in self.words:
            got = words[at + off]
            if mask != 0xFFFF_FFFF_FFFF_FFFF:
                got &= np.uint64(mask)
            ok &= got == np.uint64(want)
        return ok


def _count_ctrl(data: bytes) -> int:
    return sum(1 for byte in data if byte < 32)


class _Lines:
    """A file for csv.writer that keeps each row it writes as one string, in `lines`."""

    def __init__(self, lines: list[str]):
        self.write = lines.append


class _Converter:
    """Scans [start, end) of the array and writes TSV rows for the records starting there."""

    def __init__(self, src: Path, columns: tuple[str, ...], on_error: str):
        self.src = src
        self.columns = columns
        self.on_error = on_error
        self.keys = [json.dumps(c)[1:-1].encode() for c in columns]
        simple = all(re.fullmatch(rb"[A-Za-z0-9_]+", key) for key in self.keys)
        self.fast_ok = pa is not None and simple
        # groups: the head, each mid, the tail (see _Layout)
        parts = [rb"(\{" + _WS + b'"' + re.escape(self.keys[0]) + b'"' + _WS + b":" + _WS + b'")']
        for key in self.keys[1:]:
            parts.append(_VALUE + b'("' + _WS + b"," + _WS + b'"' + re.escape(key) + b'"')
            parts.append(_WS + b":" + _WS + b'")')
        parts.append(_VALUE + b'("' + _WS + rb"\}" + _WS + b"," + _WS + rb")\{")
        self.learn = re.compile(b"".join(parts))
        self.layouts: dict[tuple[bytes, ...], _Layout] = {}
        self.scan = BLOCK  # bytes the fast path looks at; shrinks while runs are short
        self.backoff = 0  # records to leave to the slow path after a short run; doubles
        self.slow_due = 0  # records still to take slowly before trying the fast path again
        self.lines: list[str] = []  # what self.csv writes: one string a row
        self.csv = csv.writer(_Lines(self.lines), delimiter="\t")

    # ---- rows -------------------------------------------------------------------------------

    def header(self) -> bytes:
        return self._csv_row(list(self.columns), 0)

    def _csv_row(self, values: list, offset: int) -> bytes:
        self.lines.clear()
        self.csv.writerow(values)
        try:
            return self.lines[0].encode("utf-8")
        except UnicodeEncodeError as e:
            raise _Malformed(
                offset, "text is not valid Unicode (invalid UTF-8 bytes or a lone surrogate)"
            ) from e

    # ---- scanning a range -------------------------------------------------------------------

    def run(self, f, start: int, end: int, size: int, write, progress=None) -> _Result:
        """Convert the records that start in [start, end); `end >= size` means to the `]`."""
        res = _Result(start=start)
        self.f, self.size, self.end, self.res, self.write = f, size, end, res, write
        f.seek(start)
        self.buf = bytearray()
        self.base = start
        self.pos = 0
        self.eof = False
        done_abs = start
        while not res.closed:
            if self.base + self.pos >= end:
                break
            if len(self.buf) - self.pos < BLOCK // 2 and not self.eof:
                self._fill(BLOCK)
            if self.pos >= len(self.buf):
                self._bad(self.base + self.pos, "the file ends inside the array (no closing `]`)")
                res.closed = True
                break
            lim = min(len(self.buf), end - self.base)
            if self.slow_due or not (
                self.fast_ok and lim - self.pos >= MIN_FAST and self._fast(lim)
            ):
                done = self._slow_run(lim, self.slow_due if self.fast_ok else SLOW_CHUNK)
                if not done:
                    self._slow_step()
                self.slow_due = max(self.slow_due - max(done, 1), 0)
            if progress is not None:
                now = self.base + self.pos
                progress(now - done_abs)
                done_abs = now
        res.stop = self.base + self.pos
        return res

    def _fill(self, want: int) -> None:
        """Drop consumed bytes and read until `want` unconsumed bytes are buffered (or EOF).

        The buffer is a new bytearray each time: the fast path writes separators over quotes
        of records it has converted, and a buffer is never resized while numpy views it.
        """
        rest = len(self.buf) - self.pos
        self.base += self.pos
        self.pos = 0
        if rest >= want or self.eof:
            self.buf = self.buf[len(self.buf) - rest :]
            return
        ahead = self.end - (self.base + rest)
        n = max(want - rest, min(BLOCK, ahead + SLOW_WINDOW) if ahead > 0 else SLOW_WINDOW)
        buf = bytearray(rest + n)
        buf[:rest] = memoryview(self.buf)[len(self.buf) - rest :]
        have = rest
        with memoryview(buf) as view:
            while have < len(buf):
                got = self.f.readinto(view[have:])
                if not got:
                    self.eof = True
                    break
                have += got
        del buf[have:]
        self.buf = buf

    def _bad(self, offset: int, reason: str, record_start: int | None = None) -> None:
        """Report a malformed record: raise (fail) or count it (skip)."""
        if self.on_error == "fail":
            raise ConversionError(
                f"{self.src}: malformed record at byte {offset}"
                + (f" (record starts at byte {record_start})" if record_start is not None else "")
                + f": {reason}; near: {self._excerpt(offset)}. Fetch the file again, or set "
                "on_error to 'skip' to drop such records"
            )
        self.res.skipped += 1
        if len(self.res.reasons) < REASONS_KEPT:
            self.res.reasons.append(f"byte {offset}: {reason}: {self._excerpt(offset)}")

    def _excerpt(self, offset: int) -> str:
        with open(self.src, "rb") as g:
            g.seek(max(0, offset - EXCERPT // 3))
            raw = g.read(EXCERPT)
        return repr(raw.decode("utf-8", "backslashreplace"))

    # ---- slow path: one record through json + csv ---------------------------------------------

    def _decode_at(self, idx: int, *, grow: bool = True, want: int = FIRST_GUESS):
        """Decode the JSON value at buffer index `idx`: (obj, end index) or raise _Malformed.

        With `grow`, reads more input as needed (moving the buffer); without, the value must
        lie in the buffer already (the fast path's records do).
        """
        while True:
            if grow and len(self.buf) - idx < want and not self.eof:
                keep = self.pos
                self._fill(idx - keep + want)
                idx -= keep
            chunk = self.buf[idx : idx + want]
            text = chunk.decode("utf-8", "surrogateescape")
            try:
                obj, end = _DECODER.raw_decode(text)
            except json.JSONDecodeError as err:
                at_end = err.pos >= len(text.rstrip(" \t\n\r"))
                truncated = err.msg.startswith("Unterminated string") or at_end
                # the window may end inside an escape or a literal (`"\ud8|3d"`, `tr|ue`), which
                # json reports a few characters before the end: a longer window decides
                cut = truncated or err.pos >= len(text) - CUT_TOKEN
                more = idx + want < len(self.buf) or (grow and not self.eof)
                if cut and more and want < MAX_RECORD:
                    want *= 4
                    continue
                offset = self.base + idx + len(text[: err.pos].encode("utf-8", "surrogateescape"))
                reason = err.msg
                if truncated and want >= MAX_RECORD:
                    reason += f" (or a record longer than {MAX_RECORD >> 20} MB)"
                elif truncated and not more:
                    reason += " (the file ends here)"
                raise _Malformed(offset, reason) from None
            except _UNDECODABLE as err:  # valid JSON, but a value json cannot build
                why = str(err).split(";")[0]  # not the advice to raise Python's digit limit
                raise _Malformed(self.base + idx, f"json cannot decode a value ({why})") from None
            size = end if chunk.isascii() else len(text[:end].encode("utf-8", "surrogateescape"))
            return obj, idx + size

    def _row(self, obj, offset: int) -> bytes:
        if not isinstance(obj, dict):
            raise _Malformed(offset, f"expected an object, found {type(obj).__name__}")
        values = []
        for col in self.columns:
            value = obj.get(col)
            if not isinstance(value, str):
                what = "missing" if col not in obj else f"a {type(value).__name__}, not a string"
                raise _Malformed(offset, f"{col!r} is {what}")
            values.append(value)
        if len(obj) > len(self.columns):
            self.res.extra_keys += 1
        return self._csv_row(values, offset)

    def _slow_run(self, lim: int, most: int) -> int:
        """Convert up to `most` well-formed records at `pos` one at a time with json, from one
        decoded chunk (up to SLOW_CHUNK bytes, below `lim`); return how many. It stops at the
        first record that is incomplete in the chunk, the last of the array, or in any way
        doubtful, and leaves it to _slow_step, which reports what is wrong exactly."""
        buf, pos = self.buf, self.pos
        stop = min(lim, pos + SLOW_CHUNK)
        while stop > pos and buf[stop - 1] & 0xC0 == 0x80:  # not inside a character
            stop -= 1
        try:
            text = buf[pos:stop].decode("utf-8")
        except UnicodeDecodeError:
            return 0
        columns, k = self.columns, len(self.columns)
        rows, extra, at, size = [], 0, 0, len(text)
        decode, skip = _DECODER.raw_decode, _WS_TEXT.match
        while len(rows) < most:
            try:
                obj, after = decode(text, at)
            except _UNDECODABLE:
                break
            comma = skip(text, after).end()
            if comma >= size or text[comma] != "," or type(obj) is not dict:
                break
            values = [obj.get(c) for c in columns]
            if not all(type(v) is str for v in values):
                break
            try:
                row = _tsv_row(values)
            except UnicodeEncodeError:  # a lone surrogate escape
                break
            rows.append(row)
            extra += len(obj) > k
            at = skip(text, comma + 1).end()
        if rows:
            self.write(b"".join(rows))
            self.res.rows += len(rows)
            self.res.extra_keys += extra
            self.pos = pos + (at if text.isascii() else len(text[:at].encode("utf-8")))
            self._skip_ws()  # the chunk may end inside the whitespace before a record
        return len(rows)

    def _slow_step(self) -> None:
        """Convert the one record at `pos`, then move past its `,` (or the closing `]`)."""
        start = self.base + self.pos
        try:
            obj, end = self._decode_at(self.pos)
        except _Malformed as m:
            self._bad(m.offset, m.reason, start)
            # json may have read into the next records (`{"caption": "x", "url, {"caption"...`
            # is one key `url, {`): look for the next record from just past this one's `{`
            self._resync(self.pos + 1)
            return
        try:
            row = self._row(obj, start)
        except _Malformed as m:
            self._bad(m.offset, m.reason)
        else:
            self.write(row)
            self.res.rows += 1
        self.pos = end
        self._after_record()

    def _skip_ws(self) -> None:
        while True:
            self.pos = _WS_RUN.match(self.buf, self.pos).end()
            if self.pos < len(self.buf) or self.eof:
                return
            self._fill(SLOW_WINDOW)

    def _after_record(self) -> None:
        self._skip_ws()
        here = self.base + self.pos
        sep = self.buf[self.pos : self.pos + 1]
        if sep == b",":
            self.pos += 1
            self._skip_ws()
            if self.pos >= len(self.buf):
                self._bad(here, "the file ends after a `,` (no closing `]`)")
                self.res.closed = True
        elif sep == b"]":
            self.pos += 1
            self._skip_ws()
            if self.pos < len(self.buf):
                self._bad(self.base + self.pos, "extra data after the array's closing `]`")
                self._resync(self.pos)  # a stray `]`: the records after it are kept
            else:
                self.res.closed = True
        elif not sep:
            self._bad(here, "the file ends inside the array (no closing `]`)")
            self.res.closed = True
        else:
            self._bad(here, "expected `,` or `]` after a record")
            if sep != b"{" or not self._record_here():  # a missing `,` loses nothing
                self._resync(self.pos + 1)

    def _resync(self, idx: int) -> None:
        """Skip mode, after broken JSON: move `pos` to the first record start at or after
        buffer index `idx`, dropping the bytes before it. A record start is a `{` after a `,`
        (and whitespace) where _record_here finds a record; with none, the damage runs to the
        end of the file, which closes the array."""
        while True:
            m = _CANDIDATE.search(self.buf, idx)
            if m is None:
                if self.eof:
                    self.pos = len(self.buf)
                    self.res.closed = True  # the damage runs to the end of the file
                    return
                # the searched bytes need not stay buffered, but for a `,` and whitespace at
                # the end, which a `{` read next would make a candidate
                tail = len(self.buf.rstrip(b" \t\n\r"))
                comma = tail - 1 if tail > idx and self.buf[tail - 1] == 44 else len(self.buf)
                self.pos = max(self.pos, comma)
                self._fill(len(self.buf) - self.pos + BLOCK)
                idx = 0
                continue
            self.pos = m.end() - 1  # the candidate's `{`
            if self._record_here():
                return
            idx = self.pos + 1  # _record_here may have moved the buffer, not `pos`

    def _record_here(self) -> bool:
        """Does a record start at `pos`: an object with every column a string (decoded as
        _slow_step does, however long), followed by `,`, `]` or the end of the file?"""
        try:
            obj, end = self._decode_at(self.pos)
        except _Malformed:
            return False
        if not isinstance(obj, dict) or not all(isinstance(obj.get(c), str) for c in self.columns):
            return False
        while True:
            after = _WS_RUN.match(self.buf, end).end()
            if after < len(self.buf) or self.eof:
                return self.buf[after : after + 1] in (b",", b"]", b"")
            keep = self.pos
            self._fill(after - keep + SLOW_WINDOW)
            end = after - keep

    # ---- fast path: a block of records at once ------------------------------------------------

    def _fast(self, lim: int) -> bool:
        """Convert the run of records at `pos` below `lim` that share its layout; False if none.

        Each check below gives the number of leading records that pass it; the run ends at
        the first record that fails one, and the slow path takes that record.
        """
        pos = self.pos
        # Checking costs time in proportion to the bytes looked at, so when records the fast
        # path cannot take are frequent, look only a little further than the last run went.
        lim = min(lim, pos + self.scan)
        layout = self._layout_at(pos, lim)
        if layout is None:
            self._short_run()
            return False
        a = np.frombuffer(self.buf, np.uint8, count=lim - pos, offset=pos)
        q = np.flatnonzero(a == 34)  # quotes; those escaped inside strings are dropped next
        escaped = _escaped(a, q[a[q - 1] == 92].tolist())  # a[0] is the record's `{`
        if escaped:
            q = np.delete(q, np.searchsorted(q, escaped))
        per = layout.period
        n = len(q) // per
        if n == 0:
            self._short_run()
            return False
        qm = q[: per * n].reshape(n, per)
        words = np.ndarray((len(a) - 7,), dtype="<u8", buffer=a, strides=(1,))
        shaped = np.ones(n, dtype=bool)
        for t, pattern in layout.windows:
            shaped &= pattern.found(words, qm[:, t])
        n = n if shaped.all() else int(np.argmin(shaped))
        if n:
            last = np.ascontiguousarray(qm[:n, per - 1])  # closes each record's last value
            n = self._without_control_bytes(a, q, last, layout, n)
        if n:
            n = self._valid_utf8(a, last, layout, n)
        if n:
            special = self._backslash_records(last, n)
            if layout.k == 1:  # csv writes a lone empty field as `""`
                empty = np.flatnonzero(qm[:n, 3] - qm[:n, 2] == 1).tolist()
                special = sorted(set(special) | set(empty))
            rows, n = self._special_rows(pos, special, last, layout, n)
        if n == 0:
            self._short_run()
            return False
        self._emit(a, qm[:n], layout, rows)
        self.res.rows += n
        self.pos = pos + int(last[n - 1]) + len(layout.tail)
        ran = self.pos - pos
        if 2 * ran >= len(a):  # the run went about as far as it looked
            self.scan = min(2 * self.scan, BLOCK)
            self.backoff = 0
        elif n < SHORT_RUN:
            self._short_run()
        else:
            self.scan = max(2 * ran, MIN_SCAN)
            self.backoff = 0
        return True

    def _short_run(self) -> None:
        """The fast path found few records: look less far, and leave the next few records
        (more each time this repeats) to the slow path."""
        self.scan = MIN_SCAN
        self.backoff = min(2 * self.backoff or 4, MAX_BACKOFF)
        self.slow_due = self.backoff

    def _layout_at(self, pos: int, lim: int) -> _Layout | None:
        m = self.learn.match(self.buf, pos, lim)
        if m is None:
            return None
        pieces = tuple(bytes(g) for g in m.groups())
        layout = self.layouts.get(pieces)
        if layout is None:
            if len(self.layouts) > 64:
                self.layouts.clear()
            layout = self.layouts[pieces] = _Layout(pieces[0], list(pieces[1:-1]), pieces[-1])
        return layout

    def _without_control_bytes(self, a, q, last, layout: _Layout, n: int) -> int:
        """Leading records whose values hold no raw control byte (JSON forbids them)."""
        end = int(last[n - 1]) + len(layout.link)
        want = layout.ctrl_head + n * layout.ctrl  # those in the whitespace between tokens
        region = a[:end]
        if (region.min() >= 32) if want == 0 else (np.count_nonzero(region < 32) == want):
            return n
        where = np.flatnonzero(region < 32)
        gap = np.searchsorted(q, where, side="right") - 1  # the quote before each byte
        inside = where[(gap >= 0) & (gap % 4 == 2)]  # after a value's opening quote
        if inside.size == 0:
            return 0  # cannot happen with the layout checked; be safe
        return min(n, int(np.searchsorted(last, inside[0])))

    def _span(self, last, layout: _Layout, r: int) -> tuple[int, int]:
        """Record r's bytes, from its `{` to past its `}`, as offsets from `pos`."""
        start = 0 if r == 0 else int(last[r - 1]) + len(layout.tail)
        return start, int(last[r]) + layout.close

    def _valid_utf8(self, a, last, layout: _Layout, n: int) -> int:
        """Leading records that are valid UTF-8 (Arrow checks; Python finds the first bad one)."""
        end = int(last[n - 1]) + 1
        if a[:end].max() < 128:
            return n
        bounds = np.empty(n + 1, dtype=np.int32)
        bounds[0] = 0
        bounds[1:] = last[:n] + 1
        text = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(bounds), pa.py_buffer(a)])
        try:
            text.validate(full=True)
            return n
        except pa.ArrowInvalid:
            pass
        wide = np.flatnonzero(a[:end] >= 128)
        for r in np.unique(np.searchsorted(last[:n], wide)).tolist():
            start, stop = self._span(last, layout, r)
            try:
                self.buf[self.pos + start : self.pos + stop].decode("utf-8")
            except UnicodeDecodeError:
                return r
        return 0  # Arrow and Python disagree: leave it all to the slow path

    def _backslash_records(self, last, n: int) -> list[int]:
        """Records (below n) with a backslash; with the layout checked, it is in a value."""
        buf, pos = self.buf, self.pos
        end = pos + int(last[n - 1])
        found = []
        i = buf.find(b"\\", pos, end)
        while i != -1:
            r = int(last.searchsorted(i - pos))
            found.append(r)
            i = buf.find(b"\\", pos + int(last[r]), end)
        return found

    def _special_rows(self, pos, records, last, layout: _Layout, n: int):
        """TSV rows of `records` through json (one batch): ({record: row}, records left).

        The layout check guarantees each is an object with exactly the columns, as strings;
        the first record that fails (bad escape, lone surrogate...) ends the run there.
        """
        if not records:
            return {}, n
        bounds = np.empty(len(last) + 1, dtype=np.int64)
        bounds[0] = -len(layout.tail)
        bounds[1:] = last
        starts = (bounds[records] + len(layout.tail) + pos).tolist()
        stops = (last[records] + (layout.close + pos)).tolist()
        buf, texts = self.buf, []
        for r, start, stop in zip(records, starts, stops, strict=True):
            try:
                texts.append(buf[start:stop].decode("utf-8"))
            except UnicodeDecodeError:
                n = r
                break
        records = records[: len(texts)]
        try:
            objs = _DECODER.decode("[" + ",".join(texts) + "]")
        except ValueError:
            objs = []
            for r, text in zip(records, texts, strict=True):
                try:
                    objs.append(_DECODER.decode(text))
                except ValueError:
                    n = r
                    break
        rows = {}
        for r, obj in zip(records, objs, strict=False):
            values = [obj[c] for c in self.columns]
            try:
                rows[r] = _tsv_row(values)
            except UnicodeEncodeError:  # a lone surrogate escape such as "\ud83d"
                n = r
                break
        return rows, n

    def _emit(self, a, qm, layout: _Layout, special: dict[int, bytes]) -> None:
        """Write the rows of records `qm`: values gathered by Arrow, `special` rows spliced in."""
        n, k, per = len(qm), layout.k, layout.period
        a[qm[:, 3 : per - 1 : 4]] = 9  # closing quote of a value -> tab
        a[qm[:, per - 1]] = 13  # of the last value -> CR, and the `}` or space after it -> LF
        a[qm[:, per - 1] + 1] = 10
        # elements: gap, value 0 + tab, gap, value 1 + tab, ..., last value + CR LF, gap, ...
        bounds = np.empty(2 * k * n + 2, dtype=np.int32)
        bounds[0] = 0
        pairs = bounds[1:-1].reshape(n, k, 2)
        pairs[:, :, 0] = qm[:, 2::4] + 1
        pairs[:, :, 1] = qm[:, 3::4] + 1
        pairs[:, -1, 1] += 1
        bounds[-1] = bounds[-2]
        elements = pa.Array.from_buffers(
            pa.binary(), 2 * k * n + 1, [None, pa.py_buffer(bounds), pa.py_buffer(a)]
        )
        values = elements.take(_int32s(np.arange(1, 2 * k * n, 2, dtype=np.int32)))
        out = memoryview(values.buffers()[2])
        offsets = np.frombuffer(values.buffers()[1], np.int32, count=k * n + 1)
        if not special:
            self.write(out[: int(offsets[-1])])
            return
        offsets = offsets.tolist()
        pieces, done = [], 0
        for r, row in special.items():
            pieces.append(out[done : offsets[k * r]])
            pieces.append(row)
            done = offsets[k * (r + 1)]
        pieces.append(out[done : offsets[-1]])
        self.write(b"".join(pieces))


def _tsv_row(values: list[str]) -> bytes:
    """What csv.writer(delimiter="\\t") writes for `values`: a field is quoted, its quotes
    doubled, when it holds a tab, quote, CR or LF, and so is a lone empty field (test_laion
    checks this against csv for every code point). csv's per-character loop would cost more
    than decoding the JSON."""
    row = "\t".join(values)
    if row.count("\t") == len(values) - 1 and _QUOTE_OR_EOL.search(row) is None:
        if row or len(values) > 1:
            return (row + "\r\n").encode("utf-8")
        return b'""\r\n'
    fields = ['"' + v.replace('"', '""') + '"' if _NEEDS_QUOTES.search(v) else v for v in values]
    return ("\t".join(fields) + "\r\n").encode("utf-8")


def _int32s(values) -> "pa.Array":
    """An Arrow view of an int32 numpy array (`pa.array` would import pandas: half a second)."""
    return pa.Array.from_buffers(pa.int32(), len(values), [None, pa.py_buffer(values)])


def _escaped(a, candidates: list[int]) -> list[int]:
    """Those of the quotes at `candidates` (each after a backslash) that a backslash escapes."""
    found = []
    for p in candidates:
        j = p - 1
        while j >= 0 and a[j] == 92:
            j -= 1
        if (p - 1 - j) % 2:
            found.append(p)
    return found


def _probe(buf: bytes, idx: int, columns: tuple[str, ...]) -> bool:
    """Does a record with all `columns` as strings start at `idx`, followed by `,` or `]`?"""
    text = buf[idx : idx + SLOW_WINDOW].decode("utf-8", "surrogateescape")
    try:
        obj, end = _DECODER.raw_decode(text)
    except _UNDECODABLE:
        return False
    if not isinstance(obj, dict) or not all(isinstance(obj.get(c), str) for c in columns):
        return False
    rest = text[end : end + 4096].lstrip(" \t\n\r")
    return rest[:1] in (",", "]")


# ---- splitting the file --------------------------------------------------------------------


def _array_start(f, src: Path, size: int) -> int | None:
    """Offset of the first item of the array, or None if it is empty."""
    head = f.read(SLOW_WINDOW)
    i = 3 if head.startswith(_BOM) else 0
    i = _WS_RUN.match(head, i).end()
    if head[i : i + 1] != b"[":
        got = head[i : i + 20].decode("utf-8", "backslashreplace")
        raise ConversionError(
            f"{src}: expected a JSON array (`[`) at byte {i}, found {got!r}; "
            "is this BLIP's laion_synthetic_filtered_large.json?"
        )
    j = _WS_RUN.match(head, i + 1).end()
    if head[j : j + 1] == b"]":
        k = _WS_RUN.match(head, j + 1).end()
        if k < len(head) or size > len(head):
            raise ConversionError(f"{src}: extra data after the empty array at byte {k}")
        return None
    return j


def _find_start(f, nominal: int, limit: int, columns: tuple[str, ...]) -> int | None:
    """First verified record start in [nominal, limit), or None."""
    at = nominal
    while at < limit:
        f.seek(at)
        window = f.read(1 << 20)
        if not window:
            return None
        for m in _CANDIDATE.finditer(window):
            cand = m.end() - 1
            if at + cand >= limit:
                return None
            if _probe(window, cand, columns):
                # and the record after it, too
                text = window[cand : cand + SLOW_WINDOW].decode("utf-8", "surrogateescape")
                try:
                    _, end = _DECODER.raw_decode(text)
                except _UNDECODABLE:
                    continue
                rest = text[end:].lstrip(" \t\n\r")
                if rest[:1] == "]":
                    return at + cand
                nxt = rest[1:].lstrip(" \t\n\r")
                try:
                    obj, _ = _DECODER.raw_decode(nxt)
                except _UNDECODABLE:
                    if len(text) < SLOW_WINDOW:
                        continue
                    return at + cand  # the next record runs past the window; trust one
                if isinstance(obj, dict):
                    return at + cand
        if len(window) < 1 << 20:  # the file ends in this window
            return None
        at += len(window) - 64  # a candidate may straddle the windows
    return None


def _run_task(src: str, start: int, end: int, size: int, columns, on_error, part: str | None):
    """Worker: convert the records starting in [start, end) into the file `part`."""
    conv = _Converter(Path(src), tuple(columns), on_error)
    with open(src, "rb") as f, open(part, "wb", buffering=1 << 20) as out:
        res = conv.run(f, start, end, size, out.write)
    res.part = part
    return res


def convert_json_to_tsv(
    src: str | Path,
    dest: str | Path,
    *,
    columns: tuple[str, ...] = COLUMNS,
    on_error: str = "fail",
    workers: int = 1,
    task_bytes: int = TASK_BYTES,
) -> dict:
    """Write `dest` (TSV, atomically) from `src` (BLIP JSON array); return a report.

    The report has `rows` (written), `skipped` (malformed items dropped with on_error="skip",
    a stretch of broken JSON counting once: see the module docstring), `extra_keys` (records
    with keys beyond `columns`, ignored), `bytes` (input size), `seconds`, `workers` and
    `skip_reasons` (the first few). `task_bytes` sets how much input one worker task takes
    (tests make it small to exercise the cuts).
    """
    if on_error not in ("fail", "skip"):
        raise ValueError(f"on_error must be 'fail' or 'skip', not {on_error!r}")
    src, dest = Path(src), Path(dest)
    columns = tuple(columns)
    t0 = time.monotonic()
    size = src.stat().st_size
    conv = _Converter(src, columns, on_error)
    total = _Result(start=0)
    with (
        staged(dest) as tmp,
        open(tmp, "wb", buffering=1 << 20) as out,
        open(src, "rb") as f,
        bar(size, f"json->tsv {src.name}", unit="B", unit_scale=True) as progress,
    ):
        out.write(conv.header())
        first = _array_start(f, src, size)
        if first is not None:
            if workers <= 1 or size < 2 * task_bytes:
                total = conv.run(f, first, size, size, out.write, progress.update)
            else:
                job = _Job(src, size, columns, on_error, workers, task_bytes, conv, f, progress)
                total = _parallel(job, first, tmp, out)
            if not total.closed:
                raise ConversionError(f"{src}: the array is not closed by `]` before the end")
        else:
            progress.update(size)
    report = {
        "rows": total.rows,
        "skipped": total.skipped,
        "extra_keys": total.extra_keys,
        "bytes": size,
        "seconds": round(time.monotonic() - t0, 3),
        "workers": workers,
        "skip_reasons": total.reasons,
    }
    log.info(
        "%s -> %s: %d rows, %d skipped, %.1f MB in %.1f s",
        src,
        dest,
        total.rows,
        total.skipped,
        size / 1e6,
        report["seconds"],
    )
    return report


@dataclass
class _Job:
    src: Path
    size: int
    columns: tuple[str, ...]
    on_error: str
    workers: int
    task_bytes: int
    conv: _Converter
    f: io.BufferedReader
    progress: object


def _parallel(job: _Job, first: int, tmp: Path, out) -> _Result:
    """Convert ranges in worker processes; append their part files to `out` in order."""
    src, size, columns, on_error = job.src, job.size, job.columns, job.on_error
    workers, task_bytes, conv, f, progress = (
        job.workers,
        job.task_bytes,
        job.conv,
        job.f,
        job.progress,
    )
    cuts = [first]
    nominal = first + task_bytes
    while nominal < size:
        s = _find_start(f, nominal, size, columns)
        if s is None:
            break
        if s > cuts[-1]:
            cuts.append(s)
        nominal = max(s, nominal) + task_bytes
    ranges = list(zip(cuts, cuts[1:] + [size], strict=True))
    total = _Result(start=first)
    expected = first
    ctx = get_context("fork")
    parts: list[str] = []
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            pending: list[tuple[int, int, Future]] = []
            nxt = 0
            for i in range(len(ranges)):
                while nxt < len(ranges) and len(pending) < workers + 1:
                    s, e = ranges[nxt]
                    part = f"{tmp}.part{nxt}"
                    parts.append(part)
                    fut = pool.submit(_run_task, str(src), s, e, size, columns, on_error, part)
                    pending.append((s, e, fut))
                    nxt += 1
                s, e, fut = pending.pop(0)
                res = fut.result()
                if res.start == expected:
                    out.flush()
                    _append(res.part, out)
                else:  # the previous range did not end where this one starts: redo it here
                    res = conv.run(f, expected, e, size, out.write) if expected < e else None
                os.unlink(parts[i])
                if res is not None:
                    _merge(total, res)
                    expected = res.stop
                progress.update(e - s)
    finally:
        for part in parts:
            if os.path.exists(part):
                os.unlink(part)
    return total


def _append(part: str, out) -> None:
    with open(part, "rb") as src:
        n = os.fstat(src.fileno()).st_size
        done = 0
        while done < n:
            sent = os.copy_file_range(src.fileno(), out.fileno(), n - done)
            if sent <= 0:
                break
            done += sent
        if done < n:
            src.seek(done)
            out.write(src.read())


def _merge(total: _Result, res: _Result) -> None:
    total.rows += res.rows
    total.skipped += res.skipped
    total.extra_keys += res.extra_keys
    total.closed = total.closed or res.closed
    total.stop = res.stop
    for r in res.reasons:
        if len(total.reasons) < REASONS_KEPT:
            total.reasons.append(r)
