"""BLIP's `laion_synthetic_filtered_large.json` (one 20 GB JSON array) -> MiniGPT-4's TSV.

MiniGPT-4's `convert_laion.py` loads the whole array (`json.load`), takes the header from the
first object's keys and writes every object's values, in that object's own key order, with
`csv.writer(f, delimiter="\\t")`: QUOTE_MINIMAL, `""` for a quote, CRLF line ends, UTF-8 text.
`convert_json_to_tsv` writes the same bytes wherever the seed is right (every object has exactly
the keys `caption`, `url` in that order), streaming in bounded memory, and differs where the
seed is wrong:

- the header is the fixed `columns`; each row holds those keys' values in that order, whatever
  the object's key order (the seed shifts columns); other keys are ignored and counted;
- an item that is not an object, lacks a column, has a non-string value, is broken JSON, or
  holds text that is not valid Unicode (invalid UTF-8 bytes in the file, or a lone surrogate
  escape such as `"\\ud83d"`, which the seed's UTF-8 writer cannot encode) is malformed:
  `on_error="fail"` raises ConversionError naming the file, the byte offset and an excerpt;
  `on_error="skip"` drops it, counts it and keeps the first few reasons. After broken JSON the
  scan resumes at the next `, {` that starts a decodable record, so one skip can stand for a
  stretch of damaged records;
- a UTF-8 byte-order mark before the array is tolerated (the seed's `json.load` rejects it);
  an empty array gives the header alone (the seed fails on `data[0]`).

Speed: a record whose strings hold no backslash is converted without building any Python
object for it: numpy finds the quotes of a multi-megabyte block, checks every record's
structural bytes (keys, colons, commas, braces and their whitespace) against the layout learnt
from the block's first record, and gathers the values into TSV rows (such values need no
quoting: JSON forbids raw quotes and control characters in strings). Any other record (escapes,
another key order or layout, anything suspicious) goes through `json`'s C decoder and
`csv.writer`, exactly like the seed. With `workers > 1` the file is cut into byte ranges at
verified record starts; worker processes convert ranges into part files which are appended in
order, and a range whose start the previous range's scan does not land on is converted again
from where that scan ended, so a wrong cut can cost time but never a row.
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

try:
    import numpy as np
except ImportError:  # pragma: no cover - numpy comes with img2dataset; without it all is slow
    np = None

log = logging.getLogger(__name__)

COLUMNS = ("caption", "url")
BLOCK = 4 << 20  # bytes scanned per fast step
TASK_BYTES = 64 << 20  # input bytes per worker task
SLOW_WINDOW = 64 << 10  # look-ahead for the slow path and for probing cut points
FIRST_GUESS = 2048  # first window the slow path decodes a record in (grown x4 as needed)
MAX_RECORD = 64 << 20  # a record longer than this is treated as malformed
MIN_FAST = 2048  # ranges shorter than this are not worth the numpy set-up
REASONS_KEPT = 5
EXCERPT = 60

_WS = rb"[ \t\n\r]*"
_WS_RUN = re.compile(_WS)
_VALUE = rb'[^"\\\x00-\x1f]*'
_CANDIDATE = re.compile(rb"," + _WS + rb"\{")
_DECODER = json.JSONDecoder()
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
    """The structural bytes of one record, learnt from a record, as numpy templates.

    Quote t of a record (t = 0 .. 4k-1 for k columns) opens or closes a key or value; the
    piece after quote t is key j (t = 4j), the colon run (4j+1), value j (4j+2), and the comma
    run to the next key (4j+3, j < k-1) or, for the last value, the run `} , {` to the next
    record's first key.
    """

    def __init__(self, keys: list[bytes], seps: list[bytes]):
        k = len(keys)
        self.k = k
        self.period = 4 * k
        pieces: dict[int, bytes] = {}
        for j in range(k):
            pieces[4 * j] = keys[j]
            pieces[4 * j + 1] = seps[2 * j]
            pieces[4 * j + 3] = seps[2 * j + 1]
        self.struct_t = np.array(sorted(pieces), dtype=np.intp)
        self.struct_len = np.array([len(pieces[t]) + 1 for t in sorted(pieces)], dtype=np.int64)
        cols, offs, tmpl = [], [], []
        for t in sorted(pieces):
            for d, byte in enumerate(pieces[t]):
                cols.append(t)
                offs.append(d + 1)
                tmpl.append(byte)
        self.byte_t = np.array(cols, dtype=np.intp)
        self.byte_off = np.array(offs, dtype=np.int64)
        self.template = np.array(tmpl, dtype=np.uint8)
        self.ctrl = sum(1 for byte in tmpl if byte < 32)
        last = pieces[4 * k - 1]
        self.last_len = len(last)
        self.close = last.index(b"}") + 1  # just past the record's `}`
        self.brace = last.rindex(b"{")  # offset of the next `{` after the last value's quote
        self.value_t = np.array([4 * j + 2 for j in range(k)], dtype=np.intp)
        pattern = [False, True] * k
        self.run_pattern = np.array(pattern, dtype=bool)


class _Converter:
    """Scans [start, end) of the array and writes TSV rows for the records starting there."""

    def __init__(self, src: Path, columns: tuple[str, ...], on_error: str):
        self.src = src
        self.columns = columns
        self.on_error = on_error
        self.keys = [json.dumps(c)[1:-1].encode() for c in columns]
        simple = all(re.fullmatch(rb"[A-Za-z0-9_]+", key) for key in self.keys)
        self.fast_ok = np is not None and simple
        parts = [rb"\{(" + _WS + rb')"']
        for j, key in enumerate(self.keys):
            parts.append(re.escape(key) + rb'"(' + _WS + rb":" + _WS + rb')"' + _VALUE + rb'"(')
            if j < len(self.keys) - 1:
                parts.append(_WS + rb"," + _WS + rb')"')
            else:
                parts.append(_WS + rb"\}" + _WS + rb"," + _WS + rb"\{" + _WS + rb')"')
        self.learn = re.compile(b"".join(parts))
        self.layouts: dict[tuple[bytes, ...], _Layout] = {}
        self.sio = io.StringIO()
        self.csv = csv.writer(self.sio, delimiter="\t")

    # ---- rows -------------------------------------------------------------------------------

    def header(self) -> bytes:
        return self._csv_row(list(self.columns), 0)

    def _csv_row(self, values: list, offset: int) -> bytes:
        self.sio.seek(0)
        self.sio.truncate()
        self.csv.writerow(values)
        try:
            return self.sio.getvalue().encode("utf-8")
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
        self.buf = b""
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
            if not (self.fast_ok and lim - self.pos >= MIN_FAST and self._fast(lim)):
                self._slow_step()
            if progress is not None:
                now = self.base + self.pos
                progress(now - done_abs)
                done_abs = now
        res.stop = self.base + self.pos
        return res

    def _fill(self, want: int) -> None:
        """Drop consumed bytes and read until `want` unconsumed bytes are buffered (or EOF)."""
        if self.pos:
            self.buf = self.buf[self.pos :]
            self.base += self.pos
            self.pos = 0
        chunks = [self.buf]
        have = len(self.buf)
        while have < want and not self.eof:
            ahead = self.end - (self.base + have)
            n = max(want - have, min(BLOCK, ahead + SLOW_WINDOW) if ahead > 0 else SLOW_WINDOW)
            chunk = self.f.read(n)
            if not chunk:
                self.eof = True
                break
            chunks.append(chunk)
            have += len(chunk)
        self.buf = b"".join(chunks)

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
                more = idx + want < len(self.buf) or (grow and not self.eof)
                if truncated and more and want < MAX_RECORD:
                    want *= 4
                    continue
                offset = self.base + idx + len(text[: err.pos].encode("utf-8", "surrogateescape"))
                reason = err.msg
                if truncated and want >= MAX_RECORD:
                    reason += f" (or a record longer than {MAX_RECORD >> 20} MB)"
                elif truncated and not more:
                    reason += " (the file ends here)"
                raise _Malformed(offset, reason) from None
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

    def _slow_step(self) -> None:
        """Convert the one record at `pos`, then move past its `,` (or the closing `]`)."""
        start = self.base + self.pos
        try:
            obj, end = self._decode_at(self.pos)
        except _Malformed as m:
            self._bad(m.offset, m.reason, start)
            self._resync(m.offset)
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
            self.pos = len(self.buf)
            self.res.closed = True
        elif not sep:
            self._bad(here, "the file ends inside the array (no closing `]`)")
            self.res.closed = True
        else:
            self._bad(here, "expected `,` or `]` after a record")
            self._resync(here)

    def _resync(self, offset: int) -> None:
        """After broken JSON (skip mode): continue at the next `, {` that starts a record."""
        idx = max(offset - self.base, self.pos + 1)
        while True:
            m = _CANDIDATE.search(self.buf, idx)
            if m is None:
                if self.eof:
                    self.pos = len(self.buf)
                    self.res.closed = True  # the damage runs to the end of the file
                    return
                old = len(self.buf)
                self.pos = max(self.pos, old - 64)  # the damaged bytes need not stay buffered
                keep = self.pos
                self._fill(old - keep + BLOCK)
                idx = max(old - keep - 64, 0)
                continue
            cand = m.end() - 1
            if self.base + cand >= self.end:
                self.pos = cand
                return
            if _probe(self.buf, cand, self.columns):
                self.pos = cand
                return
            idx = m.start() + 1

    # ---- fast path: many records at once with numpy ------------------------------------------

    def _fast(self, lim: int) -> bool:
        """Convert the run of simple records at `pos` below `lim`; False if there are none."""
        buf, pos = self.buf, self.pos
        m = self.learn.match(buf, pos, lim)
        if m is None:
            return False
        head = m.group(1)
        seps = m.groups()[1:]
        layout = self.layouts.get(seps)
        if layout is None:
            if len(self.layouts) > 64:
                self.layouts.clear()
            layout = self.layouts[seps] = _Layout(self.keys, list(seps))
        per = layout.period
        a = np.frombuffer(buf, np.uint8, count=lim - pos, offset=pos)
        q = np.flatnonzero(a == 34)
        first = 1 + len(head)  # the first quote
        if q.size == 0 or q[0] != first:
            return False
        if buf.find(b"\\", pos, lim) != -1:
            q = _drop_escaped_quotes(a, q)
        n = (q.size - 1) // per
        if n <= 0:
            return False
        q = q[: per * n + 1]
        qm = q[: per * n].reshape(n, per)
        # structure: piece lengths, then piece bytes
        d = np.diff(q).reshape(n, per)
        ok = (d[:, layout.struct_t] == layout.struct_len).all(axis=1)
        n = _first_false(ok, n)
        if n == 0:
            return False
        qm = qm[:n]
        got = a[qm[:, layout.byte_t] + layout.byte_off]
        n = _first_false((got == layout.template).all(axis=1), n)
        if n == 0:
            return False
        qm = qm[:n]
        span = int(qm[n - 1, per - 1]) + 1 + layout.brace  # next record's `{`, relative
        special = self._special_records(a, qm, layout, len(head))
        # rows: keep each value and its closing quote (-> tab), the last value's quote and the
        # byte after it (-> CR LF)
        starts = qm[:, layout.value_t] + 1
        stops = qm[:, layout.value_t + 1] + 1
        stops[:, -1] += 1
        bounds = np.empty((n, 2 * layout.k), dtype=np.int64)
        bounds[:, 0::2] = starts
        bounds[:, 1::2] = stops
        bounds = bounds.ravel()
        runs = np.diff(bounds, prepend=0)
        mask = np.repeat(np.tile(layout.run_pattern, n), runs)
        out = a[: bounds[-1]][mask]
        ends = (np.cumsum(runs[1::2]) - 1).reshape(n, layout.k)
        out[ends[:, :-1]] = 9
        out[ends[:, -1] - 1] = 13
        out[ends[:, -1]] = 10
        row_end = ends[:, -1] + 1
        data = out.tobytes()
        if not data.isascii():
            special |= _bad_utf8_rows(out, data, row_end)
        if special:
            self._emit_with_specials(data, row_end, sorted(special), qm, layout, n)
        else:
            self.write(data)
            self.res.rows += n
        self.pos = pos + span
        return True

    def _special_records(self, a, qm, layout: _Layout, head_len: int) -> set[int]:
        """Records whose values hold a backslash or a raw control character, or (with one
        column) are empty, which csv writes as `""`."""
        special: set[int] = set()
        body = a[: int(qm[-1, -1]) + 1 + layout.last_len]  # up to the next record's first quote
        ctrl = int(np.count_nonzero(body < 32))
        head = self.buf[self.pos + 1 : self.pos + 1 + head_len]
        expect = qm.shape[0] * layout.ctrl + sum(1 for c in head if c < 32)
        flat = qm.ravel()
        for cond in (
            (body == 92) if self.buf.find(b"\\", self.pos, self.pos + len(body)) != -1 else None,
            (body < 32) if ctrl != expect else None,
        ):
            if cond is None:
                continue
            where = np.flatnonzero(cond)
            piece = np.searchsorted(flat, where) - 1
            in_value = (piece % layout.period) % 4 == 2
            special.update((piece[in_value] // layout.period).tolist())
        if layout.k == 1:
            special.update(np.flatnonzero(qm[:, 3] - qm[:, 2] == 1).tolist())
        return special

    def _emit_with_specials(self, data, row_end, special, qm, layout: _Layout, n: int) -> None:
        view = memoryview(data)
        done = 0
        good = n
        for r in special:
            row_start = int(row_end[r - 1]) if r else 0
            if row_start > done:
                self.write(view[done:row_start])
            start = 0 if r == 0 else int(qm[r - 1, layout.period - 1]) + 1 + layout.brace
            idx = self.pos + start
            stop = self.pos + int(qm[r, layout.period - 1]) + 1 + layout.close
            try:
                obj, _ = self._decode_at(idx, grow=False, want=stop - idx)
                row = self._row(obj, self.base + idx)
            except _Malformed as m:
                self._bad(m.offset, m.reason, self.base + idx)
                good -= 1
            else:
                self.write(row)
            done = int(row_end[r])
        if done < len(data):
            self.write(view[done:])
        self.res.rows += good


def _first_false(ok, n: int) -> int:
    if ok.all():
        return n
    return int(np.argmin(ok))


def _drop_escaped_quotes(a, q):
    """Quotes preceded by an odd run of backslashes are inside strings: drop them."""
    after = np.flatnonzero(a == 92) + 1
    after = after[after < a.size]
    cand = after[a[after] == 34]
    drop = []
    for rel in cand.tolist():
        i = rel - 1
        while i >= 0 and a[i] == 92:
            i -= 1
        if (rel - 1 - i) % 2:
            drop.append(rel)
    if drop:
        q = np.delete(q, np.searchsorted(q, drop))
    return q


def _bad_utf8_rows(out, data: bytes, row_end) -> set[int]:
    """Rows of `data` (ending at `row_end`) that are not valid UTF-8."""
    rows = np.unique(np.searchsorted(row_end, np.flatnonzero(out >= 128), side="right"))
    bad: set[int] = set()
    for r in rows.tolist():
        start = int(row_end[r - 1]) if r else 0
        try:
            data[start : int(row_end[r])].decode("utf-8")
        except UnicodeDecodeError:
            bad.add(r)
    return bad


def _probe(buf: bytes, idx: int, columns: tuple[str, ...]) -> bool:
    """Does a record with all `columns` as strings start at `idx`, followed by `,` or `]`?"""
    text = buf[idx : idx + SLOW_WINDOW].decode("utf-8", "surrogateescape")
    try:
        obj, end = _DECODER.raw_decode(text)
    except json.JSONDecodeError:
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
                except json.JSONDecodeError:
                    continue
                rest = text[end:].lstrip(" \t\n\r")
                if rest[:1] == "]":
                    return at + cand
                nxt = rest[1:].lstrip(" \t\n\r")
                try:
                    obj, _ = _DECODER.raw_decode(nxt)
                except json.JSONDecodeError:
                    if len(text) < SLOW_WINDOW:
                        continue
                    return at + cand  # the next record runs past the window; trust one
                if isinstance(obj, dict):
                    return at + cand
        at += len(window) - 64
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

    The report has `rows` (written), `skipped` (malformed records or stretches dropped with
    on_error="skip"), `extra_keys` (records with keys beyond `columns`, ignored), `bytes`
    (input size), `seconds`, `workers` and `skip_reasons` (the first few). `task_bytes` sets
    how much input one worker task takes (tests make it small to exercise the cuts).
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
