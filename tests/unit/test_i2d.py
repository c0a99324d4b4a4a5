"""img2dataset in parts (vlprep.i2d) against the stand-in image host on 127.0.0.1.

The slow tests run the real img2dataset: once over a whole 1,000-row list, and in 5 parts of
200 rows (2 at a time), and check that the parts give the very same shards and keys.
"""

import csv
import hashlib
import io
import json
import os
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webdataset as wds

from standin.imagehost import FAILING, ImageHost, caption_for, make_url_list
from vlprep import i2d
from vlprep.errors import ConversionError, VlprepError

ROWS, PER_PART, PER_SHARD = 1000, 200, 100
MIX = {"ok": 0.6, "404": 0.08, "timeout": 0.04, "truncated": 0.06, "corrupt": 0.08,
       "redirect": 0.07, "slow": 0.07}  # fmt: skip
I2D_ARGS = {
    "input_format": "tsv",
    "url_col": "url",
    "caption_col": "caption",
    "output_format": "webdataset",
    "image_size": 64,
    "resize_mode": "keep_ratio",
    "number_sample_per_shard": PER_SHARD,
    "timeout": 1,
    "retries": 0,
}


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("VLPREP_PROGRESS", "0")
    monkeypatch.setenv("NO_ALBUMENTATIONS_UPDATE", "1")
    monkeypatch.setenv("WANDB_MODE", "disabled")


# ------------------------------------------------------------------- fast: URL lists


def test_tsv_slices_copy_records_byte_for_byte(tmp_path):
    src = tmp_path / "urls.tsv"
    make_url_list(src, "http://127.0.0.1:9/", 120)
    raw = src.read_bytes()
    assert (
        raw.startswith(b"caption\turl\r\n") and b'"' in raw and b"\n" in raw.replace(b"\r\n", b"")
    )
    plan = i2d.plan_parts(src, "tsv", 50)
    assert (plan["rows"], plan["parts"]) == (120, 3)
    total = []
    for k in range(plan["parts"] + 1):  # one more part than there are rows for: empty
        start, stop, _ = i2d.part_bounds(k, 50, 25)
        seeked, scanned = tmp_path / f"a{k}.tsv", tmp_path / f"b{k}.tsv"
        n = i2d.slice_rows(src, "tsv", start, stop, seeked, plan=plan)
        assert i2d.slice_rows(src, "tsv", start, stop, scanned) == n
        assert seeked.read_bytes() == scanned.read_bytes()
        rows = list(csv.reader(io.StringIO(seeked.read_bytes().decode()), delimiter="\t"))
        assert rows[0] == ["caption", "url"] and len(rows) == n + 1
        total += rows[1:]
    assert n == 0
    assert [r[0] for r in total] == [caption_for(i) for i in range(120)]
    assert i2d.count_rows(src, "tsv") == 120


def test_parquet_directory_is_one_list(tmp_path):
    src = tmp_path / "meta"
    make_url_list(src, "http://127.0.0.1:9/", 1000, fmt="parquet", files=3, row_group_size=64)
    whole = pa.concat_tables(pq.read_table(p) for p in sorted(src.glob("*.parquet")))
    assert i2d.count_rows(src, "parquet") == 1000
    for start, stop in [(0, 200), (200, 400), (320, 700), (900, 1100), (1200, 1400)]:
        dest = tmp_path / f"p{start}.parquet"
        n = i2d.slice_rows(src, "parquet", start, stop, dest)
        got = pq.read_table(dest)
        assert n == got.num_rows == max(0, min(stop, 1000) - start)
        assert got.schema.equals(whole.schema)
        assert got.to_pylist() == whole.slice(start, max(0, n)).to_pylist()
    assert set(whole.column_names) == {"URL", "TEXT", "all_captions", "all_similarities"}


def test_part_bounds_need_whole_shards():
    assert i2d.part_bounds(3, 200, 100) == (600, 800, 6)
    with pytest.raises(ConversionError, match="multiple"):
        i2d.part_bounds(0, 250, 100)


def _stats(path: Path, count, ok, reasons, start=100.0, dur=2.0):
    failed = sum(reasons.values())
    path.write_text(json.dumps({
        "count": count, "successes": ok, "failed_to_download": failed, "failed_to_resize": 0,
        "duration": dur, "start_time": start, "end_time": start + dur,
        "status_dict": {"success": ok, **reasons},
    }))  # fmt: skip
    return path


