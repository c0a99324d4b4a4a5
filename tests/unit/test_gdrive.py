"""fetch_gdrive() with the real gdown against the Drive stand-in on 127.0.0.1.

gdown sends every Drive request to https://drive.google.com/..., so it reaches the stand-in as
its HTTPS proxy (CONNECT, then TLS with the stand-in's throwaway CA): the same code paths as on
the real Drive. A guard refuses any connection or name lookup that would leave loopback, and
each test checks in the stand-in's statistics that the requests really reached it.
"""

import hashlib
import io
import json
import os
import random
import time
import zipfile
from pathlib import Path

import pytest
from gdown.download import CHUNK_SIZE
from PIL import Image

from standin.base import ChildService
from standin.drive import DEFAULT_SCAN_LIMIT, DriveStandin
from tests.loopback import loopback_only
from vlprep.errors import FetchError
from vlprep.gdrive import fetch_gdrive

MiB = 1 << 20
BIG_ID = "1nJXhoEcy3KTExr17I7BXqY5Y9Lx_-n-9"  # cc_sbu_align.zip's real id; a stand-in file here
SMALL_ID = "1SmallFileOnDrive00000000000000"
HTML_ID = "1HtmlFileOnDrive000000000000000"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
FAST = {"backoff": 0.01, "max_backoff": 0.05, "timeout": 10.0}


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    """No proxy from the environment, no progress bars, and no socket leaving 127.0.0.1."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("VLPREP_PROGRESS", "0")
    with loopback_only():
        yield


def noise_jpeg(seed: int, side: int) -> bytes:
    """A real JPEG of random pixels: it barely compresses, so the archive stays MBs."""
    pixels = random.Random(seed).randbytes(side * side * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(out, "JPEG", quality=95)
    return out.getvalue()


def cc_sbu_align_zip(path: Path) -> None:
    """A small cc_sbu_align.zip: cc_sbu_align/{filter_cap.json, image/<id>.jpg}, as upstream."""
    annotations = [{"image_id": str(i), "caption": f"a photo number {i}."} for i in (2, 3)]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        when = (2023, 4, 20, 0, 0, 0)
        cap = json.dumps({"annotations": annotations}).encode()
        zf.writestr(zipfile.ZipInfo("cc_sbu_align/filter_cap.json", when), cap)
        for i, side in ((2, 1100), (3, 1000)):
            zf.writestr(zipfile.ZipInfo(f"cc_sbu_align/image/{i}.jpg", when), noise_jpeg(i, side))


@pytest.fixture(scope="module")
def drive_root(tmp_path_factory) -> Path:
    """The stand-in's `<file_id>/<filename>` tree."""
    root = tmp_path_factory.mktemp("drive")
    for file_id in (BIG_ID, SMALL_ID, HTML_ID):
        (root / file_id).mkdir()
    cc_sbu_align_zip(root / BIG_ID / "cc_sbu_align.zip")
    (root / SMALL_ID / "small.bin").write_bytes(random.Random(7).randbytes(10_000))
    (root / HTML_ID / "page.html").write_bytes(
        b"<!DOCTYPE html>\n<html><body>a report, not an archive</body></html>\n"
    )
    return root


@pytest.fixture(scope="module")
def seeded(drive_root) -> dict[str, bytes]:
    """The bytes of each seeded file, by Drive id."""
    return {folder.name: next(folder.iterdir()).read_bytes() for folder in drive_root.iterdir()}


@pytest.fixture
def drive(drive_root):
    with DriveStandin(drive_root) as server:
        yield server


def through(drive: DriveStandin) -> dict:
    """The keyword arguments that send gdown to the stand-in."""
    return {"proxy": drive.proxy, "ca_bundle": str(drive.ca_file), **FAST}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(directory: Path, keep: str | None = None) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != keep)


