"""fetch() against the real stand-in host on 127.0.0.1: every fault recovers or fails clearly."""

import email.utils
import hashlib
import io
import json
import random
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import requests

from standin.server import StandinServer, parse_range
from vlprep.errors import FetchError
from vlprep.fetch import candidate_urls, fetch, looks_like_html, parse_retry_after
from vlprep.transfer import expected_digest

MiB = 1 << 20
SIZE = 2 * MiB


def payload(size: int, seed: int) -> bytes:
    """Deterministic incompressible bytes."""
    return random.Random(seed).randbytes(size)


@pytest.fixture(autouse=True)
def _quiet(monkeypatch):
    monkeypatch.setenv("VLPREP_PROGRESS", "0")


@pytest.fixture
def files(tmp_path) -> dict[str, bytes]:
    """The served tree: data.bin, its changed version, and copies under mirror folders."""
    root = tmp_path / "served"
    contents = {"data.bin": payload(SIZE, 1), "data-v2.bin": payload(SIZE, 2)}
    for mirror in ("m1", "m2"):
        contents[f"{mirror}/data.bin"] = contents["data.bin"]
    for rel, data in contents.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return contents


@pytest.fixture
def srv(tmp_path, files):
    with StandinServer(tmp_path / "served") as server:
        yield server


@pytest.fixture
def session():
    """A session that ignores proxy settings: traffic must stay on 127.0.0.1."""
    with requests.Session() as s:
        s.trust_env = False
        yield s


@pytest.fixture
def get(srv, session, files, tmp_path):
    """fetch() of a served file into tmp_path/dl with fast test timings."""

    def run(rel="data.bin", *, urls=None, data=None, **kwargs):
        data = files[rel] if data is None else data
        options = {
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "retries": 3,
            "timeout": 5.0,
            "backoff": 0.01,
            "max_backoff": 0.05,
            "session": session,
        } | kwargs
        return fetch("demo/entry", urls or [srv.url + rel], tmp_path / "dl" / "data.bin", **options)

    return run


def dest_of(tmp_path: Path) -> Path:
    return tmp_path / "dl" / "data.bin"


def assert_nothing_left(tmp_path: Path) -> None:
    """No file at dest, and no .part or sidecar that could pass for it."""
    assert list((tmp_path / "dl").iterdir()) == []


def etag_of(srv: StandinServer, session: requests.Session, rel: str) -> str:
    """The file's current ETag; the HEAD request is left out of the statistics."""
    etag = session.head(srv.url + rel).headers["ETag"]
    srv.reset_stats()
    return etag


# -- happy paths -------------------------------------------------------------------------


def test_download_is_verified_and_reported(get, srv, files, tmp_path):
    report = get()
    assert dest_of(tmp_path).read_bytes() == files["data.bin"]
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == ["data.bin"]
    assert report["url"] == srv.url + "data.bin"
    assert report["bytes"] == SIZE
    assert report["resumed_from"] == 0
    assert report["attempts"] == 1
    assert report["sha256"] == hashlib.sha256(files["data.bin"]).hexdigest()
    assert report["md5"] is None
    seen = srv.stats()["data.bin"]["last_request"]
    assert seen["Accept-Encoding"] == "identity"
    assert seen["User-Agent"].startswith("vlprep/")


def test_md5_is_checked_when_the_catalog_has_no_sha256(get, files):
    md5 = hashlib.md5(files["data.bin"]).hexdigest()
    report = get(sha256=None, md5=md5)
    assert report["md5"] == md5
    assert report["sha256"] == hashlib.sha256(files["data.bin"]).hexdigest()


