"""cosmos/mmseg/: the tree assembly (vlprep.mmseg), the consumer checks of the five products
(each can fail), the registry's trees against COSMOS's configs, and the stand-in sources."""

import json
import os
import re
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from standin import segmentation as standin
from standin.coco import make_coco2017
from vlprep.consumers import MMSEG_CONFIGS, check_cosmos
from vlprep.errors import VlprepError
from vlprep.mmseg import build_tree, tree_plan
from vlprep.products import PRODUCTS
from vlprep.products.segmentation import MMSEG_TREES, MmsegTree, Pairs


def _png(path: Path, values: list[int], size=(8, 6)) -> None:
    """An 8-bit (mode L) map holding `values`, repeated."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.resize(np.array(values, dtype=np.uint8), size[::-1])).save(path)


def _jpg(path: Path, size=(8, 6)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (10, 20, 30)).save(path)


@pytest.fixture
def cosmos(tmp_path) -> Path:
    """A good cosmos/ root holding the five trees, one sample each (two for COCO)."""
    m = tmp_path / "cosmos" / "mmseg"
    voc12 = m / "VOCdevkit/VOC2012"
    _jpg(voc12 / "JPEGImages/2007_000033.jpg")
    _png(voc12 / "SegmentationClass/2007_000033.png", [0, 1, 20, 255])
    (voc12 / "ImageSets/Segmentation").mkdir(parents=True)
    (voc12 / "ImageSets/Segmentation/val.txt").write_text("2007_000033\n")
    voc10 = m / "VOCdevkit/VOC2010"
    _jpg(voc10 / "JPEGImages/2008_000007.jpg")
    _png(voc10 / "SegmentationClassContext/2008_000007.png", [0, 3, 59])
    (voc10 / "ImageSets/SegmentationContext").mkdir(parents=True)
    (voc10 / "ImageSets/SegmentationContext/val.txt").write_text("2008_000007\n")
    coco = m / "coco_stuff164k"
    for stem in ("000000000139", "000000000285"):
        _jpg(coco / f"images/val2017/{stem}.jpg")
        _png(coco / f"annotations/val2017/{stem}_labelTrainIds.png", [0, 170, 255])
        _png(coco / f"annotations/val2017/{stem}_instanceTrainIds.png", [0, 1, 80])
    city = m / "cityscapes"
    _jpg(city / "leftImg8bit/val/lindau/lindau_000000_000019_leftImg8bit.png")
    _png(city / "gtFine/val/lindau/lindau_000000_000019_gtFine_labelTrainIds.png", [0, 18, 255])
    ade = m / "ade/ADEChallengeData2016"
    _jpg(ade / "images/validation/ADE_val_00000001.jpg")
    _png(ade / "annotations/validation/ADE_val_00000001.png", [0, 1, 150])
    return tmp_path / "cosmos"


PRODUCT_NAMES = list(MMSEG_TREES)


def test_a_good_tree_passes_every_check(cosmos):
    assert check_cosmos(cosmos, PRODUCT_NAMES) == []


M = "mmseg/"
BREAKS = [
    # (product, what breaks it, the words the problem must have)
    ("cosmos_voc2012", lambda r: (r / M / "VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt")
     .unlink(), ["val.txt", "ann_file"]),
    ("cosmos_voc2012", lambda r: (r / M / "VOCdevkit/VOC2012/JPEGImages/2007_000033.jpg")
     .unlink(), ["2007_000033.jpg", "images missing"]),
    ("cosmos_voc2012", lambda r: _png(r / M / "VOCdevkit/VOC2012/SegmentationClass/2007_000033.png",
     [0, 21]), ["[21]", "cfg_voc21.py"]),
    ("cosmos_pascal_context", lambda r: (r / M / "VOCdevkit/VOC2010/SegmentationClassContext/"
     "2008_000007.png").unlink(), ["cfg_context59.py", "label maps (.png) missing"]),
    ("cosmos_pascal_context", lambda r: _png(r / M / "VOCdevkit/VOC2010/SegmentationClassContext/"
     "2008_000007.png", [0, 255]), ["[255]", "0-59"]),
    ("cosmos_coco_stuff", lambda r: (r / M / "coco_stuff164k/annotations/val2017/"
     "000000000285_labelTrainIds.png").unlink(), ["cfg_coco_stuff164k.py", "1 of 2"]),
    ("cosmos_coco_stuff", lambda r: _jpg(r / M / "coco_stuff164k/images/val2017/000000000999.jpg"),
     ["000000000999_instanceTrainIds.png", "cfg_coco_object.py"]),
    ("cosmos_coco_stuff", lambda r: _png(r / M / "coco_stuff164k/annotations/val2017/"
     "000000000139_instanceTrainIds.png", [0, 81]), ["[81]", "0-80"]),
    ("cosmos_coco_stuff", lambda r: (r / M / "coco_stuff164k/images/val2017/000000000139.jpg")
     .write_bytes(b"not a jpeg"), ["do not decode"]),
    ("cosmos_cityscapes", lambda r: _jpg(r / M / "cityscapes/leftImg8bit/val/munster/"
     "munster_000000_000019_leftImg8bit.png"), ["munster_000000_000019_gtFine_labelTrainIds.png"]),
    ("cosmos_cityscapes", lambda r: Image.new("I;16", (8, 6), 300).save(
        r / M / "cityscapes/gtFine/val/lindau/lindau_000000_000019_gtFine_labelTrainIds.png"),
     ["mode I;16"]),
    ("cosmos_ade20k", lambda r: _png(r / M / "ade/ADEChallengeData2016/annotations/validation/"
     "ADE_val_00000001.png", [151]), ["[151]", "ADE20KDataset"]),
    ("cosmos_ade20k", lambda r: os.rename(r / M / "ade/ADEChallengeData2016/images",
     r / M / "ade/ADEChallengeData2016/imgs"), ["images/validation: missing"]),
    ("cosmos_ade20k", lambda r: os.rename(r / M / "ade", r / M / "ade20k"),
     ["/mmsegmentation_datasets/data/ade/ADEChallengeData2016"]),
]  # fmt: skip


@pytest.mark.parametrize("product, damage, words", BREAKS)
def test_each_check_fails_on_a_broken_tree(cosmos, product, damage, words):
    damage(cosmos)
    problems = check_cosmos(cosmos, [product])
    assert problems, product
    assert any(all(w in p for w in words) for p in problems), problems
    # only the broken product is reported
    others = [p for p in PRODUCT_NAMES if p != product]
    assert check_cosmos(cosmos, others) == []


def test_the_registry_trees_are_the_configs_data_roots():
    """Each product builds exactly the data_root subpaths its configs read, and the pairs
    the build checks are the configs' prefixes and suffixes."""
    for product, tree in MMSEG_TREES.items():
        assert PRODUCTS[product].files == (f"{{cosmos}}/mmseg/{tree.path}",)
        specs = MMSEG_CONFIGS[product]
        assert {spec[1] for spec in specs} == {tree.path}
        for spec in specs:
            _, _, img_path, seg_path, ann_file, img_suffix, seg_suffix, *_ = spec
            assert any(
                (p.images, p.maps, p.img_suffix) == (img_path, seg_path, img_suffix)
                and seg_suffix in p.suffixes
                and (ann_file is None or p.split == ann_file)
                for p in tree.pairs
            ), (product, spec)
    names = {spec[0] for specs in MMSEG_CONFIGS.values() for spec in specs}
    assert len(names) == 8


