"""fetch_s3() with the real boto3 client against moto on 127.0.0.1, through the fault front."""

import gzip
import hashlib
import json
import random
import shutil
import socket
import time
from pathlib import Path

import pytest
import requests

from standin.base import ChildService
from standin.s3 import S3Standin
from vlprep.errors import FetchError
from vlprep.fetch import CHUNK
from vlprep.s3 import fetch_s3, parse_s3_url
from vlprep.tarwriter import write_tar

BUCKET = "open-images-dataset"
KEY = "tar/validation.tar.gz"
URL = f"s3://{BUCKET}/{KEY}"
DROP_AT = 5_000_000  # past the first 4 MiB read, so a restart from 0 would show


def validation_tarball(path: Path, seed: int) -> bytes:
    """A small, deterministic stand-in for Open Images' validation.tar.gz (about 6 MiB)."""
    rng = random.Random(seed)
    tar = path.with_suffix("")
    write_tar(tar, [(f"validation/{i:016x}.jpg", rng.randbytes(500_000)) for i in range(12)])
    # Level 0 keeps the size independent of the seed, so a changed object has the same size.
    with (
        tar.open("rb") as src,
        path.open("wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=0, mtime=0) as out,
    ):
        shutil.copyfileobj(src, out)
    tar.unlink()
    return path.read_bytes()


@pytest.fixture(autouse=True)
def _quiet_and_local(monkeypatch):
    monkeypatch.setenv("VLPREP_PROGRESS", "0")
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
    ):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def tarball(tmp_path) -> bytes:
    path = tmp_path / "world" / BUCKET / KEY
    path.parent.mkdir(parents=True)
    return validation_tarball(path, seed=1)


@pytest.fixture
def s3(tmp_path, tarball):
    with S3Standin(tmp_path / "world") as standin:
        yield standin


@pytest.fixture
def get(s3, tarball, tmp_path):
    """fetch_s3() of the tarball into tmp_path/dl with fast test timings."""

    def run(url=URL, *, data=None, **kwargs):
        data = tarball if data is None else data
        options = {
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "endpoint_url": s3.endpoint_url,
            "retries": 3,
            "timeout": 5.0,
            "backoff": 0.01,
            "max_backoff": 0.05,
        } | kwargs
        return fetch_s3("openimages/validation", url, dest_of(tmp_path), **options)

    return run


def dest_of(tmp_path: Path) -> Path:
    return tmp_path / "dl" / "validation.tar.gz"


def leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "dl").iterdir())


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- happy paths -------------------------------------------------------------------------


def test_download_is_verified_and_reported(get, s3, tarball, tmp_path):
    report = get()
    assert dest_of(tmp_path).read_bytes() == tarball
    assert leftovers(tmp_path) == ["validation.tar.gz"]
    assert report["url"] == URL
    assert (report["bytes"], report["resumed_from"], report["attempts"]) == (len(tarball), 0, 1)
    assert report["sha256"] == hashlib.sha256(tarball).hexdigest()
    assert report["md5"] is None
    stats = s3.stats()[f"{BUCKET}/{KEY}"]
    assert stats["statuses"] == {"200": 1}
    seen = stats["last_request"]
    assert "Range" not in seen and "If-Match" not in seen
    assert "app/vlprep-" in seen["User-Agent"]


def test_md5_is_checked_when_the_catalog_has_no_sha256(get, tarball, tmp_path):
    md5 = hashlib.md5(tarball).hexdigest()
    report = get(sha256=None, md5=md5.upper())
    assert report["md5"] == md5
    assert report["sha256"] == hashlib.sha256(tarball).hexdigest()
    assert dest_of(tmp_path).read_bytes() == tarball


def test_sha1_is_checked_when_the_catalog_has_no_sha256(get, s3, tarball, tmp_path):
    sha1 = hashlib.sha1(tarball).hexdigest()
    report = get(sha256=None, sha1=sha1)
    assert report["sha1"] == sha1 and report["md5"] is None
    assert report["sha256"] == hashlib.sha256(tarball).hexdigest()
    assert dest_of(tmp_path).read_bytes() == tarball


