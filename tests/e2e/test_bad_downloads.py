"""Through Snakemake: an archive the catalog has no checksum for, that is a page or cut off,
fails with a clear message and is fetched again by the next run; a broken file in manual_dir
is named as the one to replace, never re-linked in a loop."""

import io
import zipfile

import pytest
import yaml

from standin.server import StandinServer
from tests.e2e.conftest import make_config, run_snakemake

pytestmark = pytest.mark.e2e

ENTRY = "thing_zip"
HOST = "files.standin.invalid"
PAGE = b"<!-- served by the CDN -->\n<head><title>Bandwidth exceeded</title></head>\n"


def good_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("thing/README.txt", "the real contents\n" * 100)
    return out.getvalue()


GOOD = good_zip()
CUT = GOOD[: len(GOOD) // 2]  # starts like a zip: only unpacking finds it broken


def unverified_catalog(tmp_path, world):
    """The world's catalog plus a small zip published without size or checksum, as GQA's,
    VG's and cc_sbu_align's are."""
    catalog = yaml.safe_load(world.read_text())
    catalog[ENTRY] = {
        "description": "a small archive with no published checksum",
        "kind": "http",
        "url": f"http://{HOST}/thing/thing.zip",
        "archive": "zip",
        "license": "test",
        "citation": "test",
    }
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog))
    return path


@pytest.fixture
def host(tmp_path):
    """A file host of our own, so the served file can be broken and then fixed."""
    (tmp_path / "www" / HOST / "thing").mkdir(parents=True)
    with StandinServer(tmp_path / "www") as server:
        yield server


def serve(tmp_path, data: bytes) -> None:
    (tmp_path / "www" / HOST / "thing" / "thing.zip").write_bytes(data)


@pytest.mark.parametrize("served", [PAGE, CUT], ids=["page-as-zip", "cut-off-zip"])
def test_broken_unverified_archive_is_fetched_again_once_the_host_is_fixed(
    tmp_path, world, host, served
):
    config = make_config(tmp_path, unverified_catalog(tmp_path, world), host)
    data = tmp_path / "data"
    download = data / "downloads" / ENTRY / "thing.zip"
    target = str(data / "extracted" / ENTRY)
    serve(tmp_path, served)

    result = run_snakemake(config, target)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    if served is PAGE:  # refused as it arrived: never installed
        said = "HTML page"
        log = data / "logs" / "fetch_file" / ENTRY / "thing.zip.log"
    else:  # installed (nothing could tell), then found broken and removed from the store
        said = "deleted from the store, and the next run downloads it again"
        assert f"{download} (catalog entry {ENTRY}) is not a sound zip archive" in output
        log = data / "logs" / "extract_archive" / f"{ENTRY}.log"
    assert said in output and said in log.read_text()  # in the job's log too
    assert str(data / "manual" / "thing.zip") in output  # the by-hand way
    assert not download.exists()
    assert not (data / "extracted" / ENTRY).exists()

    serve(tmp_path, GOOD)
    host.reset_stats()
    result = run_snakemake(config, target)
    assert result.returncode == 0, result.stderr[-3000:]
    assert host.stats()[f"{HOST}/thing/thing.zip"]["requests"] == 1  # fetched again
    readme = data / "extracted" / ENTRY / "thing" / "README.txt"
    assert readme.read_text() == "the real contents\n" * 100


def test_broken_manual_file_is_named_and_not_linked_again(tmp_path, world, host):
    config = make_config(tmp_path, unverified_catalog(tmp_path, world), host)
    data = tmp_path / "data"
    manual = data / "manual" / "thing.zip"
    manual.parent.mkdir(parents=True)
    manual.write_bytes(CUT)
    serve(tmp_path, GOOD)  # the host is fine, but manual_dir wins
    target = str(data / "extracted" / ENTRY)

    for _ in range(2):  # a rerun says the same: the user's file is the one to replace
        result = run_snakemake(config, target)
        assert result.returncode != 0
        output = result.stdout + result.stderr
        assert f"It is your file {manual} from manual_dir" in output
        assert f"replace {manual} with a good copy" in output
        assert "next run downloads it again" not in output
        assert not (data / "downloads" / ENTRY / "thing.zip").exists()
        assert manual.read_bytes() == CUT  # never touched
    assert host.stats() == {}  # nothing was downloaded

    manual.write_bytes(GOOD)
    result = run_snakemake(config, target)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (data / "extracted" / ENTRY / "thing" / "README.txt").exists()
    assert host.stats() == {}
