"""cosmos_imagenet through the real workflow against the stand-in world: both routes build
cosmos/imagenet/data/val_images/<wnid>/ (links into the store), the hub route fetches only the
val archive of the gated repo, and every way it cannot be had unattended stops before any
download with what to do (no token: 401; a wrong one: 403; manual files missing), while the
`cosmos` bundle skips it loudly and preflight lists it.

Expected shapes come from the generator (standin.imagenet), not from the workflow.
"""

import hashlib
import json
import os
from pathlib import Path

import pytest

from standin import imagenet as gen
from standin.world import place_manual_files
from tests.e2e.conftest import make_config, run_snakemake
from vlprep.consumers import check_cosmos

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TREE = Path("cosmos/imagenet/data/val_images")
PAGE = "https://huggingface.co/datasets/ILSVRC/imagenet-1k"
WRONG_TOKEN = "hf_notTheStandinTokenAAAAAAAAAAAA"


def contents(tree: Path) -> dict[str, list[str]]:
    """{wnid: sorted sha256 of its images}: what a class holds, whatever the file names."""
    return {
        folder.name: sorted(hashlib.sha256(f.read_bytes()).hexdigest() for f in folder.iterdir())
        for folder in sorted(tree.iterdir())
        if folder.is_dir()
    }


def expected_contents() -> dict[str, list[str]]:
    """The same, from the generator: val image n belongs to WNIDS[labels()[n-1] - 1]."""
    by_wnid: dict[str, list[str]] = {}
    for label, data in zip(gen.labels(), gen._images(), strict=True):
        by_wnid.setdefault(gen.WNIDS[label - 1], []).append(hashlib.sha256(data).hexdigest())
    return {wnid: sorted(hashes) for wnid, hashes in sorted(by_wnid.items())}


@pytest.fixture(scope="module")
def hub_build(tmp_path_factory, world, standin, hub_standin):
    """One hub-route build (imagenet_source: auto, nothing in manual_dir) with the stand-in
    token; returns (data root, the hub's requests during it)."""
    tmp = tmp_path_factory.mktemp("imagenet-hub")
    hub_standin.clear_faults()
    hub_standin.reset_stats()
    config = make_config(tmp, world, standin, hub_standin)
    proc = run_snakemake(config, "cosmos_imagenet")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return tmp / "data", hub_standin.requests()


def test_hub_route_builds_the_wnid_tree_from_the_val_archive_only(hub_build, world):
    data, requests = hub_build
    tree = data / TREE
    assert contents(tree) == expected_contents()
    assert sorted(p.name for p in tree.iterdir() if p.is_dir()) == sorted(gen.WNIDS)
    some = next((tree / gen.WNIDS[0]).iterdir())
    assert some.name.endswith(f"_{gen.WNIDS[0]}.JPEG") and some.is_symlink()
    assert os.path.realpath(some).startswith(str(data / "extracted" / "imagenet_val_hub") + "/")
    assert check_cosmos(data / "cosmos", ["cosmos_imagenet"], catalog=world) == []
    # Only the val archive was asked for, with the token; never the train/test archives.
    files = {r["path"].split("/resolve/", 1)[1].split("/", 1)[1] for r in requests
             if "/resolve/" in r["path"]}  # fmt: skip
    assert files == {"data/val_images.tar.gz"}
    gets = [r for r in requests if r["method"] == "GET" and "/resolve/" in r["path"]]
    assert gets and all(r["authorization"] and r["status"] == 200 for r in gets)
    for name in gen.NOT_FETCHED:
        assert not any(name in r["path"] for r in requests), name
    assert not (data / "downloads" / "imagenet_val_hub" / "data" / "train_images_0.tar.gz").exists()


def test_manual_route_labels_each_image_from_the_devkit(tmp_path, world, standin, hub_build):
    """auto with both official files in manual_dir: no hub, no token; the same classes hold
    the same images as the hub's names say."""
    place_manual_files(world.parent, tmp_path / "data" / "manual")
    config = make_config(tmp_path, world, standin)  # no hub at all
    proc = run_snakemake(config, "cosmos_imagenet", env={"HF_TOKEN": None})
    assert proc.returncode == 0, proc.stderr[-4000:]
    tree = tmp_path / "data" / TREE
    assert contents(tree) == expected_contents() == contents(hub_build[0] / TREE)
    names = sorted(f.name for f in (tree / gen.WNIDS[0]).iterdir())
    assert all(n.startswith("ILSVRC2012_val_") and n[15:23].isdigit() for n in names)
    assert not (tmp_path / "data" / "downloads" / "imagenet_val_hub").exists()
    assert check_cosmos(tmp_path / "data" / "cosmos", ["cosmos_imagenet"], catalog=world) == []


