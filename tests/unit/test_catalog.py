"""The catalog and config are checked before any job runs; mistakes name the entry and key."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vlprep.catalog import load_catalog
from vlprep.errors import CatalogError

REPO = Path(__file__).resolve().parents[2]
REAL = REPO / "config" / "catalog.yaml"


def write_catalog(tmp_path: Path, mutate) -> Path:
    catalog = yaml.safe_load(REAL.read_text())
    mutate(catalog)
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog))
    return path


def test_real_catalog_has_coco_2014_and_2017_with_checksums():
    catalog = load_catalog(REAL)
    expected = {
        "coco2014_train", "coco2014_val", "coco2014_test", "coco2015_test",
        "coco2017_train", "coco2017_val", "coco2017_annotations",
    }  # fmt: skip
    assert expected <= set(catalog)
    for entry_id in expected:
        entry = catalog[entry_id]
        assert len(entry["sha256"]) == 64 and len(entry["md5"]) == 32
        assert entry["size"] > 100_000_000
        assert entry["license"] and entry["citation"]
    assert catalog["coco2017_val"]["filename"] == "val2017.zip"
    # The LAVIS script repeats test2014's md5 for test2015; the catalog must not.
    assert catalog["coco2015_test"]["md5"] != catalog["coco2014_test"]["md5"]


def test_hub_entries_name_repo_and_revision():
    catalog = load_catalog(REAL)
    for entry_id in ("laion_coco_meta", "cc3m_wds"):
        entry = catalog[entry_id]
        assert entry["kind"] == "hf" and "/" in entry["repo"] and entry["revision"]
        assert entry["license"] and entry["citation"]


def test_hub_entry_without_revision_is_refused(tmp_path):
    def unpinned(catalog):
        del catalog["cc3m_wds"]["revision"]

    with pytest.raises(CatalogError, match="cc3m_wds.*revision"):
        load_catalog(write_catalog(tmp_path, unpinned))


def test_key_typo_is_named(tmp_path):
    def typo(catalog):
        catalog["coco2017_val"]["sah256"] = catalog["coco2017_val"].pop("sha256")

    with pytest.raises(CatalogError) as err:
        load_catalog(write_catalog(tmp_path, typo))
    assert "coco2017_val" in str(err.value) and "sah256" in str(err.value)


def test_malformed_checksum_is_named(tmp_path):
    def bad(catalog):
        catalog["coco2014_val"]["md5"] = "not-a-checksum"

    with pytest.raises(CatalogError) as err:
        load_catalog(write_catalog(tmp_path, bad))
    message = str(err.value)
    assert "coco2014_val" in message and "md5" in message and "not-a-checksum" in message


@pytest.mark.parametrize("value", ["A" * 40, "0" * 39, "0" * 64, "not-a-checksum"])
def test_malformed_sha1_is_named(tmp_path, value):
    def bad(catalog):
        catalog["coco2014_val"]["sha1"] = value

    with pytest.raises(CatalogError) as err:
        load_catalog(write_catalog(tmp_path, bad))
    message = str(err.value)
    assert "coco2014_val" in message and "sha1" in message and value in message


def test_sha1_is_a_catalog_checksum(tmp_path):
    def sha1_only(catalog):
        del catalog["coco2014_val"]["sha256"], catalog["coco2014_val"]["md5"]
        catalog["coco2014_val"]["sha1"] = "0123456789abcdef0123456789abcdef01234567"

    catalog = load_catalog(write_catalog(tmp_path, sha1_only))
    assert catalog["coco2014_val"]["sha1"] == "0123456789abcdef0123456789abcdef01234567"


def test_all_problems_reported_at_once(tmp_path):
    def two(catalog):
        catalog["coco2017_val"]["size"] = "big"
        catalog["coco2017_train"]["url"] = "ftp://example/x.zip"

    with pytest.raises(CatalogError) as err:
        load_catalog(write_catalog(tmp_path, two))
    assert "2 problem(s)" in str(err.value)


def test_snakemake_refuses_a_bad_catalog_before_any_job(tmp_path):
    def bad(catalog):
        catalog["coco2017_val"]["sha256"] = "0" * 63

    catalog = write_catalog(tmp_path, bad)
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "coco_valid", "--config", f"catalog={catalog}"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "coco2017_val" in result.stderr + result.stdout
    assert "sha256" in result.stderr + result.stdout


def test_snakemake_refuses_an_unknown_config_key():
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "coco_valid", "--config", "lnk_mode=copy"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "lnk_mode" in result.stderr + result.stdout