def test_wrong_sha1_fails_and_leaves_nothing(get, s3, tarball, tmp_path):
    want = hashlib.sha1(b"another object").hexdigest()
    with pytest.raises(FetchError) as err:
        get(sha256=None, sha1=want, md5=hashlib.md5(tarball).hexdigest())
    message = str(err.value)
    assert "openimages/validation" in message and URL in message
    assert f"sha1 mismatch: expected {want}, got {hashlib.sha1(tarball).hexdigest()}" in message
    assert s3.stats()[f"{BUCKET}/{KEY}"]["statuses"] == {"200": 1}  # not retried
    assert leftovers(tmp_path) == []


def test_a_mirror_list_falls_through_to_the_url_that_has_the_object(get, tarball):
    report = get([f"s3://{BUCKET}/tar/missing.tar.gz", URL])
    assert report["url"] == URL
    assert report["attempts"] == 2  # a missing key is not retried


# -- faults that must recover --------------------------------------------------------------


def test_dropped_connection_resumes_where_it_broke(get, s3, tarball, tmp_path):
    s3.set_faults([{"kind": "drop", "path": f"{BUCKET}/*", "bytes": DROP_AT, "times": 1}])
    report = get()
    assert dest_of(tmp_path).read_bytes() == tarball
    assert (report["attempts"], report["resumed_from"]) == (2, DROP_AT)
    stats = s3.stats()[f"{BUCKET}/{KEY}"]
    assert stats["statuses"] == {"200": 1, "206": 1}
    assert stats["bytes_sent"] < len(tarball) + CHUNK  # not sent again from byte 0
    assert stats["bytes_sent"] == len(tarball)
    etag = '"' + hashlib.md5(tarball).hexdigest() + '"'
    assert stats["last_request"]["Range"] == f"bytes={DROP_AT}-"
    assert stats["last_request"]["If-Match"] == etag


def test_a_killed_run_is_resumed_by_the_next(get, s3, tarball, tmp_path):
    s3.set_faults([{"kind": "drop", "bytes": DROP_AT}])
    with pytest.raises(FetchError, match="connection lost at byte 5000000"):
        get(retries=0)
    assert leftovers(tmp_path) == ["validation.tar.gz.part", "validation.tar.gz.part.json"]
    assert (tmp_path / "dl" / "validation.tar.gz.part").stat().st_size == DROP_AT
    s3.clear_faults()
    s3.reset_stats()
    report = get(retries=0)
    assert dest_of(tmp_path).read_bytes() == tarball
    assert (report["resumed_from"], report["bytes"]) == (DROP_AT, len(tarball) - DROP_AT)
    assert s3.stats()[f"{BUCKET}/{KEY}"]["bytes_sent"] == len(tarball) - DROP_AT


def test_a_complete_part_is_verified_without_downloading(get, s3, tarball, tmp_path):
    (tmp_path / "dl").mkdir()
    (tmp_path / "dl" / "validation.tar.gz.part").write_bytes(tarball)
    (tmp_path / "dl" / "validation.tar.gz.part.json").write_text(json.dumps({"etag": "x"}))
    report = get()
    assert (report["bytes"], report["resumed_from"]) == (0, len(tarball))
    assert dest_of(tmp_path).read_bytes() == tarball
    assert f"{BUCKET}/{KEY}" not in s3.stats()


def test_an_object_changed_between_runs_restarts_from_zero(get, s3, tarball, tmp_path):
    s3.set_faults([{"kind": "drop", "bytes": DROP_AT}])
    with pytest.raises(FetchError):
        get(retries=0)
    s3.clear_faults()
    s3.reset_stats()
    changed = validation_tarball(tmp_path / "v2.tar.gz", seed=2)
    assert len(changed) == len(tarball) and changed != tarball
    s3.upload(BUCKET, KEY, changed)
    report = get(data=changed, retries=0)  # the restart must not need a retry
    assert dest_of(tmp_path).read_bytes() == changed
    assert (report["resumed_from"], report["bytes"], report["attempts"]) == (0, len(changed), 1)
    assert s3.stats()[f"{BUCKET}/{KEY}"]["statuses"] == {"412": 1, "200": 1}


