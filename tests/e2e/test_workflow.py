"""The whole workflow, end to end, against the stand-in world on loopback."""

import json
import os
import random
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import webdataset as wds

from tests.e2e.conftest import REPO, make_config, run_snakemake, snakemake_cmd, tree_snapshot
from vlprep import atomic

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def reference(tmp_path_factory, world, standin, hub_standin):
    """One uninterrupted build of `all`: the outputs every other run must reproduce."""
    standin.clear_faults()
    tmp = tmp_path_factory.mktemp("reference")
    config = make_config(tmp, world, standin, hub_standin)
    started = time.monotonic()
    result = run_snakemake(config, "all")
    assert result.returncode == 0, result.stderr[-4000:]
    return {"config": config, "data": tmp / "data", "seconds": time.monotonic() - started}


def test_all_builds_every_product(reference):
    data = reference["data"]
    coco = data / "g3m" / "coco"
    for part in ("annotations", "train2017", "val2017"):
        assert (coco / part).is_symlink(), part
        assert not os.path.isabs(os.readlink(coco / part))
    assert (coco / "annotations" / "captions_val2017.json").is_file()
    folders = sorted(p.name for p in (coco / "coco_valid").iterdir() if p.is_dir())
    assert folders == ["00000", "00001"]
    # nxtp's grouping: the first folder holds 2,998 images, later ones up to 2,999.
    assert len(list((coco / "coco_valid" / "00000").glob("*.jpg"))) == 2998
    cosmos = data / "cosmos" / "coco"
    assert (cosmos / "images" / "val2017").is_dir()
    assert json.loads((cosmos / "annotations" / "captions_val2017.json").read_text())["images"]


def test_tars_are_complete_sorted_and_readable_by_webdataset(reference):
    for split in ("coco_valid", "coco_train"):
        root = reference["data"] / "g3m" / "coco" / split
        for tar_path in sorted(root.glob("*.tar")):
            folder = root / tar_path.stem
            with tarfile.open(tar_path) as tar:
                members = tar.getmembers()
            names = [m.name for m in members]
            assert names == sorted(names)
            assert {m.mtime for m in members} == {members[0].mtime}
            assert {(m.uid, m.gid) for m in members} == {(0, 0)}
            samples = list(wds.WebDataset(str(tar_path), shardshuffle=False))
            assert len(samples) == len(list(folder.glob("*.jpg")))
            for sample in samples:
                assert {"jpg", "txt", "json"} <= set(sample), sample["__key__"]
                assert sample["jpg"] == (folder / f"{sample['__key__']}.jpg").read_bytes()


def test_second_run_has_nothing_to_do(reference):
    result = run_snakemake(reference["config"], "all", "--dry-run")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Nothing to be done" in result.stdout + result.stderr


def test_link_modes_give_the_same_tars(reference, tmp_path, world, standin):
    config = make_config(tmp_path, world, standin, link_mode="hardlink")
    result = run_snakemake(config, "coco_valid")
    assert result.returncode == 0, result.stderr[-4000:]
    built = tmp_path / "data" / "g3m" / "coco"
    expected = reference["data"] / "g3m" / "coco"
    assert not (built / "val2017").is_symlink()
    for tar_path in sorted((expected / "coco_valid").glob("*.tar")):
        assert (built / "coco_valid" / tar_path.name).read_bytes() == tar_path.read_bytes()
    sample = next((built / "coco_valid" / "00000").glob("*.jpg"))
    assert not sample.is_symlink() and sample.stat().st_nlink > 1


def staged_under(root: Path) -> bool:
    return root.is_dir() and any(atomic.TMP_MARK in p.name for p in root.iterdir())


# Where to kill a run: the first moment each predicate on (data_root, seconds since start) holds.
KILL_POINTS = {
    "mid-download": lambda data, _: any(
        p.stat().st_size > 0 for p in data.glob("downloads/*/*.part") if p.exists()
    ),
    "mid-extraction": lambda data, _: staged_under(data / "extracted"),
    "mid-conversion": lambda data, _: staged_under(data / "g3m" / "coco"),
}


def kill_when(config: Path, data: Path, ready, timeout: float = 120) -> None:
    """Run `all`; SIGKILL snakemake and all its jobs once `ready(data, seconds)` holds."""
    proc = subprocess.Popen(
        snakemake_cmd(config, "all"),
        cwd=REPO,
        env={**os.environ, "VLPREP_PROGRESS": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    started = time.monotonic()
    try:
        while not ready(data, time.monotonic() - started):
            if proc.poll() is not None or time.monotonic() - started > timeout:
                pytest.fail("the run ended before reaching its kill point")
            time.sleep(0.005)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()


def interrupted_work(data: Path) -> str:
    """What a kill left behind: partial downloads and staged (hidden, unfinished) outputs."""
    partial = sorted(p.name for p in data.rglob("*.part"))
    staged = sorted(p.name for p in data.rglob(f"*{atomic.TMP_MARK}*"))
    return f"partial downloads {partial}, staged outputs {staged}"


def after(delay: float):
    return lambda data, seconds: seconds >= delay


@pytest.mark.slow
def test_killed_runs_resume_to_identical_outputs(
    reference, tmp_path, world, fresh_standin, hub_standin
):
    # Slow the archives down so that a kill lands inside a download, not between two.
    fresh_standin.set_faults([{"kind": "trickle", "path": "*.zip", "rate": 4_000_000}])
    expected = tree_snapshot(reference["data"])
    rng = random.Random(20261121)
    points = dict(KILL_POINTS)
    for _ in range(2):
        delay = rng.uniform(1.0, max(1.5, 0.8 * reference["seconds"]))
        points[f"after {delay:.1f} s"] = after(delay)
    for name, ready in points.items():
        run_dir = tmp_path / name.replace(" ", "_")
        config = make_config(run_dir, world, fresh_standin, hub_standin)
        kill_when(config, run_dir / "data", ready)
        print(f"\nkilled {name}: {interrupted_work(run_dir / 'data')}")
        # A SIGKILLed snakemake cannot release its lock: the rerun does, with no --unlock.
        result = run_snakemake(config, "all")
        assert result.returncode == 0, f"killed {name}: {result.stderr[-4000:]}"
        assert "LockException" not in result.stderr
        got = tree_snapshot(run_dir / "data")
        assert got.keys() == expected.keys(), f"killed {name}"
        assert got == expected, f"killed {name}"


def test_html_page_fails_with_entry_url_and_nothing_at_final_path(tmp_path, world, fresh_standin):
    fresh_standin.set_faults([{"kind": "html", "path": "*/val2017.zip"}])
    config = make_config(tmp_path, world, fresh_standin)
    result = run_snakemake(config, "cosmos_coco")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    log = (
        tmp_path / "data" / "logs" / "fetch_file" / "coco2017_val" / "val2017.zip.log"
    ).read_text()
    assert "coco2017_val" in log and "val2017.zip" in log and "HTML" in log.upper()
    assert "fetch_file" in output
    assert not (tmp_path / "data" / "downloads" / "coco2017_val" / "val2017.zip").exists()
