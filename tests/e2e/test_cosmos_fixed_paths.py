"""Through Snakemake: the cosmos bundle makes COSMOS's fixed roots point at the layout when the
config asks (alias, checkout patch), and the end of a run says how to point COSMOS at it."""

import os

from conftest import make_config, run_snakemake

from tests.cosmos_clone import fake_checkout


def test_fixed_paths_through_the_workflow(tmp_path, world, standin):
    checkout = fake_checkout(tmp_path / "cosmos-clone")
    alias = tmp_path / "mmsegmentation_datasets" / "data"
    config = make_config(
        tmp_path,
        world,
        standin,
        cosmos={"mmseg_alias": str(alias), "checkout": str(checkout), "apply_edits": False},
    )
    data = tmp_path / "data"
    # The bundle plans the report only because the config asks for it.
    dry = run_snakemake(config, "cosmos", "-n")
    assert dry.returncode == 0, dry.stderr
    assert "cosmos_fixed_paths" in dry.stdout

    report = data / "reports" / "cosmos" / "fixed_paths.txt"
    result = run_snakemake(config, "cosmos_coco", str(report))
    assert result.returncode == 0, result.stderr
    assert os.path.realpath(alias) == str(data / "cosmos" / "mmseg")
    text = report.read_text()
    assert f"9 line(s) of {checkout}" in text
    assert f"+data_root = '{data}/cosmos/mmseg/VOCdevkit/VOC2010'" in text
    assert (
        "/mmsegmentation_datasets/data"
        in (checkout / "src/training/seg_configs/cfg_voc21.py").read_text()
    )  # printed, not applied
    # the end of the run says how to point COSMOS at what it built
    assert f"--data-root-dir {data}/cosmos" in result.stderr
    assert "src/training/data.py:933" in result.stderr

    # Something else at the alias: refused, named, nothing replaced.
    alias.unlink()
    alias.mkdir()
    report.unlink()
    again = run_snakemake(config, str(report))
    assert again.returncode != 0
    assert f"{alias} exists (a folder); vlprep replaces nothing" in again.stderr + again.stdout
    assert alias.is_dir() and not alias.is_symlink() and not report.exists()


def test_without_the_settings_the_bundle_plans_no_fixed_paths(tmp_path, world, standin):
    config = make_config(tmp_path, world, standin)
    dry = run_snakemake(config, "cosmos", "-n")
    assert dry.returncode == 0, dry.stderr
    assert "cosmos_fixed_paths" not in dry.stdout