def test_small_file_comes_directly(drive, seeded, tmp_path):
    assert len(seeded[SMALL_ID]) < DEFAULT_SCAN_LIMIT
    dest = tmp_path / "small.bin"
    report = fetch_gdrive("small", SMALL_ID, dest, size=10_000, **through(drive))
    assert dest.read_bytes() == seeded[SMALL_ID]
    assert report["sha256"] == sha256(seeded[SMALL_ID])
    assert report["bytes"] == 10_000 and report["attempts"] == 1 and report["resumed_from"] == 0
    assert report["url"] == f"https://drive.google.com/uc?id={SMALL_ID}&export=download"
    assert dest.stat().st_mode & 0o777 == 0o644  # gdown itself leaves 0600
    assert leftovers(tmp_path, keep=dest.name) == []
    stats = drive.stats()
    assert stats["hosts"]["CONNECT drive.google.com"] >= 1  # gdown really came through us
    assert stats["files"][SMALL_ID]["statuses"] == {"200": 1}


def test_large_file_goes_through_the_confirmation_page(drive, seeded, tmp_path):
    data = seeded[BIG_ID]
    assert len(data) > 2 * MiB > DEFAULT_SCAN_LIMIT
    dest = tmp_path / "cc_sbu_align.zip"
    report = fetch_gdrive(
        "cc_sbu_align", BIG_ID, dest, size=len(data), sha256=sha256(data), **through(drive)
    )
    assert dest.read_bytes() == data and report["sha256"] == sha256(data)
    assert dest.stat().st_mode & 0o777 == 0o644
    with zipfile.ZipFile(dest) as zf:
        assert json.loads(zf.read("cc_sbu_align/filter_cap.json"))["annotations"][0]["image_id"]
    stats = drive.stats()
    # The warning page first (200 HTML), then the file on the confirmed, uuid-carrying URL.
    assert stats["files"][BIG_ID]["statuses"] == {"200": 2}
    assert stats["files"][BIG_ID]["bytes_sent"] == len(data)
    assert stats["hosts"]["CONNECT drive.usercontent.google.com"] >= 1


def test_md5_only_catalog_entry_is_verified(drive, seeded, tmp_path):
    dest = tmp_path / "small.bin"
    md5 = hashlib.md5(seeded[SMALL_ID]).hexdigest()
    report = fetch_gdrive("small", SMALL_ID, dest, md5=md5, **through(drive))
    assert report["md5"] == md5 and report["sha256"] == sha256(seeded[SMALL_ID])


def test_sha1_only_catalog_entry_is_verified(drive, seeded, tmp_path):
    dest = tmp_path / "small.bin"
    sha1 = hashlib.sha1(seeded[SMALL_ID]).hexdigest()
    report = fetch_gdrive("small", SMALL_ID, dest, sha1=sha1, **through(drive))
    assert report["sha1"] == sha1 and report["md5"] is None
    assert report["sha256"] == sha256(seeded[SMALL_ID])
    assert dest.read_bytes() == seeded[SMALL_ID]


def test_wrong_sha1_is_refused_and_nothing_is_installed(drive, seeded, tmp_path):
    dest = tmp_path / "small.bin"
    want = hashlib.sha1(b"another file").hexdigest()
    md5 = hashlib.md5(seeded[SMALL_ID]).hexdigest()  # right, but sha1 settles the file
    with pytest.raises(FetchError) as caught:
        fetch_gdrive("small", SMALL_ID, dest, sha1=want, md5=md5, **through(drive))
    message = str(caught.value)
    got = hashlib.sha1(seeded[SMALL_ID]).hexdigest()
    assert f"sha1 mismatch: expected {want}, got {got}" in message
    assert f"https://drive.google.com/uc?id={SMALL_ID}" in message
    assert "nothing was installed" in message and "manual_dir as small.bin" in message
    assert leftovers(tmp_path) == []
    assert drive.stats()["files"][SMALL_ID]["statuses"] == {"200": 1}  # not retried


def test_quota_page_is_a_clear_error_and_nothing_is_saved(drive, seeded, tmp_path):
    drive.set_faults({BIG_ID: {"quota": True}})
    dest = tmp_path / "cc_sbu_align.zip"
    with pytest.raises(FetchError) as caught:
        fetch_gdrive("cc_sbu_align", BIG_ID, dest, **through(drive))
    message = str(caught.value)
    for part in (
        "cc_sbu_align",
        f"https://drive.google.com/uc?id={BIG_ID}",
        "Too many users have viewed or downloaded this file recently",
        "24 hours",
        "mirror",
        "manual_dir",
        "cc_sbu_align.zip",
    ):
        assert part in message
    assert leftovers(tmp_path) == []  # no page saved as the archive, no .part
    # A quota is not retried: one answer from Drive, and that was the quota page.
    assert drive.stats()["files"][BIG_ID]["statuses"] == {"200": 1}