def test_summarize_and_floor(tmp_path):
    files = [
        _stats(tmp_path / "00000_stats.json", 10, 6, {"timed out": 3, "IncompleteRead(4 bytes)": 1}),
        _stats(tmp_path / "00001_stats.json", 10, 5, {"timed out": 4, "IncompleteRead(7 bytes)": 1},
               start=101.0),
    ]  # fmt: skip
    report = i2d.summarize(files)
    assert report["attempted"] == 20 and report["succeeded"] == 11
    assert report["failed_by_reason"]["timed out"] == 7
    assert report["failed_by_kind"]["IncompleteRead(N bytes)"] == 2
    assert report["duration"] == pytest.approx(3.0)
    assert report["images_per_s"] == pytest.approx(20 / 3)
    assert i2d.check_success(report, 0.5, "demo") == pytest.approx(0.55)
    with pytest.raises(VlprepError, match=r"(?s)demo: ONLY 11 OF 20 .*timed out"):
        i2d.check_success(report, 0.6, "demo")
    with pytest.raises(VlprepError, match="no URLs"):
        i2d.check_success(i2d.summarize([]), 0.5, "demo")


def test_write_retry_list_keeps_extras_and_first_key(tmp_path):
    shard = tmp_path / "00003.parquet"
    pq.write_table(pa.table({
        "all_captions": [["a"], ["b"], ["c"]], "caption": ["a", "b", "c"],
        "url": ["u0", "u1", "u2"], "key": ["0300", "0301", "0302"],
        "status": ["success", "failed_to_download", "failed_to_resize"],
        "error_message": [None, "timed out", "Image decoding error"],
        "width": [1, None, None], "sha256": ["x", None, None],
    }), shard)  # fmt: skip
    listed = i2d.write_retry_list([shard], tmp_path / "retry.urls.parquet")
    assert listed["rows"] == 2 and listed["extras"] == ["all_captions"]
    rows = pq.read_table(tmp_path / "retry.urls.parquet").to_pylist()
    assert rows == [
        {"url": "u1", "caption": "b", "all_captions": ["b"], "orig_key": "0301"},
        {"url": "u2", "caption": "c", "all_captions": ["c"], "orig_key": "0302"},
    ]


# ------------------------------------------------------------------ fast: image host