def test_sha1_settles_the_file_when_the_catalog_has_no_sha256(get, srv, files, session, tmp_path):
    """PASCAL-Context and VOC2010 publish SHA-1 only: it is computed, checked and reported,
    also over the bytes a resume hashes again from an earlier run's `.part`."""
    data = files["data.bin"]
    sha1 = hashlib.sha1(data).hexdigest()
    leave_part(tmp_path, data[: SIZE // 4], etag_of(srv, session, "data.bin"))
    report = get(sha256=None, sha1=sha1)
    assert report["resumed_from"] == SIZE // 4
    assert report["sha1"] == sha1 and report["md5"] is None
    assert report["sha256"] == hashlib.sha256(data).hexdigest()
    assert dest_of(tmp_path).read_bytes() == data


def test_wrong_sha1_fails_even_when_the_md5_matches(get, srv, files, tmp_path):
    data = files["data.bin"]
    want = hashlib.sha1(b"another file").hexdigest()
    with pytest.raises(FetchError) as failure:
        get(sha256=None, sha1=want, md5=hashlib.md5(data).hexdigest())
    message = str(failure.value)
    assert f"sha1 mismatch: expected {want}, got {hashlib.sha1(data).hexdigest()}" in message
    assert "demo/entry" in message and srv.url + "data.bin" in message
    assert srv.stats()["data.bin"]["requests"] == 1  # wrong bytes from byte 0: not retried
    assert_nothing_left(tmp_path)


def test_part_failing_sha1_after_a_resume_is_fetched_again_from_zero(
    get, srv, files, session, tmp_path
):
    leave_part(tmp_path, b"x" * (SIZE // 4), etag_of(srv, session, "data.bin"))
    report = get(sha256=None, sha1=hashlib.sha1(files["data.bin"]).hexdigest())
    assert report["attempts"] == 2 and report["resumed_from"] == 0
    assert srv.stats()["data.bin"]["statuses"] == {"206": 1, "200": 1}
    assert dest_of(tmp_path).read_bytes() == files["data.bin"]


def test_unknown_size_and_checksum_takes_what_the_host_sends(get, files, tmp_path):
    get(size=None, sha256=None)
    assert dest_of(tmp_path).read_bytes() == files["data.bin"]


# -- faults that must recover --------------------------------------------------------------


def test_drop_mid_body_resumes_from_what_arrived(get, srv, files, session, tmp_path):
    srv.set_faults([{"kind": "drop", "bytes": 3 * MiB // 4, "times": 1}])
    report = get()
    assert dest_of(tmp_path).read_bytes() == files["data.bin"]
    assert report["attempts"] == 2
    assert report["resumed_from"] == 3 * MiB // 4
    stats = srv.stats()["data.bin"]
    assert stats["statuses"] == {"200": 1, "206": 1}
    assert stats["bytes_sent"] == SIZE
    assert stats["last_request"]["If-Range"] == etag_of(srv, session, "data.bin")


def test_5xx_burst_is_retried(get, srv, tmp_path):
    srv.set_faults([{"kind": "status", "code": 503, "times": 3}])
    report = get()
    assert report["attempts"] == 4
    assert dest_of(tmp_path).exists()


def test_persistent_5xx_gives_up_after_the_retries(get, srv, tmp_path):
    srv.set_faults([{"kind": "status", "code": 500}])
    with pytest.raises(FetchError) as failure:
        get(retries=2)
    message = str(failure.value)
    assert "demo/entry" in message and srv.url + "data.bin" in message
    assert "HTTP 500" in message and "3 attempts" in message
    assert srv.stats()["data.bin"]["requests"] == 3
    assert_nothing_left(tmp_path)


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_429_waits_for_retry_after(get, srv, tmp_path, form):
    value = 1 if form == "seconds" else email.utils.formatdate(time.time() + 2, usegmt=True)
    srv.set_faults([{"kind": "ratelimit", "retry_after": value, "times": 1}])
    began = time.monotonic()
    report = get(max_backoff=10)
    waited = time.monotonic() - began
    assert report["attempts"] == 2
    assert 0.9 <= waited < 3.5
    assert dest_of(tmp_path).exists()


def test_retry_after_is_capped_by_max_backoff(get, srv):
    srv.set_faults([{"kind": "ratelimit", "retry_after": 3600, "times": 1}])
    began = time.monotonic()
    get(max_backoff=0.2)
    assert time.monotonic() - began < 2


def test_trickle_completes(get, srv, files, tmp_path):
    srv.set_faults([{"kind": "trickle", "rate": 8 * MiB}])
    get()
    assert dest_of(tmp_path).read_bytes() == files["data.bin"]


def test_stalled_body_times_out_and_resumes(get, srv, files, tmp_path):
    srv.set_faults([{"kind": "trickle", "rate": 1, "times": 1}])
    report = get(timeout=0.5)
    assert report["attempts"] == 2
    assert dest_of(tmp_path).read_bytes() == files["data.bin"]


def test_refused_connection_is_retried_then_next_url(get, srv, files):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/data.bin"
    report = get(urls=[dead, srv.url + "data.bin"], retries=1)
    assert report["url"] == srv.url + "data.bin"
    assert report["attempts"] == 3


def test_remote_change_restarts_from_zero(get, srv, files, tmp_path):
    """A drop, then the file changes: If-Range gets the whole new file, not a spliced one."""
    new = files["data-v2.bin"]
    srv.set_faults(
        [
            {"kind": "drop", "path": "data.bin", "times": 1},
            {"kind": "change", "path": "data.bin", "to": "data-v2.bin"},
        ]
    )
    report = get(data=new)
    assert dest_of(tmp_path).read_bytes() == new
    assert report["sha256"] == hashlib.sha256(new).hexdigest()
    assert report["resumed_from"] == 0
    assert srv.stats()["data.bin"]["statuses"] == {"200": 2}


# -- leftovers from an earlier run ---------------------------------------------------------


def leave_part(tmp_path: Path, data: bytes, etag: str | None, name: str = "data.bin") -> None:
    """What a killed earlier run leaves: some bytes in .part and the sidecar."""
    (tmp_path / "dl").mkdir(exist_ok=True)
    (tmp_path / "dl" / f"{name}.part").write_bytes(data)
    meta = {"url": "earlier", "etag": etag, "last_modified": None}
    (tmp_path / "dl" / f"{name}.part.json").write_text(json.dumps(meta))


def test_part_from_an_earlier_run_is_resumed(get, srv, files, session, tmp_path):
    leave_part(tmp_path, files["data.bin"][: SIZE // 4], etag_of(srv, session, "data.bin"))
    report = get()
    assert report["resumed_from"] == SIZE // 4
    assert report["bytes"] == SIZE - SIZE // 4
    assert dest_of(tmp_path).read_bytes() == files["data.bin"]


def test_part_with_a_stale_etag_restarts(get, srv, files, tmp_path):
    leave_part(tmp_path, b"x" * (SIZE // 4), '"an-older-version"')
    report = get()
    assert report["resumed_from"] == 0
    assert srv.stats()["data.bin"]["statuses"] == {"200": 1}
    assert dest_of(tmp_path).read_bytes() == files["data.bin"]


def test_complete_part_is_verified_after_416(get, srv, files, session, tmp_path):
    leave_part(tmp_path, files["data.bin"], etag_of(srv, session, "data.bin"))
    report = get()
    assert report["bytes"] == 0
    assert srv.stats()["data.bin"]["statuses"] == {"416": 1}
    assert dest_of(tmp_path).read_bytes() == files["data.bin"]


def test_complete_but_corrupt_part_is_downloaded_again(get, srv, files, session, tmp_path):
    leave_part(tmp_path, b"x" * SIZE, etag_of(srv, session, "data.bin"))
    report = get()
    assert report["bytes"] == SIZE
    assert srv.stats()["data.bin"]["statuses"] == {"416": 1, "200": 1}
    assert dest_of(tmp_path).read_bytes() == files["data.bin"]


def test_part_longer_than_the_file_restarts(get, srv, files, session, tmp_path):
    leave_part(tmp_path, b"x" * (SIZE + 10), etag_of(srv, session, "data.bin"))
    report = get()
    assert report["resumed_from"] == 0
    assert dest_of(tmp_path).read_bytes() == files["data.bin"]


def test_part_without_sidecar_is_not_trusted(get, srv, files, tmp_path):
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "data.bin.part").write_bytes(b"x" * 100)
    report = get()
    assert report["resumed_from"] == 0
    assert dest_of(tmp_path).read_bytes() == files["data.bin"]


# -- faults that must fail clearly ---------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "size"),
    [
        ("text/html; charset=utf-8", SIZE),
        ("application/octet-stream", SIZE),
        ("application/octet-stream", None),
    ],
    ids=["by-content-type", "sniffed-size-differs", "sniffed-size-unknown"],
)
def test_html_page_is_refused(get, srv, tmp_path, content_type, size):
    srv.set_faults([{"kind": "html", "content_type": content_type}])
    with pytest.raises(FetchError) as failure:
        get(size=size)
    message = str(failure.value)
    assert "demo/entry" in message and srv.url + "data.bin" in message
    assert "HTML page" in message and "manual_dir" in message and "mirror" in message
    assert srv.stats()["data.bin"]["requests"] == 1
    assert_nothing_left(tmp_path)


# Pages a host serves in place of a file, with the file's own Content-Type, that the old
# check (only `<!doctype html` or `<html` at the start) let through.
PAGES = {
    "vqa_train.json": b"<!-- generated by the CDN -->\n<html><body>Access denied</body></html>\n",
    "images.zip": b"<head><title>Download quota exceeded</title></head><body>later</body>\n",
    "vg_qa.json": b"\xef\xbb\xbf\n<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>",
}


@pytest.mark.parametrize("name", list(PAGES))
def test_page_with_the_files_content_type_is_not_installed(srv, session, tmp_path, name):
    """No checksum in the catalog: the first bytes must look like a zip or JSON file."""
    (tmp_path / "served" / name).write_bytes(PAGES[name])
    ctype = session.head(srv.url + name).headers["Content-Type"]
    assert ctype in ("application/json", "application/zip")  # not text/html
    srv.reset_stats()
    with pytest.raises(FetchError) as failure:
        fetch("lavis/entry", [srv.url + name], tmp_path / "dl" / name, size=None, session=session)
    message = str(failure.value)
    assert "lavis/entry" in message and srv.url + name in message
    assert "HTML page" in message and "mirror" in message and "manual_dir" in message
    assert srv.stats()[name]["requests"] == 1  # not retried: waiting will not help
    assert_nothing_left(tmp_path)


def test_wrong_format_is_refused_on_the_first_bytes(srv, session, tmp_path):
    """A file that is not a zip (here a RAR) is refused, whatever its name and Content-Type."""
    (tmp_path / "served" / "images.zip").write_bytes(b"Rar!\x1a\x07\x00" + payload(SIZE, 4))
    with pytest.raises(FetchError, match="it is not a zip archive"):
        fetch(
            "gqa",
            [srv.url + "images.zip"],
            tmp_path / "dl" / "images.zip",
            size=None,
            session=session,
        )
    assert_nothing_left(tmp_path)


def test_real_files_without_a_checksum_still_pass(srv, session, tmp_path):
    annotations = b'\xef\xbb\xbf  [{"question_id": 1, "question": "why?"}]\n'
    (tmp_path / "served" / "vqa_train.json").write_bytes(annotations)
    fetch(
        "vqa",
        [srv.url + "vqa_train.json"],
        tmp_path / "dl" / "vqa_train.json",
        size=None,
        session=session,
    )
    assert (tmp_path / "dl" / "vqa_train.json").read_bytes() == annotations


def test_part_of_a_page_from_an_earlier_run_is_discarded_not_resumed(srv, session, tmp_path):
    """A `.part` whose head is a page (left by an older run) restarts from 0, never spliced."""
    data = b"PK\x03\x04" + payload(SIZE, 5)
    (tmp_path / "served" / "images.zip").write_bytes(data)
    page = b"<!-- quota -->\n<html>" + b" " * 1000
    leave_part(tmp_path, page, etag_of(srv, session, "images.zip"), name="images.zip")
    report = fetch(
        "gqa",
        [srv.url + "images.zip"],
        tmp_path / "dl" / "images.zip",
        size=None,
        backoff=0.01,
        session=session,
    )
    assert report["resumed_from"] == 0
    assert (tmp_path / "dl" / "images.zip").read_bytes() == data


def test_tiny_body_for_a_big_file_is_refused(srv, session, tmp_path):
    """approx_size 20 GB and a 300-byte (well-formed) zip: a placeholder, not the file."""
    small = io.BytesIO()
    with zipfile.ZipFile(small, "w") as zf:
        zf.writestr("README.txt", "moved to another host")
    (tmp_path / "served" / "images.zip").write_bytes(small.getvalue())
    with pytest.raises(FetchError) as failure:
        fetch(
            "gqa_images",
            [srv.url + "images.zip"],
            tmp_path / "dl" / "images.zip",
            size=None,
            approx_size=20_300_000_000,
            archive="zip",
            session=session,
        )
    message = str(failure.value)
    assert f"announces {len(small.getvalue()):,} bytes" in message
    assert "about 20,300,000,000 (approx_size)" in message and "manual_dir" in message
    assert_nothing_left(tmp_path)


def test_wrong_bytes_fail_the_checksum(get, srv, files, tmp_path):
    srv.set_faults([{"kind": "wrong_bytes"}])
    want = hashlib.sha256(files["data.bin"]).hexdigest()
    bad = bytearray(files["data.bin"])
    bad[SIZE // 2] ^= 0xFF
    with pytest.raises(FetchError) as failure:
        get()
    message = str(failure.value)
    assert "demo/entry" in message and srv.url + "data.bin" in message
    assert f"expected {want}, got {hashlib.sha256(bad).hexdigest()}" in message
    assert "catalog" in message
    # The bad bytes are gone already: no advice to delete a .part that does not exist.
    assert "data.bin.part" not in message and "delete" not in message
    assert "the partial file was discarded" in message
    assert_nothing_left(tmp_path)


def test_advice_names_a_part_that_is_kept(get, srv, tmp_path):
    """A dropped connection keeps `.part` for the rerun: the advice says so, with its size."""
    srv.set_faults([{"kind": "drop", "bytes": SIZE // 4}])
    with pytest.raises(FetchError) as failure:
        get(retries=0)
    part = tmp_path / "dl" / "data.bin.part"
    assert part.stat().st_size == SIZE // 4
    assert f"{part} ({SIZE // 4:,} bytes) is kept and a rerun resumes it" in str(failure.value)


def test_announced_size_differing_from_catalog_is_the_wrong_file(get, srv, files, tmp_path):
    with pytest.raises(FetchError) as failure:
        get(size=SIZE + 1)
    assert "wrong file" in str(failure.value) and srv.url + "data.bin" in str(failure.value)
    assert srv.stats()["data.bin"]["requests"] == 1
    assert_nothing_left(tmp_path)


def test_mirrors_are_tried_in_order_then_the_original(get, srv, files):
    mirrors = {srv.url: [srv.url + "m1/", srv.url + "m2/"]}
    urls = candidate_urls(srv.url + "data.bin", mirrors)
    assert urls == [srv.url + "m1/data.bin", srv.url + "m2/data.bin", srv.url + "data.bin"]
    srv.set_faults([{"kind": "not_found", "path": "m1/*"}])
    report = get(urls=urls)
    assert report["url"] == srv.url + "m2/data.bin"
    stats = srv.stats()
    assert stats["m1/data.bin"]["statuses"] == {"404": 1}
    assert "data.bin" not in stats


def test_every_url_failing_lists_each_with_its_error(get, srv, tmp_path):
    srv.set_faults(
        [
            {"kind": "not_found", "path": "m1/*"},
            {"kind": "not_found", "path": "m2/*", "code": 403},
            {"kind": "not_found", "path": "data.bin", "code": 410},
        ]
    )
    urls = [srv.url + "m1/data.bin", srv.url + "m2/data.bin", srv.url + "data.bin"]
    with pytest.raises(FetchError) as failure:
        get(urls=urls)
    lines = str(failure.value).splitlines()
    assert "demo/entry" in lines[0] and "3 URL(s)" in lines[0]
    for url, code in zip(urls, (404, 403, 410), strict=True):
        assert any(url in line and f"HTTP {code}" in line for line in lines)
    assert all(entry["requests"] == 1 for entry in srv.stats().values())
    assert_nothing_left(tmp_path)


# -- throughput of a resume ----------------------------------------------------------------


def test_large_resume_retransfers_under_one_percent(srv, session, tmp_path):
    size = 64 * MiB
    data = payload(size, 3)
    (tmp_path / "served" / "large.bin").write_bytes(data)
    srv.set_faults([{"kind": "drop", "path": "large.bin", "bytes": size // 2, "times": 1}])
    report = fetch(
        "demo/large",
        [srv.url + "large.bin"],
        tmp_path / "dl" / "large.bin",
        size=size,
        sha256=hashlib.sha256(data).hexdigest(),
        backoff=0.01,
        session=session,
        connections=1,  # one stream resuming (tests/unit/test_ranged.py: several)
    )
    assert report["resumed_from"] == size // 2
    assert srv.stats()["large.bin"]["bytes_sent"] < size * 1.01
    assert report["bytes"] < size * 1.01
    assert (tmp_path / "dl" / "large.bin").read_bytes() == data


# -- helpers -------------------------------------------------------------------------------


def test_candidate_urls_longest_prefix_wins():
    mirrors = {
        "http://host/": ["http://a/"],
        "http://host/coco/": ["http://127.0.0.1:8000/coco/", "http://b/c/"],
    }
    assert candidate_urls("http://host/coco/x.zip", mirrors) == [
        "http://127.0.0.1:8000/coco/x.zip",
        "http://b/c/x.zip",
        "http://host/coco/x.zip",
    ]
    assert candidate_urls("http://host/y.zip", mirrors) == ["http://a/y.zip", "http://host/y.zip"]
    assert candidate_urls("http://other/z", mirrors) == ["http://other/z"]
    assert candidate_urls("http://other/z", None) == ["http://other/z"]


def test_the_strongest_published_checksum_settles_a_file():
    assert expected_digest(sha256="AB", sha1="cd", md5="ef") == ("sha256", "ab")
    assert expected_digest(sha1="CD", md5="ef") == ("sha1", "cd")
    assert expected_digest(md5="EF") == ("md5", "ef")
    assert expected_digest(sha256=None, sha1="", md5=None) is None


def test_parse_retry_after():
    assert parse_retry_after("7") == 7
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after(email.utils.formatdate(time.time() - 60, usegmt=True)) == 0
    assert 5 < parse_retry_after(email.utils.formatdate(time.time() + 10, usegmt=True)) <= 10


def test_html_sniffing():
    assert looks_like_html(b"\n  <!DOCTYPE HTML><html>")
    assert looks_like_html(b"<html lang=en>")
    assert not looks_like_html(b"PK\x03\x04 ... <html>")


def test_range_parsing():
    assert parse_range("bytes=10-", 100) == (10, 99)
    assert parse_range("bytes=10-19", 100) == (10, 19)
    assert parse_range("bytes=-5", 100) == (95, 99)
    assert parse_range("bytes=0-5,10-20", 100) is None
    with pytest.raises(ValueError):
        parse_range("bytes=100-", 100)


# -- the stand-in's own interfaces -----------------------------------------------------------


def test_control_endpoint_sets_and_clears_faults(srv, session):
    rules = [{"kind": "status", "code": 502, "times": 1}]
    assert session.post(srv.url + "_standin/faults", json=rules).status_code == 200
    assert session.get(srv.url + "data.bin").status_code == 502
    assert session.get(srv.url + "data.bin").status_code == 200
    assert session.post(srv.url + "_standin/faults", json=[{"kind": "nope"}]).status_code == 400
    session.post(srv.url + "_standin/faults", json=[{"kind": "not_found"}])
    session.delete(srv.url + "_standin/faults")
    assert session.get(srv.url + "_standin/faults").json() == []
    assert session.get(srv.url + "_standin/stats").json()["data.bin"]["requests"] == 2
    session.delete(srv.url + "_standin/stats")
    assert session.get(srv.url + "_standin/stats").json() == {}


def test_cli_serves_with_faults_from_a_file(tmp_path, files, session):
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps([{"kind": "not_found", "path": "m1/*"}]))
    port_file, pid_file = tmp_path / "port", tmp_path / "pid"
    command = [sys.executable, "-m", "standin.server", "--root", str(tmp_path / "served")]
    command += ["--port", "0", "--faults", str(faults)]
    command += ["--port-file", str(port_file), "--pid-file", str(pid_file)]
    scripts = Path(__file__).resolve().parents[2] / "scripts"
    proc = subprocess.Popen(command, cwd=scripts, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not port_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port_file.read_text().strip()}/"
        assert int(pid_file.read_text()) == proc.pid
        assert session.get(base + "data.bin").content == files["data.bin"]
        assert session.get(base + "m1/data.bin").status_code == 404
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert not port_file.exists() and not pid_file.exists()