def test_quota_keeps_the_bytes_already_received(drive, seeded, tmp_path):
    data = seeded[BIG_ID]
    drop = 2 * CHUNK_SIZE  # on a chunk boundary: gdown keeps exactly what was sent
    dest = tmp_path / "cc_sbu_align.zip"
    drive.set_faults({BIG_ID: {"drop_after": drop}})
    with pytest.raises(FetchError, match="gave up after 1 attempts"):
        fetch_gdrive("cc_sbu_align", BIG_ID, dest, retries=0, **through(drive))
    drive.set_faults({BIG_ID: {"quota": True}})
    with pytest.raises(FetchError, match=f"the {drop:,} bytes received so far are kept"):
        fetch_gdrive("cc_sbu_align", BIG_ID, dest, **through(drive))
    drive.set_faults({})
    report = fetch_gdrive("cc_sbu_align", BIG_ID, dest, sha256=sha256(data), **through(drive))
    assert report["resumed_from"] == drop and dest.read_bytes() == data


@pytest.mark.parametrize(
    ("file_id", "faults", "said"),
    [
        ("1NoSuchFileOnDrive000000000000", {}, 'HTTP 404, "Google Drive - Page Not Found"'),
        (BIG_ID, {"not_found": True}, "HTTP 404"),
        (BIG_ID, {"private": True}, "a sign-in page at accounts.google.com"),
    ],
)
def test_missing_or_private_file_is_a_clear_error(drive, tmp_path, file_id, faults, said):
    drive.set_faults({file_id: faults} if faults else {})
    dest = tmp_path / "cc_sbu_align.zip"
    with pytest.raises(FetchError) as caught:
        fetch_gdrive("cc_sbu_align", file_id, dest, **through(drive))
    message = str(caught.value)
    assert said in message
    assert f"drive_id ({file_id})" in message and "manual_dir as cc_sbu_align.zip" in message
    assert leftovers(tmp_path) == []


# -- 429 and 5xx: gdown takes them for a Drive page; vlprep.gdrive sees the status ----------


def test_persistent_503_reports_the_503_not_a_page(drive, seeded, tmp_path):
    drive.set_faults([{"kind": "status", "code": 503, "path": BIG_ID}])
    dest = tmp_path / "cc_sbu_align.zip"
    with pytest.raises(FetchError) as caught:
        fetch_gdrive("cc_sbu_align", BIG_ID, dest, retries=2, **through(drive))
    message = str(caught.value)
    assert message.startswith(
        f"cc_sbu_align: could not download cc_sbu_align.zip from "
        f"https://drive.google.com/uc?id={BIG_ID}&export=download: HTTP 503 Service "
        "Unavailable at drive.usercontent.google.com (gave up after 3 attempts)"
    )
    assert "Virus scan" not in message and "page" not in message
    assert "manual_dir as cc_sbu_align.zip" in message
    assert leftovers(tmp_path) == []
    # Three tries, and no fourth request to quote a page.
    assert drive.stats()["files"][BIG_ID]["statuses"] == {"503": 3}


def test_a_503_then_429_burst_recovers(drive, seeded, tmp_path):
    data = seeded[BIG_ID]
    drive.set_faults([
        {"kind": "status", "code": 503, "path": BIG_ID, "times": 1},
        {"kind": "ratelimit", "retry_after": 0, "path": BIG_ID, "after": 1, "times": 1},
    ])  # fmt: skip
    dest = tmp_path / "cc_sbu_align.zip"
    report = fetch_gdrive(
        "cc_sbu_align", BIG_ID, dest, size=len(data), sha256=sha256(data), **through(drive)
    )
    assert dest.read_bytes() == data and report["attempts"] == 3
    # The 503, the 429, then the warning page and the file.
    assert drive.stats()["files"][BIG_ID]["statuses"] == {"503": 1, "429": 1, "200": 2}
    assert leftovers(tmp_path, keep=dest.name) == []