def _get(url: str, timeout: float = 0.5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, b""
    except Exception as err:  # noqa: BLE001 - the kind of failure is what is checked
        return type(err).__name__, b""


def test_image_host_behaviours_and_recovery():
    mix = {k: 1.0 for k in ("ok", "404", "timeout", "truncated", "corrupt", "redirect", "slow")}
    with ImageHost(seed=3, mix=mix, hang_seconds=1.0, slow_seconds=0.2) as host:
        by_kind: dict[str, str] = {}
        for i in range(200):
            by_kind.setdefault(host.behaviour(f"img/{i:07d}.jpg"), f"img/{i:07d}.jpg")
        assert set(by_kind) == set(mix)
        results = {kind: _get(host.url + path) for kind, path in by_kind.items()}
        assert results["404"][0] == 404
        assert results["timeout"][0] in ("TimeoutError", "URLError")
        assert results["truncated"][0] == "IncompleteRead"
        ok_body = results["ok"][1]
        assert results["ok"][0] == 200 and ok_body[:2] == b"\xff\xd8"
        assert results["redirect"][0] == 200 and results["slow"][0] == 200
        assert results["corrupt"][0] == 200 and results["corrupt"][1][:2] == b"\xff\xd8"
        assert _get(host.url + by_kind["ok"])[1] == ok_body  # deterministic and cached
        assert ok_body != results["slow"][1]  # distinct per URL
        host.recover()
        for kind in FAILING:
            status, body = _get(host.url + by_kind[kind])
            assert status == 200 and body[:2] == b"\xff\xd8", kind
        assert host.stats()["redirected"] == 1


def test_image_host_cli(tmp_path):
    import subprocess
    import sys
    import time

    port_file = tmp_path / "port"
    env = {**os.environ, "PYTHONPATH": str(Path(i2d.__file__).parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "standin.imagehost", "--port", "0",
         "--port-file", str(port_file), "--seed", "1"],
        env=env, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            if port_file.exists():
                break
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port_file.read_text().strip()}/"
        assert _get(url + "img/0000001.png")[1][:4] == b"\x89PNG"
    finally:
        proc.terminate()
        proc.wait(10)


# ------------------------------------------------ slow: the real img2dataset, in parts


def _tar_samples(tar: Path) -> list[tuple[str, str, str, str]]:
    ds = wds.WebDataset(str(tar), shardshuffle=False)
    return [
        (s["__key__"], s["txt"].decode(), json.loads(s["json"])["caption"],
         hashlib.sha256(s["jpg"]).hexdigest())
        for s in ds
    ]  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One whole img2dataset run and 6 parts (the 6th past the end) over the same list."""
    tmp = tmp_path_factory.mktemp("i2d")
    host = ImageHost(seed=7, mix=MIX, hang_seconds=3.0).start()
    urls = tmp / "urls.tsv"
    make_url_list(urls, host.url, ROWS)
    whole = tmp / "whole"
    parts_dir = tmp / "parts"
    plan = i2d.plan_parts(urls, "tsv", PER_PART)

    def part(k: int) -> dict:
        start, stop, offset = i2d.part_bounds(k, PER_PART, PER_SHARD)
        part_list = tmp / "lists" / f"part-{k:05d}.tsv"
        offered = i2d.slice_rows(urls, "tsv", start, stop, part_list, plan=plan)
        report = i2d.run_part(part_list, parts_dir / f"{k:05d}", shard_offset=offset,
                              i2d_args=I2D_ARGS, processes=1, threads=16,
                              log_file=tmp / "logs" / f"part-{k}.log")  # fmt: skip
        return report | {"offered": offered}

    try:
        reference = i2d.run_whole(urls, whole, i2d_args=I2D_ARGS, processes=1, threads=16,
                                  log_file=tmp / "logs" / "whole.log")  # fmt: skip
        with ThreadPoolExecutor(2) as pool:
            reports = list(pool.map(part, range(plan["parts"] + 1)))
        yield {"host": host, "tmp": tmp, "urls": urls, "whole": whole, "reference": reference,
               "parts": parts_dir, "reports": reports, "plan": plan}  # fmt: skip
    finally:
        host.stop()


def _shard_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.slow
def test_parts_equal_one_whole_run(runs):
    whole, parts = runs["whole"], runs["parts"]
    part_dirs = sorted(parts.iterdir())
    assert [d.name for d in part_dirs] == [f"{k:05d}" for k in range(6)]
    names = sorted(n for d in part_dirs for n in _shard_files(d))
    assert names == _shard_files(whole)  # no placeholder, no _tmp left behind
    assert names[:3] == ["00000.parquet", "00000.tar", "00000_stats.json"] and len(names) == 30
    assert _shard_files(part_dirs[5]) == []  # rows 1000..1199 do not exist: empty, complete
    assert runs["reports"][5]["rows"] == 0 and runs["reports"][5]["attempted"] == 0

    read_back = 0
    for k, d in enumerate(part_dirs[:5]):
        for tar in sorted(d.glob("*.tar")):
            got, want = _tar_samples(tar), _tar_samples(whole / tar.name)
            # same keys, captions, and (img2dataset resizes deterministically) the same pixels
            assert sorted(got) == sorted(want)
            for key, txt, caption, _ in got:
                row = int(key)  # shard_id * 100 + index == the global row number here
                assert txt == caption == caption_for(row)
                assert row // PER_PART == k
            read_back += len(got)
        for pqt in sorted(d.glob("*.parquet")):
            cols = ["key", "url", "caption", "status", "error_message"]
            got = sorted(pq.read_table(pqt, columns=cols).to_pylist(), key=lambda r: r["key"])
            want = sorted(pq.read_table(whole / pqt.name, columns=cols).to_pylist(),
                          key=lambda r: r["key"])  # fmt: skip
            assert got == want
    assert read_back == runs["reference"]["succeeded"] > 0


@pytest.mark.slow
def test_stats_add_up_and_name_the_failures(runs):
    reports, reference, host = runs["reports"], runs["reference"], runs["host"]
    assert sum(r["offered"] for r in reports) == ROWS == sum(r["rows"] for r in reports)
    total = i2d.summarize(p for d in sorted(runs["parts"].iterdir()) for p in i2d.stats_files(d))
    assert total["attempted"] == ROWS == reference["attempted"]
    assert total["succeeded"] == reference["succeeded"] == sum(r["succeeded"] for r in reports)
    assert total["failed_by_reason"] == reference["failed_by_reason"]
    kinds = [host.behaviour(f"img/{i:07d}.jpg") for i in range(ROWS)]
    assert total["succeeded"] == sum(k not in FAILING for k in kinds)
    by_kind = total["failed_by_kind"]
    assert by_kind["HTTP Error N: Not Found"] == kinds.count("404")
    assert by_kind["timed out"] == kinds.count("timeout")
    assert by_kind["IncompleteRead(N bytes read, N more expected)"] == kinds.count("truncated")
    assert by_kind["Image decoding error"] == kinds.count("corrupt")
    assert total["images_per_s"] > 0
    rate = i2d.check_success(total, 0.5, "standin-laion")
    with pytest.raises(VlprepError, match="(?s)standin-laion: ONLY .* BELOW THE SUCCESS FLOOR"):
        i2d.check_success(total, rate + 0.05, "standin-laion")


def _digest_tree(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.mark.slow
def test_retry_failed_recovers_rows_whose_host_came_back(runs):
    whole, host, tmp = runs["whole"], runs["host"], runs["tmp"]
    before = _digest_tree(whole)
    failed_before = list(i2d.failed_rows(sorted(whole.glob("*.parquet"))))
    host.recover()
    retry_dir = tmp / "retry"
    report = i2d.retry_failed(whole, retry_dir, i2d_args=I2D_ARGS, processes=1, threads=16,
                              log_file=tmp / "logs" / "retry.log")  # fmt: skip
    assert _digest_tree(whole) == before  # the original shards were only read
    assert report["rows_retried"] == len(failed_before) == ROWS - runs["reference"]["succeeded"]
    assert report["recovered"] == report["rows_retried"] and report["still_failed"] == 0
    assert report["shard_offset"] == 10
    assert _shard_files(retry_dir)[0] == "00010.parquet"
    assert sum(report["retried_by_kind"].values()) == report["rows_retried"]
    retried = {}
    for tar in sorted(retry_dir.glob("*.tar")):
        for s in wds.WebDataset(str(tar), shardshuffle=False):
            meta = json.loads(s["json"])
            retried[meta["orig_key"]] = meta["caption"]
    assert retried == {r["key"]: r["caption"] for r in failed_before}


def test_the_plan_the_workflow_makes_is_part_bounds():
    """The rules plan with vlprep.parts (re-exported here): parts cover every row once, the last
    one short, shard ids follow the rows, and a part size that splits a shard is refused."""
    rows, per_part, per_shard = 1050, 200, 100
    count = i2d.part_count(rows, per_part, per_shard)
    plans = [i2d.part_plan(k, rows, per_part, per_shard) for k in range(count)]
    assert count == 6 and [p["last"] for p in plans] == [False] * 5 + [True]
    covered = [row for p in plans for row in range(p["start"], p["stop"])]
    assert covered == list(range(rows))
    assert [p["shard_offset"] for p in plans] == [0, 2, 4, 6, 8, 10]
    with pytest.raises(ConversionError, match="multiple"):
        i2d.part_count(rows, 250, per_shard)
    assert i2d.planned_rows("x", 1000, 300) == 300 and i2d.planned_rows("x", None, 50) == 50
    with pytest.raises(ConversionError, match="set `rows`"):
        i2d.planned_rows("x", None, None)


def test_job_args_tune_the_consumers_own():
    consumer = {"input_format": "tsv", "number_sample_per_shard": 10000, "encode_quality": 95}
    tuned = i2d.job_args(consumer, {"image_size": 64, "timeout": None, "samples_per_shard": 100})
    assert tuned == {**consumer, "image_size": 64, "number_sample_per_shard": 100}
    assert i2d.job_args(consumer, {})["number_sample_per_shard"] == 10000
