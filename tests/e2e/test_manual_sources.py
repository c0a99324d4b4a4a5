"""Through Snakemake: manual files stop the run before any download, listing every one; once
in manual_dir they are verified and used; preflight reports before a long run."""

import hashlib
import json

import pytest
import yaml

from standin.drive import DriveStandin
from standin.world import place_manual_files
from tests.e2e.conftest import make_config, run_snakemake
from tests.e2e.test_dryrun import job_counts, snakemake

pytestmark = pytest.mark.e2e

FILES = {"signed_a": b"first signed file " * 500, "signed_b": b"second signed file " * 700}


def manual_catalog(tmp_path, world) -> tuple:
    """The world's catalog plus two files only a person can download."""
    catalog = yaml.safe_load(world.read_text())
    for entry, data in FILES.items():
        catalog[entry] = {
            "description": f"{entry} (behind a registration)",
            "kind": "manual",
            "filename": f"{entry}.bin",
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "instructions": f"log in at https://example.org/{entry} and download {entry}.bin",
            "license": "test",
            "citation": "test",
        }
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(catalog))
    return path


def test_missing_manual_files_stop_the_run_before_any_download(tmp_path, world, fresh_standin):
    catalog = manual_catalog(tmp_path, world)
    config = make_config(tmp_path, catalog, fresh_standin)
    data = tmp_path / "data"
    targets = [f"{data}/downloads/{e}/{e}.bin" for e in FILES]
    targets.append(f"{data}/downloads/coco2017_val/val2017.zip")
    result = run_snakemake(config, *targets)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "2 file(s) must be downloaded by hand" in output
    for entry, content in FILES.items():
        assert f"{data}/manual/{entry}.bin" in output
        assert f"https://example.org/{entry}" in output
        assert hashlib.sha256(content).hexdigest() in output
    assert fresh_standin.stats() == {}  # nothing was downloaded, not even the COCO zip
    assert not (data / "downloads").exists()

    manual = data / "manual"
    manual.mkdir(parents=True)
    (manual / "signed_a.bin").write_bytes(FILES["signed_a"])
    (manual / "signed_b.bin").write_bytes(FILES["signed_b"][:-1] + b"!")  # a damaged copy
    result = run_snakemake(config, *targets[:2])
    assert result.returncode != 0
    assert f"{manual}/signed_b.bin has sha256" in result.stdout + result.stderr
    assert not (data / "downloads" / "signed_b" / "signed_b.bin").exists()

    (manual / "signed_b.bin").write_bytes(FILES["signed_b"])
    result = run_snakemake(config, *targets[:2])
    assert result.returncode == 0, result.stderr[-3000:]
    for entry, content in FILES.items():
        assert (data / "downloads" / entry / f"{entry}.bin").read_bytes() == content
        assert (manual / f"{entry}.bin").exists()  # the user's copy stays


def test_preflight_reports_against_the_stand_ins(tmp_path, world, standin, hub_standin):
    config = make_config(tmp_path, world, standin, hub_standin)
    result = run_snakemake(config, "preflight")
    # Without the registration-only files, each is a problem that says where to get it.
    catalog = yaml.safe_load(world.read_text())
    # (ImageNet's official files are one of two routes: the gated hub is the one planned here)
    manual = {e: v for e, v in catalog.items() if v["kind"] == "manual" and "imagenet" not in e}
    assert result.returncode != 0
    for entry, source in manual.items():
        assert f"{entry}: save it as {tmp_path}/data/manual/{source['filename']}" in result.stderr
    place_manual_files(world.parent, tmp_path / "data" / "manual")
    result = run_snakemake(config, "preflight")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "data" / "reports" / "preflight.json").read_text())
    targets = report["targets"]
    # COCO sizes come from the catalog, hub sizes from the hub stand-in.
    coco = yaml.safe_load(world.read_text())
    assert targets["coco_valid"]["download"] == sum(
        coco[e]["size"] for e in ("coco2017_val", "coco2017_annotations")
    )
    assert targets["cc3m"]["download"] > 0 and targets["cc3m"]["unknown_sizes"] == []
    assert {"lavis", "g3m", "all"} <= targets.keys()
    assert "preflight report" in result.stderr
    assert not (tmp_path / "data" / "downloads").exists()  # nothing fetched


def test_dry_run_of_lavis_and_g3m_on_the_real_catalog(tmp_path):
    result = snakemake("-n", "lavis", "g3m", "--config", f"data_root={tmp_path}/data")
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    # 23 LAVIS files + sbu.json + filter_cap.json: 2 linked as they are, 19 keep only the
    # records whose image opens (9 image folders decoded once), 4 VQA companions follow
    assert counts["lavis_annotation"] == 2 and counts["lavis_annotation_filter"] == 19
    assert counts["lavis_annotation_companion"] == 4 and counts["check_images"] == 9
    assert counts["lavis_images"] == 7
    assert counts["vg_flatten"] == 1 and counts["openimages_wds"] == 1


def test_preflight_names_a_drive_file_behind_its_quota_page(tmp_path, world, standin, hub_standin):
    catalog = yaml.safe_load(world.read_text())
    drive_id = catalog["cc_sbu_align"]["drive_id"]
    with DriveStandin(world.parent / "drive") as drive:
        drive.set_faults({drive_id: {"quota": True}})
        config = make_config(
            tmp_path, world, standin, hub_standin, drive=(drive.proxy, str(drive.ca_file))
        )
        place_manual_files(world.parent, tmp_path / "data" / "manual")
        result = run_snakemake(config, "preflight")
        # the other Drive files answer: only the one behind its quota page is a problem
        problems = json.loads((tmp_path / "data" / "reports" / "preflight.json").read_text())
    assert result.returncode != 0
    (problem,) = problems["problems"]
    assert problem.startswith("cc_sbu_align: cannot be fetched now (Google Drive answers")
    assert "quota page" in problem and f"save it as {tmp_path}/data/manual/" in problem