def test_a_503_to_a_resume_keeps_the_partial_bytes(drive, seeded, tmp_path):
    """Drive answering gdown's Range request with a 503 is no sign of a changed file: the
    bytes received are kept, and the next try resumes them."""
    data = seeded[BIG_ID]
    drop = 2 * CHUNK_SIZE  # on a chunk boundary: gdown keeps exactly what was sent
    drive.set_faults([
        {"kind": "drop", "bytes": drop, "path": BIG_ID, "times": 1},
        # The third /download: the warning page, the cut-off file, then gdown's Range request.
        {"kind": "status", "code": 503, "path": BIG_ID, "after": 2, "times": 1},
    ])  # fmt: skip
    dest = tmp_path / "cc_sbu_align.zip"
    report = fetch_gdrive(
        "cc_sbu_align", BIG_ID, dest, size=len(data), sha256=sha256(data), **through(drive)
    )
    assert dest.read_bytes() == data
    assert report["attempts"] == 2 and report["resumed_from"] == drop
    stats = drive.stats()["files"][BIG_ID]
    # Page, cut file, the 503 to the Range; then page, the file gdown drops to resume, the rest.
    assert stats["statuses"] == {"200": 4, "503": 1, "206": 1}
    assert stats["ranges"] == [f"bytes={drop}-"]  # the answer that sent the rest


def test_retry_after_of_a_429_is_honoured(drive, seeded, tmp_path):
    drive.set_faults([{"kind": "ratelimit", "retry_after": 1, "path": SMALL_ID, "times": 1}])
    dest = tmp_path / "small.bin"
    began = time.monotonic()
    report = fetch_gdrive("small", SMALL_ID, dest, **(through(drive) | {"max_backoff": 5.0}))
    waited = time.monotonic() - began
    assert report["attempts"] == 2 and dest.read_bytes() == seeded[SMALL_ID]
    assert 1.0 <= waited < 2.5


def test_dropped_connection_resumes_with_a_range(drive, seeded, tmp_path):
    data = seeded[BIG_ID]
    drop = 3 * len(data) // 4
    drive.set_faults({BIG_ID: {"drop_after": drop}})
    dest = tmp_path / "cc_sbu_align.zip"
    report = fetch_gdrive(
        "cc_sbu_align", BIG_ID, dest, size=len(data), sha256=sha256(data), **through(drive)
    )
    assert dest.read_bytes() == data and report["sha256"] == sha256(data)
    file_stats = drive.stats()["files"][BIG_ID]
    # gdown stores whole 512 KiB reads; the one the drop cut short is asked for again.
    (asked,) = file_stats["ranges"]
    resumed = int(asked.removeprefix("bytes=").removesuffix("-"))
    assert drop - CHUNK_SIZE < resumed <= drop
    assert file_stats["statuses"] == {"200": 2, "206": 1}  # warning page, cut file, the rest
    # Starting over would have cost drop + len(data) bytes.
    assert file_stats["bytes_sent"] == drop + len(data) - resumed < drop + len(data)
    assert leftovers(tmp_path, keep=dest.name) == []


def test_a_later_run_resumes_what_an_earlier_one_left(drive, seeded, tmp_path):
    data = seeded[BIG_ID]
    drop = CHUNK_SIZE  # on a chunk boundary: gdown keeps exactly what was sent
    drive.set_faults({BIG_ID: {"drop_after": drop}})
    dest = tmp_path / "cc_sbu_align.zip"
    with pytest.raises(FetchError, match="could not download cc_sbu_align.zip"):
        fetch_gdrive("cc_sbu_align", BIG_ID, dest, retries=0, **through(drive))
    assert not dest.exists()
    # gdown's partial file, kept for the next run, and what it is a partial download of.
    sidecar, partial = sorted(tmp_path.iterdir(), key=lambda path: path.suffix)  # .json, .part
    assert partial.stat().st_size == drop and partial.name.startswith("cc_sbu_align.zip.part")
    assert json.loads(sidecar.read_text()) == {"file_id": BIG_ID, "total": len(data)}
    report = fetch_gdrive("cc_sbu_align", BIG_ID, dest, sha256=sha256(data), **through(drive))
    assert report["resumed_from"] == drop and report["bytes"] == len(data) - drop
    assert dest.read_bytes() == data