def test_slow_down_answers_are_retried(get, s3, tarball, tmp_path):
    s3.set_faults([{"kind": "status", "code": 503, "times": 2}])
    report = get()
    assert report["attempts"] == 3
    assert dest_of(tmp_path).read_bytes() == tarball


def test_a_503_then_429_burst_recovers(get, s3, tarball, tmp_path):
    s3.set_faults([
        {"kind": "status", "code": 503, "times": 1},
        {"kind": "ratelimit", "retry_after": 0, "after": 1, "times": 1},
    ])  # fmt: skip
    report = get()
    assert report["attempts"] == 3 and dest_of(tmp_path).read_bytes() == tarball
    assert s3.stats()[f"{BUCKET}/{KEY}"]["statuses"] == {"503": 1, "429": 1, "200": 1}


@pytest.mark.parametrize(("retry_after", "max_backoff", "at_least", "below"),
                         [(1, 5.0, 1.0, 2.5), (3600, 0.2, 0.2, 2.0)])  # fmt: skip
def test_retry_after_of_a_429_is_honoured_up_to_max_backoff(
    get, s3, tarball, tmp_path, retry_after, max_backoff, at_least, below
):
    s3.set_faults([{"kind": "ratelimit", "retry_after": retry_after, "times": 1}])
    began = time.monotonic()
    report = get(max_backoff=max_backoff)  # backoff 0.01: without Retry-After, no wait
    waited = time.monotonic() - began
    assert report["attempts"] == 2 and dest_of(tmp_path).read_bytes() == tarball
    assert at_least <= waited < below


# -- failures that must be clear -----------------------------------------------------------


@pytest.mark.parametrize("cause", ["server flips a byte", "catalog checksum is wrong"])
def test_wrong_bytes_fail_and_leave_nothing(get, s3, tarball, tmp_path, cause):
    want = hashlib.sha256(tarball).hexdigest()
    if cause == "server flips a byte":
        s3.set_faults([{"kind": "wrong_bytes"}])
    else:
        want = hashlib.sha256(b"another file").hexdigest()
    with pytest.raises(FetchError) as err:
        get(sha256=want)
    message = str(err.value)
    assert "openimages/validation" in message and URL in message
    assert f"sha256 mismatch: expected {want}, got " in message
    assert "What to do" in message
    assert leftovers(tmp_path) == []


def test_persistent_503_names_the_url_and_the_status(get, s3, tmp_path):
    s3.set_faults([{"kind": "status", "code": 503}])
    with pytest.raises(FetchError) as err:
        get(retries=2)
    message = str(err.value)
    assert message.startswith("openimages/validation: could not download validation.tar.gz")
    assert f"{URL}: HTTP 503 SlowDown (gave up after 3 attempts)" in message
    assert s3.stats()[f"{BUCKET}/{KEY}"]["statuses"] == {"503": 3}
    assert leftovers(tmp_path) == []


def test_wrong_size_in_the_catalog_is_named(get, tarball, tmp_path):
    with pytest.raises(FetchError, match=f"holds {len(tarball)} bytes, the catalog says 123"):
        get(size=123)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("url", "what"),
    [(f"s3://{BUCKET}/tar/test.tar.gz", "object"), ("s3://no-such-bucket/x.tar.gz", "bucket")],
)
def test_missing_object_or_bucket_names_the_url(get, s3, url, what):
    with pytest.raises(FetchError) as err:
        get(url)
    message = str(err.value)
    assert url in message and f"no such {what}" in message
    assert "check the URL in catalog entry 'openimages/validation'" in message
    assert "(gave up" not in message  # not retried: it will not appear by waiting