def test_hardlink_mode_stores_each_image_once(tmp_path, world, standin, hub_standin):
    config = make_config(tmp_path, world, standin, hub_standin, link_mode="hardlink")
    assert run_snakemake(config, "cosmos_imagenet").returncode == 0
    tree = tmp_path / "data" / TREE
    images = [f for d in tree.iterdir() if d.is_dir() for f in d.iterdir()]
    assert len(images) == gen.SHAPE["images"]
    assert all(f.stat().st_nlink == 2 and not f.is_symlink() for f in images)


def test_no_token_stops_before_any_download_saying_what_to_do(
    tmp_path, world, standin, hub_standin
):
    hub_standin.reset_stats()
    config = make_config(tmp_path, world, standin, hub_standin)
    proc = run_snakemake(config, "cosmos_imagenet", env={"HF_TOKEN": None})
    assert proc.returncode != 0
    err = " ".join(proc.stderr.split())
    assert "cosmos_imagenet cannot be built yet" in err
    assert "HF_TOKEN is not set (the hub answered 401" in err
    assert f"accept its terms at {PAGE}" in err and "export HF_TOKEN=<token>" in err
    # ... and the other way: the two official files, with their md5s, into manual_dir
    assert "ILSVRC2012_img_val.tar" in err and "29b22e2961454d5413ddabcf34fc5622" in err
    assert "ILSVRC2012_devkit_t12.tar.gz" in err and "fa75699e90414af021442c21a62c3abf" in err
    requests = hub_standin.requests()
    assert [r["method"] for r in requests if "/resolve/" in r["path"]] == ["HEAD"]
    assert not any(r["authorization"] for r in requests)
    assert not (tmp_path / "data" / "downloads").exists()


def test_wrong_token_is_refused_403_and_never_printed(tmp_path, world, standin, hub_standin):
    hub_standin.reset_stats()
    config = make_config(tmp_path, world, standin, hub_standin)
    proc = run_snakemake(config, "cosmos_imagenet", env={"HF_TOKEN": WRONG_TOKEN})
    assert proc.returncode != 0
    err = " ".join(proc.stderr.split())
    assert "the token in $HF_TOKEN has no access (the hub answered 403" in err
    assert f"accept its terms at {PAGE} with the account that owns the token" in err
    assert WRONG_TOKEN not in proc.stderr + proc.stdout
    assert all(r["method"] == "HEAD" for r in hub_standin.requests() if "/resolve/" in r["path"])
    assert not (tmp_path / "data" / "downloads").exists()


def test_the_cosmos_bundle_skips_it_loudly_without_a_token(tmp_path, world, standin, hub_standin):
    config = make_config(tmp_path, world, standin, hub_standin)
    proc = run_snakemake(config, "cosmos", "-n", env={"HF_TOKEN": None})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "vlprep: SKIPPING cosmos_imagenet (in bundle cosmos)" in proc.stderr
    assert (
        "HF_TOKEN is not set" in proc.stderr
        and "Then run: snakemake cosmos_imagenet" in proc.stderr
    )
    assert "cosmos_imagenet_val" not in proc.stdout and "imagenet_val_hub" not in proc.stdout
    # with the token, the same dry run plans it (and only its val archive)
    proc = run_snakemake(config, "cosmos", "-n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "SKIPPING cosmos_imagenet" not in proc.stderr
    assert "cosmos_imagenet_val" in proc.stdout and "entry=imagenet_val_hub" in proc.stdout


def test_manual_route_without_the_files_names_them(tmp_path, world, standin):
    config = make_config(tmp_path, world, standin, imagenet_source="manual")
    proc = run_snakemake(config, "cosmos_imagenet")
    assert proc.returncode != 0
    err = " ".join(proc.stderr.split())
    manual = tmp_path / "data" / "manual"
    assert f"save it as {manual / 'ILSVRC2012_img_val.tar'}" in err
    assert f"save it as {manual / 'ILSVRC2012_devkit_t12.tar.gz'}" in err
    assert "image-net.org" in err
    assert not (tmp_path / "data" / "downloads").exists()


def test_preflight_says_it_before_the_run(tmp_path, world, standin, hub_standin):
    config = make_config(tmp_path, world, standin, hub_standin)
    report = tmp_path / "data" / "reports" / "preflight.json"
    run_snakemake(config, "preflight", env={"HF_TOKEN": None})
    problems = json.loads(report.read_text())["problems"]
    gated = [p for p in problems if p.startswith("imagenet_val_hub ")]
    assert len(gated) == 1 and "HF_TOKEN is not set (the hub answered 401" in gated[0]
    run_snakemake(config, "preflight", env={"HF_TOKEN": WRONG_TOKEN})
    problems = json.loads(report.read_text())["problems"]
    assert any("has no access (the hub answered 403" in p for p in problems)
    run_snakemake(config, "preflight")  # the stand-in token: nothing to say about ImageNet
    problems = json.loads(report.read_text())["problems"]
    assert not [p for p in problems if "imagenet" in p.lower()], problems