# ---- vlprep.mmseg.build_tree ------------------------------------------------------------


@pytest.fixture
def store(tmp_path) -> Path:
    """extracted/ with an unpacked VOC2010-like tree and a generated maps folder."""
    ext = tmp_path / "data" / "extracted"
    voc = ext / "voc2010" / "VOCdevkit" / "VOC2010"
    for stem in ("a", "b"):
        _jpg(voc / f"JPEGImages/{stem}.jpg")
    (voc / "ImageSets/Main").mkdir(parents=True)
    (voc / "ImageSets/Main/train.txt").write_text("a\n")
    maps = ext / "pascal_context_maps"
    for stem in ("a", "b"):
        _png(maps / f"SegmentationClassContext/{stem}.png", [0, 5])
    (maps / "ImageSets/SegmentationContext").mkdir(parents=True)
    (maps / "ImageSets/SegmentationContext/val.txt").write_text("a\nb\n")
    return ext


TREE = MMSEG_TREES["cosmos_pascal_context"]
TREE = MmsegTree(
    TREE.path,
    TREE.base,
    TREE.overlays,
    pairs=(TREE.pairs[1],),  # the val list only (the small store has no train list)
    fix=TREE.fix,
)


def _inodes(root: Path) -> set[int]:
    return {os.stat(Path(d, f)).st_ino for d, _, fs in os.walk(root) for f in fs}