def test_private_object_says_unsigned_requests_cannot_read_it(get, s3):
    s3.upload(BUCKET, "tar/private.tar.gz", b"secret", public=False)
    with pytest.raises(FetchError) as err:
        get(f"s3://{BUCKET}/tar/private.tar.gz", size=6, sha256=None)
    message = str(err.value)
    assert f"s3://{BUCKET}/tar/private.tar.gz" in message and "HTTP 403" in message
    assert "not public or needs credentials" in message and "unsigned" in message


def test_unreachable_endpoint_is_named_quickly(get, tmp_path):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    began = time.monotonic()
    with pytest.raises(FetchError) as err:
        get(endpoint_url=endpoint, retries=1)
    assert time.monotonic() - began < 5
    message = str(err.value)
    assert f"cannot reach the S3 endpoint {endpoint}" in message
    assert "`s3_endpoint` in the config" in message and "gave up after 2 attempts" in message


@pytest.mark.parametrize("url", ["https://x/y", "s3://bucket-only", "s3:///key"])
def test_malformed_urls_are_refused(url):
    with pytest.raises(FetchError, match="expected s3://<bucket>/<key>"):
        parse_s3_url(url)


# -- the stand-in as its own process ------------------------------------------------------


def test_cli_standin_serves_objects_and_takes_faults(tmp_path, tarball):
    (tmp_path / "world" / BUCKET / "tar" / "secret.bin").write_bytes(b"secret")
    args = ["--root", str(tmp_path / "world"), "--private", f"{BUCKET}/tar/secret*"]
    with ChildService("standin.s3", args, tmp_path) as endpoint, requests.Session() as web:
        web.trust_env = False
        rules = [{"kind": "drop", "bytes": DROP_AT, "times": 1}]
        assert web.post(f"{endpoint}/_standin/faults", json=rules).ok
        options = {"endpoint_url": endpoint, "backoff": 0.01, "timeout": 5.0}
        sha = hashlib.sha256(tarball).hexdigest()
        dest = tmp_path / "dl" / "v.tar.gz"
        report = fetch_s3("e", URL, dest, size=len(tarball), sha256=sha, **options)
        assert report["resumed_from"] == DROP_AT and dest.read_bytes() == tarball
        assert web.get(f"{endpoint}/_standin/stats").json()[f"{BUCKET}/{KEY}"]["requests"] == 2
        with pytest.raises(FetchError, match="HTTP 403"):
            fetch_s3("e", f"s3://{BUCKET}/tar/secret.bin", tmp_path / "s", size=6, **options)


# -- objects no checksum vouches for ---------------------------------------------------------


def test_unverified_object_that_is_a_page_is_not_installed(get, s3, tmp_path):
    """Without a checksum, a .tar.gz must start like gzip: an XML error body saved as the
    object (a misconfigured gateway) is refused, naming entry and URL."""
    key = "tar/page.tar.gz"
    s3.upload(BUCKET, key, b"<?xml version='1.0'?><Error><Code>SlowDown</Code></Error>\n")
    with pytest.raises(FetchError) as err:
        get(f"s3://{BUCKET}/{key}", size=None, sha256=None)  # validation.tar.gz: gzip
    message = str(err.value)
    assert "openimages/validation" in message and f"s3://{BUCKET}/{key}" in message
    assert "HTML page" in message and "not a gzip-compressed file" in message
    assert "manual_dir" in message
    assert leftovers(tmp_path) == []


def test_unverified_object_far_smaller_than_approx_size_is_refused(get, s3, tmp_path):
    placeholder = gzip.compress(b"moved\n")  # a well-formed gzip of a few bytes
    s3.upload(BUCKET, "tar/small.tar.gz", placeholder)
    with pytest.raises(FetchError) as err:
        get(f"s3://{BUCKET}/tar/small.tar.gz", size=None, sha256=None, approx_size=12_844_530_798)
    message = str(err.value)
    assert f"holds {len(placeholder):,} bytes" in message
    assert "about 12,844,530,798 (approx_size)" in message
    assert leftovers(tmp_path) == []


def test_unverified_tarball_is_installed(get, tarball, tmp_path):
    get(size=None, sha256=None, archive="tar.gz", approx_size=len(tarball))
    assert dest_of(tmp_path).read_bytes() == tarball
