"""GLaMM's referring-expression, region-caption and GranD-f data end to end: the Wayback zips
through the http stand-in, the Drive zips through the Drive stand-in, GranD-f through the hub
stand-in, one run of the real workflow, then GLaMM's own loading logic on the built tree."""

import json
import pickle

import pytest

from standin.drive import DriveStandin
from standin.world import served_path
from tests.e2e.conftest import make_config, run_snakemake
from vlprep.catalog import load_catalog
from vlprep.consumers import check_glamm
from vlprep.glamm_refer import GRANDF_TRAIN, MDETR_COCO, MDETR_FLICKR, REFER_SPLIT_BY

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PRODUCTS = ["glamm_refer_segm", "glamm_mdetr", "glamm_grandf"]


@pytest.fixture(scope="module")
def built(tmp_path_factory, world, standin, hub_standin):
    tmp = tmp_path_factory.mktemp("glamm_refer")
    with DriveStandin(world.parent / "drive") as drive:
        config = make_config(
            tmp, world, standin, hub_standin, drive=(drive.proxy, str(drive.ca_file))
        )
        result = run_snakemake(config, *PRODUCTS)
    assert result.returncode == 0, result.stderr[-6000:]
    return {"data": tmp / "data", "glamm": tmp / "data" / "glamm", "catalog": world}


def test_the_wayback_urls_are_served_as_they_are(world):
    """The http stand-in serves www/<host>/<path>: the Wayback `id_` URL, `+` and all."""
    catalog = load_catalog(world)
    for entry in ("glamm_refcoco", "glamm_refcoco_plus", "glamm_refclef", "glamm_saiapr"):
        url = catalog[entry]["url"]
        assert url.startswith("https://web.archive.org/web/") and "id_/http" in url
        assert (world.parent / "www" / served_path(url)).is_file(), url


def test_refer_segm_is_where_refer_reads_it(built):
    refer = built["glamm"] / "Refer_Segm"
    for dataset, split_by in REFER_SPLIT_BY.items():
        with open(refer / dataset / f"refs({split_by}).p", "rb") as f:
            refs = pickle.load(f)
        instances = json.loads((refer / dataset / "instances.json").read_text())
        assert any(ref["split"] == "train" for ref in refs)
        assert {ref["image_id"] for ref in refs} <= {img["id"] for img in instances["images"]}
    clef = json.loads((refer / "refclef" / "instances.json").read_text())
    for image in clef["images"]:
        assert (refer / "images" / "saiapr_tc-12" / image["file_name"]).is_file()


def test_mdetr_files_at_both_code_paths_stored_once(built):
    glamm = built["glamm"]
    for name in MDETR_COCO:
        assert (glamm / "RefCoco_Reg" / "mdetr_annotations" / name).is_file()
    flickr = glamm / "flikcr_30k" / "mdetr_annotations" / MDETR_FLICKR
    store = built["data"] / "extracted" / "glamm_mdetr" / "mdetr_annotations" / MDETR_FLICKR
    assert flickr.resolve() == store.resolve() or flickr.stat().st_ino == store.stat().st_ino


def test_grandf_annotations_and_images_where_the_code_reads_them(built):
    grandf = built["glamm"] / "GranDf"
    for name in GRANDF_TRAIN:  # train AND val under annotations/train (GranDf_gcg_ds.py:49)
        assert (grandf / "annotations" / "train" / name).is_file()
    assert (grandf / "annotations" / "val_test" / "val_gcg_coco_mask_gt.json").is_file()
    assert any((grandf / "GranDf_HA_images" / "train").glob("sa_*.jpg"))
    assert any((grandf / "GranDf_HA_images" / "val_test").glob("sa_*.jpg"))
    assert not (built["glamm"] / "GranDf_HA_images").exists()  # the doc's level, not the code's
    # the hub revision was pinned: the stand-in's sha is what was downloaded
    revision = load_catalog(built["catalog"])["glamm_grandf"]["revision"]
    assert len(revision) == 40


def test_glamm_checks_pass_on_the_built_tree(built):
    assert check_glamm(built["glamm"], PRODUCTS) == []
    # built alone, the products hold the COCO and Flickr folders their sets open
    for folder in (
        "Refer_Segm/coco_2014/train2014",
        "RefCoco_Reg/coco_2014",
        "flikcr_30k/flickr30k-images",
    ):
        assert any((built["glamm"] / folder).iterdir()), folder


def test_checks_see_every_coco_set_missing_its_images(built, tmp_path):
    """With Refer_Segm/coco_2014/train2014 empty, every COCO set's train images are reported
    missing where RefCOCO_Segm_ds.py:83-84 opens them."""
    import shutil

    glamm = tmp_path / "glamm"
    shutil.copytree(built["glamm"], glamm, symlinks=False)
    shutil.rmtree(glamm / "Refer_Segm" / "coco_2014" / "train2014")
    (glamm / "Refer_Segm" / "coco_2014" / "train2014").mkdir()
    problems = check_glamm(glamm, ["glamm_refer_segm"])
    assert len(problems) == 3 and all("RefCOCO_Segm_ds.py:83-84" in p for p in problems)