@pytest.mark.parametrize("mode", ["symlink", "hardlink", "copy"])
def test_build_tree_mirrors_the_store_and_puts_in_the_generated_folders(store, mode):
    dst = store.parent / "cosmos/mmseg/VOCdevkit/VOC2010"
    counts = build_tree(dst, tree_plan(TREE, str(store)), mode)
    assert counts == {"ImageSets/SegmentationContext/val.txt": 2}
    assert sorted(os.listdir(dst)) == ["ImageSets", "JPEGImages", "SegmentationClassContext"]
    assert sorted(os.listdir(dst / "ImageSets")) == ["Main", "SegmentationContext"]
    assert not (dst / "ImageSets").is_symlink()  # real: it holds a generated folder
    assert (dst / "ImageSets/Main/train.txt").read_text() == "a\n"
    assert (dst / "SegmentationClassContext/b.png").is_file()
    if mode == "symlink":
        link = os.readlink(dst / "JPEGImages")
        assert not os.path.isabs(link) and link.startswith("../")
        assert os.readlink(dst / "ImageSets/SegmentationContext").startswith("../../")
    if mode == "hardlink":  # the store's files, no second copy
        assert _inodes(dst / "JPEGImages") == _inodes(
            store / "voc2010/VOCdevkit/VOC2010/JPEGImages"
        )
    # nothing was written into the store
    assert not (store / "voc2010/VOCdevkit/VOC2010/SegmentationClassContext").exists()
    assert sorted(os.listdir(store / "voc2010/VOCdevkit/VOC2010/ImageSets")) == ["Main"]


def test_build_tree_refuses_a_tree_mmseg_would_miss_and_leaves_nothing(store):
    (store / "voc2010/VOCdevkit/VOC2010/JPEGImages/b.jpg").unlink()
    dst = store.parent / "cosmos/mmseg/VOCdevkit/VOC2010"
    with pytest.raises(VlprepError) as err:
        build_tree(dst, tree_plan(TREE, str(store)), "symlink")
    said = str(err.value)
    assert "JPEGImages/b.jpg" in said and str(dst) in said and "trainval_merged.json" in said
    assert not dst.exists() and os.listdir(dst.parent) == []


def test_build_tree_in_scan_mode_needs_every_map_of_every_image(tmp_path):
    ext = tmp_path / "extracted"
    _jpg(ext / "coco2017_val/val2017/000000000001.jpg")
    _jpg(ext / "coco2017_val/val2017/000000000002.jpg")
    maps = ext / "cocostuff_val2017_maps"
    _png(maps / "000000000001_labelTrainIds.png", [0])
    _png(maps / "000000000001_instanceTrainIds.png", [0])
    _png(maps / "000000000002_labelTrainIds.png", [0])
    plan = tree_plan(MMSEG_TREES["cosmos_coco_stuff"], str(ext))
    dst = tmp_path / "cosmos/mmseg/coco_stuff164k"
    with pytest.raises(VlprepError, match="000000000002_instanceTrainIds.png") as err:
        build_tree(dst, plan, "symlink")
    assert "stuffthingmaps" in str(err.value) and not dst.exists()
    _png(maps / "000000000002_instanceTrainIds.png", [0])
    assert build_tree(dst, plan, "symlink") == {"images/val2017": 2}
    assert os.readlink(dst / "images/val2017") == "../../../../extracted/coco2017_val/val2017"


def test_build_tree_refuses_to_hide_a_store_folder(store):
    (store / "voc2010/VOCdevkit/VOC2010/SegmentationClassContext").mkdir()
    with pytest.raises(VlprepError, match="already has what vlprep generates"):
        build_tree(store.parent / "tree", tree_plan(TREE, str(store)), "symlink")


def test_a_missing_store_folder_is_named(tmp_path):
    plan = tree_plan(MMSEG_TREES["cosmos_ade20k"], str(tmp_path / "extracted"))
    with pytest.raises(VlprepError, match="extracted/ade20k/ADEChallengeData2016: missing"):
        build_tree(tmp_path / "ade", plan, "symlink")


def test_pairs_are_plain_data_for_params():
    plan = tree_plan(MMSEG_TREES["cosmos_cityscapes"], "/d/extracted")
    assert json.loads(json.dumps(plan)) == plan
    assert plan["overlays"] == {
        "leftImg8bit/val": "/d/extracted/cityscapes_leftimg8bit/leftImg8bit/val",
        "gtFine/val": "/d/extracted/cityscapes_val_maps",
    }
    assert isinstance(MMSEG_TREES["cosmos_voc2012"].pairs[0], Pairs)


# ---- the stand-in sources -------------------------------------------------------------------


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("standin")
    make_coco2017(out, n_train=7, n_val=12)
    return standin.make_segmentation(out / "segmentation")


def test_cocostuff_maps_cover_exactly_the_coco_val_images_at_their_size(made):
    val = made["stuffthingmaps_trainval2017.zip"].parent.parent / "val2017.zip"
    with zipfile.ZipFile(val) as zf:
        images = {Path(n).stem: n for n in zf.namelist() if n.endswith(".jpg")}
        sizes = {stem: Image.open(zf.open(name)).size for stem, name in images.items()}
    with zipfile.ZipFile(made["stuffthingmaps_trainval2017.zip"]) as zf:
        names = zf.namelist()
        assert {n.split("/")[0] for n in names} == {"train2017", "val2017"}
        val_maps = {
            Path(n).stem: n for n in names if n.startswith("val2017/") and n.endswith(".png")
        }
        assert set(val_maps) == set(images)
        train = [n for n in names if n.startswith("train2017/") and n.endswith(".png")]
        assert len(train) == 5
        allowed = set(standin.COCO_STUFF_RAW)
        for stem, name in val_maps.items():
            with Image.open(zf.open(name)) as image:
                assert image.mode == "L" and image.size == sizes[stem]
                assert set(np.unique(np.asarray(image)).tolist()) <= allowed


