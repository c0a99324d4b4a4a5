"""LAION-115M, Laion-COCO and CC3M end to end on the stand-in world: hub, image host, parts."""

import json
from pathlib import Path

import pytest
import webdataset as wds

from tests.e2e.conftest import make_config, run_snakemake

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Snakemake's marker in every directory output; not data.
SNAKEMAKE_MARK = ".snakemake_timestamp"


@pytest.fixture(scope="module")
def built(tmp_path_factory, world, standin, hub_standin, image_host):
    """One build of the web-scale products through their own targets (test_demo builds the
    whole lavis and g3m bundles, with the S3 and Drive stand-ins)."""
    tmp = tmp_path_factory.mktemp("webscale")
    config = make_config(tmp, world, standin, hub_standin)
    # minigpt4's stage 1 by name: its stage 2 (cc_sbu_align) needs the Drive stand-in
    targets = ("laion115m", "cc_sbu", "laion_coco", "sbu", "nocaps", "cc3m")
    result = run_snakemake(config, *targets, images=image_host)
    assert result.returncode == 0, result.stderr[-6000:]
    return {"config": config, "data": tmp / "data"}


def read_back(folder):
    samples = []
    for tar in sorted(folder.glob("*.tar")):
        samples += list(wds.WebDataset(str(tar), shardshuffle=False))
    return samples


def test_cc3m_is_split_for_nxtp(built):
    g3m = built["data"] / "g3m" / "cc3m"
    train, valid = sorted((g3m / "cc3m").glob("*.tar")), sorted((g3m / "cc3m_valid").glob("*.tar"))
    assert train and valid
    assert all(t.name.startswith("cc3m-train-") for t in train)
    assert all(t.name.startswith("cc3m-validation-") for t in valid)
    for sample in read_back(g3m / "cc3m") + read_back(g3m / "cc3m_valid"):
        assert {"jpg", "txt"} <= set(sample)


@pytest.mark.parametrize(
    ("dataset", "folder", "rows"),
    [
        ("laion115m", "minigpt4/laion/laion_dataset", 600),
        ("cc_sbu", "minigpt4/cc_sbu/cc_sbu_dataset", 300),
        ("laion_coco", "lavis/laion/laion400m-data", 300),
    ],
)
def test_url_lists_download_in_parts_and_account_for_every_row(built, dataset, folder, rows):
    shards = built["data"] / folder
    report = json.loads((built["data"] / "reports" / f"{dataset}.json").read_text())
    # Every row offered was attempted, and succeeded or failed for a recorded reason.
    assert report["attempted"] == rows
    failed = sum(report["failed_by_reason"].values())
    assert report["succeeded"] + failed == rows
    assert 0 < report["succeeded"] < rows
    tars = sorted(shards.glob("*.tar"))
    # 100 rows per shard, 200 per part: shard names run on across parts.
    assert [t.stem for t in tars] == [f"{i:05d}" for i in range(rows // 100)]
    samples = read_back(shards)
    assert len(samples) == report["succeeded"]
    for sample in samples:
        meta = json.loads(sample["json"])
        assert {"jpg", "json"} <= set(sample) and meta["status"] == "success"
        if dataset == "laion_coco":
            # VPGTrans reads the caption from these two columns; the seed passes them through.
            assert meta["all_captions"] and meta["all_similarities"]
        else:
            # MiniGPT-4 reads json["caption"].
            assert meta["caption"] is not None
        # img2dataset keys are <shard id><row in shard>: parts keep the global numbering.
        assert sample["__key__"][:5] == sample["__url__"].rsplit("/", 1)[-1][:5]


def test_laion115m_tsv_is_next_to_its_json(built):
    laion = built["data"] / "minigpt4" / "laion"
    header = (laion / "laion_synthetic_filtered_large.tsv").read_bytes().split(b"\r\n", 1)[0]
    assert header == b"caption\turl"
    assert (laion / "laion_synthetic_filtered_large.json").exists()


def test_retry_failed_recovers_rows_whose_host_came_back(built, image_host):
    image_host.recover()
    result = run_snakemake(built["config"], "laion_coco_retry_failed", images=image_host)
    assert result.returncode == 0, result.stderr[-6000:]
    report = json.loads((built["data"] / "reports" / "laion_coco.retry.json").read_text())
    first = json.loads((built["data"] / "reports" / "laion_coco.json").read_text())
    assert report["rows_retried"] == first["attempted"] - first["succeeded"]
    assert report["recovered"] > 0
    assert report["recovered"] + report["still_failed"] == report["rows_retried"]


def test_sbu_images_sit_flat_under_their_annotation_names(built):
    lavis = built["data"] / "lavis" / "sbu_captions"
    annotations = json.loads((lavis / "annotations" / "sbu.json").read_text())
    upstream = json.loads(
        next((built["data"] / "downloads" / "sbu_json").glob("[!.]*.json")).read_text()
    )
    names = {Path(a["image"]).name for a in annotations}
    placed = {p.name for p in (lavis / "images").iterdir() if p.name != SNAKEMAKE_MARK}
    report = json.loads((built["data"] / "reports" / "sbu.json").read_text())
    assert report["attempted"] == len(upstream) > len(annotations)
    # VPGTrans opens os.path.join(vis_root, basename(ann["image"])): the layout's sbu.json
    # names exactly the images that arrived, no more (a training run would die on a missing one)
    assert placed and names == placed
    assert all((lavis / "images" / name).read_bytes()[:2] == b"\xff\xd8" for name in placed)
    # nxtp reads the same download as sorted webdataset tars with jpg + txt per key.
    samples = read_back(built["data"] / "g3m" / "sbu" / "sbu")
    assert len(samples) == report["succeeded"]
    assert all({"jpg", "txt"} <= set(sample) for sample in samples)


@pytest.mark.parametrize("split", ["val", "test"])
def test_nocaps_images_keep_their_file_names(built, split):
    info = next((built["data"] / "downloads" / f"nocaps_{split}_info").glob("[!.]*.json"))
    names = {image["file_name"] for image in json.loads(info.read_text())["images"]}
    images = built["data"] / "lavis" / "nocaps" / "images" / split
    report = json.loads((built["data"] / "reports" / f"nocaps_{split}.json").read_text())
    placed = sorted(p for p in images.iterdir() if p.name != SNAKEMAKE_MARK)
    assert len(placed) == report["succeeded"] > 0
    assert {p.name for p in placed} <= names
    assert all(p.read_bytes()[:2] == b"\xff\xd8" for p in placed)