@pytest.mark.parametrize("same_size", [False, True])
def test_a_file_changed_on_drive_is_not_spliced(tmp_path, same_size):
    """A partial download of the old version must not be continued into the new one.

    gdown's cross-run resume asks with the new version's validator, so Drive would happily
    send the rest of the new file: a changed size must be caught without a checksum, and a
    same-size change by the checksum.
    """
    root, out = tmp_path / "drive", tmp_path / "out"
    served = root / BIG_ID / "cc_sbu_align.zip"
    served.parent.mkdir(parents=True)
    # Zip-like bytes: with no checksum, the file must at least start like a zip.
    old = b"PK\x03\x04" + random.Random(1).randbytes(2 * MiB)
    new = b"PK\x03\x04" + random.Random(2).randbytes(2 * MiB + (0 if same_size else 1000))
    served.write_bytes(old)
    dest = out / "cc_sbu_align.zip"
    with DriveStandin(root, faults={BIG_ID: {"drop_after": CHUNK_SIZE}}) as drive:
        with pytest.raises(FetchError):
            fetch_gdrive("cc_sbu_align", BIG_ID, dest, retries=0, **through(drive))
        served.write_bytes(new)
        os.utime(served, ns=(0, 10**18))  # and a new ETag / Last-Modified
        checksum = {"sha256": sha256(new)} if same_size else {}
        report = fetch_gdrive("cc_sbu_align", BIG_ID, dest, **checksum, **through(drive))
    assert dest.read_bytes() == new
    assert report["resumed_from"] == 0 and report["attempts"] == 2
    assert leftovers(out, keep=dest.name) == []


def test_wrong_bytes_are_refused_and_nothing_is_installed(drive, seeded, tmp_path):
    data = seeded[BIG_ID]
    drive.set_faults({BIG_ID: {"wrong_bytes": 12345}})
    dest = tmp_path / "cc_sbu_align.zip"
    with pytest.raises(FetchError) as caught:
        fetch_gdrive(
            "cc_sbu_align", BIG_ID, dest, size=len(data), sha256=sha256(data), **through(drive)
        )
    assert "sha256" in str(caught.value) and sha256(data) in str(caught.value)
    assert leftovers(tmp_path) == []
    # Wrong bytes from the start are not retried: the warning page and one transfer.
    assert drive.stats()["files"][BIG_ID]["statuses"] == {"200": 2}


def test_a_file_of_the_wrong_size_is_refused_early(drive, seeded, tmp_path):
    dest = tmp_path / "small.bin"
    with pytest.raises(FetchError, match="Drive announces 10000 bytes, the catalog says 10,001"):
        fetch_gdrive("small", SMALL_ID, dest, size=10_001, **through(drive))
    assert leftovers(tmp_path) == []


def test_html_delivered_as_the_file_is_not_installed(drive, seeded, tmp_path):
    dest = tmp_path / "archive.zip"
    with pytest.raises(FetchError, match="delivered an HTML page as archive.zip"):
        fetch_gdrive("archive", HTML_ID, dest, **through(drive))
    assert leftovers(tmp_path) == []
    # ...unless the catalog's checksum says that page is the file.
    fetch_gdrive("archive", HTML_ID, dest, sha256=sha256(seeded[HTML_ID]), **through(drive))
    assert dest.read_bytes() == seeded[HTML_ID]


def test_finished_part_of_a_killed_run_is_verified_not_refetched(drive, seeded, tmp_path):
    dest = tmp_path / "small.bin"
    dest.with_name("small.bin.part").write_bytes(seeded[SMALL_ID])
    report = fetch_gdrive(
        "small", SMALL_ID, dest, sha256=sha256(seeded[SMALL_ID]), **through(drive)
    )
    assert report["bytes"] == 0 and dest.read_bytes() == seeded[SMALL_ID]
    assert SMALL_ID not in drive.stats()["files"]  # Drive was not asked


