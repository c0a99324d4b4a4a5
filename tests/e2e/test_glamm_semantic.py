"""GLaMM's Semantic_Segm/ sets that need more than a link (pascal_part, paco_lvis, mapillary),
through the real workflow against the stand-in world: built from nothing in one run, the
consumer checks clean, train.json what VLPart's rules make of the stand-in .mat files, the
VOC2010 images the shared store's; and without the Mapillary zip the glamm bundle leaves out
only that product, loudly."""

import json
import os
import re
import tarfile

import pytest

from standin.world import place_manual_files
from tests.e2e.conftest import make_config, run_snakemake
from tests.unit.test_pascal_part import vlpart_reference
from vlprep.consumers import check_glamm

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PRODUCTS = ["glamm_pascal_part", "glamm_paco_lvis", "glamm_mapillary"]


@pytest.fixture(scope="module")
def built(tmp_path_factory, world, standin):
    tmp = tmp_path_factory.mktemp("glamm_semantic")
    config = make_config(tmp, world, standin, link_mode="hardlink")
    place_manual_files(world.parent, tmp / "data" / "manual")
    result = run_snakemake(config, *PRODUCTS, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return tmp / "data"


def test_the_sets_pass_glamms_path_logic(built):
    assert check_glamm(built / "glamm", PRODUCTS) == []
    semantic = built / "glamm" / "Semantic_Segm"
    for path in (
        "pascal_part/train.json",
        "pascal_part/VOCdevkit/VOC2010/JPEGImages/2008_000002.jpg",
        "paco_lvis/annotations/paco_lvis_v1_train.json",
        "mapillary/config_v2.0.json",
    ):
        assert (semantic / path).is_file(), path
    assert sorted(os.listdir(semantic / "mapillary" / "training")) == ["images", "v2.0"]


def test_train_json_is_vlparts_conversion_of_the_downloaded_mat_files(built, tmp_path):
    # the stand-in tar as downloaded, unpacked here again: the reference reads it by itself
    (tar,) = (built / "downloads" / "pascal_part_annotations").glob("*.tar.gz")
    with tarfile.open(tar) as tf:
        tf.extractall(tmp_path, filter="data")
    split = built / "extracted/voc2010/VOCdevkit/VOC2010/ImageSets/Main/train.txt"
    expected = vlpart_reference(tmp_path / "Annotations_Part", split)
    made = (built / "glamm/Semantic_Segm/pascal_part/train.json").read_text()
    assert made == json.dumps(expected)
    assert [i["file_name"] for i in expected["images"]] == ["2008_000002.jpg", "2008_000008.jpg"]


def test_images_and_annotations_are_stored_once(built):
    semantic = built / "glamm" / "Semantic_Segm"
    store = built / "extracted"
    pairs = [
        (
            semantic / "pascal_part/VOCdevkit/VOC2010/JPEGImages/2008_000008.jpg",
            store / "voc2010/VOCdevkit/VOC2010/JPEGImages/2008_000008.jpg",
        ),
        (semantic / "pascal_part/train.json", store / "pascal_part_coco/train.json"),
        (
            semantic / "paco_lvis/annotations/paco_lvis_v1_train.json",
            store / "paco_lvis/paco_lvis_v1_train.json",
        ),
    ]
    for layout, stored in pairs:
        assert os.stat(layout).st_ino == os.stat(stored).st_ino, layout
    assert not (built / "work" / "pascal_part_json").exists()  # the work folder is gone


def test_a_bundle_without_the_mapillary_zip_skips_only_mapillary(tmp_path, world, standin):
    config = make_config(tmp_path, world, standin)
    result = run_snakemake(config, "-n", "glamm")
    said = result.stderr
    assert re.search(r"SKIPPING glamm_mapillary \(in bundle glamm\)", said), said[-3000:]
    assert "mapillary-vistas-v2.0.zip" in said
    assert "SKIPPING glamm_pascal_part" not in said
    assert "SKIPPING glamm_paco_lvis" not in said
    assert result.returncode == 0, result.stdout[-2000:] + said[-3000:]