def test_voc_tars_have_the_real_layout(made):
    with tarfile.open(made["VOCtrainval_11-May-2012.tar"]) as tf:
        names = tf.getnames()
        assert names[:2] == ["VOCdevkit", "VOCdevkit/VOC2012"]
        val = tf.extractfile("VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt").read().split()
        for image_id in val:
            image_id = image_id.decode()
            assert f"VOCdevkit/VOC2012/JPEGImages/{image_id}.jpg" in names
            label = Image.open(
                tf.extractfile(f"VOCdevkit/VOC2012/SegmentationClass/{image_id}.png")
            )
            assert label.mode == "P" and 255 in np.asarray(label)
    with tarfile.open(made["VOCtrainval_03-May-2010.tar"]) as tf:
        assert not any("SegmentationContext" in n for n in tf.getnames())


def _decode(rle: dict) -> np.ndarray:
    """COCO compressed RLE, decoded from the format's description (maskApi.c rleFrString)."""
    counts, text, p = [], rle["counts"], 0
    while p < len(text):
        x, k, more = 0, 0, True
        while more:
            c = ord(text[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    h, w = rle["size"]
    flat = np.repeat(np.arange(len(counts)) % 2, counts).astype(np.uint8)
    assert flat.size == h * w
    return flat.reshape(w, h).T


def test_trainval_merged_json_has_the_detail_api_schema(made):
    data = json.loads(made["trainval_merged.json"].read_text())
    for key in ("images", "annos_segmentation", "annos_occlusion", "annos_boundary"):
        assert isinstance(data[key], list), key
    assert {"annos_joints", "categories", "parts"} <= data.keys()
    images = {img["image_id"]: img for img in data["images"]}
    assert {img["phase"] for img in images.values()} == {"train", "val"}
    for img in images.values():
        assert img["image_id"] == int(img["file_name"][:-4].replace("_", ""))
    cats = {c["category_id"] for c in data["categories"]}
    assert cats == set(standin.CONTEXT_IDS)
    for seg in data["annos_segmentation"]:
        img = images[seg["image_id"]]
        mask = _decode(seg["segmentation"])
        assert mask.shape == (img["height"], img["width"]) and mask.sum() == seg["area"]
        assert seg["category_id"] in cats
    assert len({s["id"] for s in data["annos_segmentation"]}) == len(data["annos_segmentation"])


def test_cityscapes_zips_use_the_real_naming(made):
    with zipfile.ZipFile(made["gtFine_trainvaltest.zip"]) as zf:
        polygons = [n for n in zf.namelist() if n.endswith("_gtFine_polygons.json")]
        pattern = r"gtFine/(train|val|test)/(\w+)/\2_\d{6}_\d{6}_gtFine_polygons\.json"
        assert all(re.fullmatch(pattern, n) for n in polygons)
        doc = json.loads(zf.read(polygons[0]))
        assert {"imgHeight", "imgWidth", "objects"} <= doc.keys()
        assert all({"label", "polygon"} <= o.keys() for o in doc["objects"])
    with zipfile.ZipFile(made["leftImg8bit_trainvaltest.zip"]) as zf:
        images = [n for n in zf.namelist() if n.endswith("_leftImg8bit.png")]
    stems = {n.replace("gtFine", "X").replace("_X_polygons.json", "") for n in polygons}
    assert stems == {n.replace("leftImg8bit", "X").replace("_X.png", "") for n in images}


def test_ade20k_zip_has_its_top_folder_and_pairs(made):
    with zipfile.ZipFile(made["ADEChallengeData2016.zip"]) as zf:
        names = zf.namelist()
    assert names[0] == "ADEChallengeData2016/"
    jpgs = {n[:-4].replace("images/", "") for n in names if n.endswith(".jpg")}
    pngs = {n[:-4].replace("annotations/", "") for n in names if n.endswith(".png")}
    assert jpgs == pngs and len(jpgs) == sum(standin.ADE_IMAGES.values())


def test_the_standin_is_deterministic(made, tmp_path):
    make_coco2017(tmp_path, n_train=7, n_val=12)
    again = standin.make_segmentation(tmp_path / "segmentation")
    for name, path in made.items():
        assert again[name].read_bytes() == path.read_bytes(), name