def test_wrong_finished_part_is_discarded_and_fetched_again(drive, seeded, tmp_path):
    dest = tmp_path / "small.bin"
    dest.with_name("small.bin.part").write_bytes(b"x" * 10_000)
    report = fetch_gdrive(
        "small", SMALL_ID, dest, sha256=sha256(seeded[SMALL_ID]), **through(drive)
    )
    assert report["attempts"] == 2 and report["resumed_from"] == 0
    assert dest.read_bytes() == seeded[SMALL_ID]


def test_standin_runs_as_a_child_process(drive_root, seeded, tmp_path):
    """The CLI the demo and e2e tests start: `python -m standin.drive`."""
    ca_file = tmp_path / "state" / "drive-ca.pem"
    ca_file.parent.mkdir()
    args = ["--root", str(drive_root), "--ca-file", str(ca_file)]
    with ChildService("standin.drive", args, tmp_path / "state") as address:
        dest = tmp_path / "out" / "small.bin"
        report = fetch_gdrive(
            "small",
            SMALL_ID,
            dest,
            proxy=address,
            ca_bundle=str(ca_file),
            sha256=sha256(seeded[SMALL_ID]),
            **FAST,
        )
        assert report["bytes"] == 10_000 and dest.read_bytes() == seeded[SMALL_ID]


PAGE_ID = "1CommentedPageOnDrive0000000000"
PAGE = b"<!-- Google Drive -->\n<head><title>Google Drive - Virus scan</title></head>\n"


@pytest.mark.parametrize("name", ["vg_caption.json", "cc_sbu_align.zip"])
def test_unverified_page_that_is_no_html_document_start_is_not_installed(tmp_path, name):
    """No checksum in the catalog: a page starting with a comment or <head> (which the old
    `<!doctype html` / `<html` check let through) must not become the JSON file or zip."""
    root = tmp_path / "drive"
    (root / PAGE_ID).mkdir(parents=True)
    (root / PAGE_ID / name).write_bytes(PAGE)
    dest = tmp_path / "out" / name
    with DriveStandin(root) as drive, pytest.raises(FetchError) as caught:
        fetch_gdrive("lavis_vg_caption", PAGE_ID, dest, **through(drive))
    message = str(caught.value)
    assert f"delivered an HTML page as {name}" in message and "it was not installed" in message
    assert f"manual_dir as {name}" in message
    assert "the partial file was discarded" in message  # nothing kept: no resume promised
    assert leftovers(tmp_path / "out") == []


def test_unverified_json_is_installed(tmp_path):
    root = tmp_path / "drive"
    (root / PAGE_ID).mkdir(parents=True)
    (root / PAGE_ID / "vg_caption.json").write_bytes(b'[{"caption": "a dog"}]')
    dest = tmp_path / "out" / "vg_caption.json"
    with DriveStandin(root) as drive:
        fetch_gdrive("lavis_vg_caption", PAGE_ID, dest, **through(drive))
    assert json.loads(dest.read_text()) == [{"caption": "a dog"}]


def test_preflight_probe_names_a_quota_a_missing_file_and_passes_a_good_one(drive, seeded):
    from vlprep.gdrive import drive_problem

    where = {"proxy": drive.proxy, "ca_bundle": str(drive.ca_file)}
    assert drive_problem("cc_sbu_align", BIG_ID, **where) is None  # its confirmation page
    assert drive_problem("small", SMALL_ID, **where) is None
    drive.set_faults({BIG_ID: {"quota": True}})
    quota = drive_problem("cc_sbu_align", BIG_ID, **where)
    assert quota.startswith("cc_sbu_align: Google Drive answers") and "quota page" in quota
    assert "manual_dir" in quota and f"/file/d/{BIG_ID}/view" in quota
    drive.set_faults({BIG_ID: {"private": True}})
    assert "a sign-in page" in drive_problem("cc_sbu_align", BIG_ID, **where)
    drive.set_faults({})
    assert "HTTP 404" in drive_problem("gone", "1NoSuchFileOnDrive000000000000", **where)
