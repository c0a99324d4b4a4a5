"""vlprep.pascal_part against an independent re-implementation of VLPart's
tools/pascal_part_mat2json.py (written here, positional struct access as VLPart's, its own RLE
encoder and its own category table), on generated .mat files; the errors; resume after a kill;
and the GLaMM consumer checks of the three Semantic_Segm sets, each shown to fail on a broken
tree."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from standin.glamm_semantic import make_glamm_semantic, make_part_annotations
from standin.segmentation import make_voc2010
from vlprep.consumers import check_glamm
from vlprep.errors import ConversionError
from vlprep.pascal_part import pascal_part

REPO = Path(__file__).resolve().parents[2]

# VLPart's 93 categories, in its order ("name/abbr" where it has an abbr).
REFERENCE_NAMES = """aeroplane:body aeroplane:wing aeroplane:tail aeroplane:wheel bicycle:wheel
bicycle:handlebar bicycle:saddle bird:beak bird:head bird:eye bird:leg bird:foot bird:wing
bird:neck bird:tail bird:torso bottle:body bottle:cap bus:license_plate/bus:liplate
bus:headlight bus:door bus:mirror bus:window bus:wheel car:license_plate/car:liplate
car:headlight car:door car:mirror car:window car:wheel cat:head cat:leg cat:ear cat:eye
cat:paw/cat:pa cat:neck cat:nose cat:tail cat:torso cow:head cow:leg cow:ear cow:eye cow:neck
cow:horn cow:muzzle cow:tail cow:torso dog:head dog:leg dog:ear dog:eye dog:paw/dog:pa dog:neck
dog:nose dog:muzzle dog:tail dog:torso horse:head horse:leg horse:ear horse:eye horse:neck
horse:muzzle horse:tail horse:torso motorbike:wheel motorbike:handlebar motorbike:headlight
motorbike:saddle person:hair person:head person:ear person:eye person:nose person:neck
person:mouth person:arm person:hand person:leg person:foot person:torso
potted_plant:plant potted_plant:pot sheep:head sheep:leg sheep:ear sheep:eye sheep:neck
sheep:horn sheep:muzzle sheep:tail sheep:torso""".split()  # noqa: SIM905


def reference_categories() -> list[dict]:
    cats = []
    for i, token in enumerate(REFERENCE_NAMES, 1):
        name, _, abbr = token.replace("_", " ").partition("/")
        cats.append({"id": i, "name": name, **({"abbr": abbr} if abbr else {})})
    return cats


def reference_rle(mask: np.ndarray) -> dict:
    """Run lengths pixel by pixel in Fortran order, then maskApi.c rleToString, as loops."""
    h, w = mask.shape
    counts, previous, run = [], 0, 0
    for x in range(w):
        for y in range(h):
            value = int(mask[y, x] > 0)
            if value != previous:
                counts.append(run)
                previous, run = value, 0
            run += 1
    counts.append(run)
    chars = []
    for i in range(len(counts)):
        x = counts[i] - counts[i - 2] if i > 2 else counts[i]
        while True:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            chars.append(chr((c | 0x20 if more else c) + 48))
            if not more:
                break
    return {"size": [h, w], "counts": "".join(chars)}


def vlpart_reference(ann_path: Path, split_file: Path) -> dict:
    """VLPart's __main__ (--split train.txt, all 93 categories), restated."""
    categories = reference_categories()
    obj2ids, id2name = defaultdict(list), {}
    for cat in categories:
        obj2ids[cat["name"].split(":")[0]].append(cat["id"])
        id2name[cat["id"]] = cat.get("abbr", cat["name"])
    imgs, anns, ann_id = [], [], 0
    for img_path in np.loadtxt(split_file, dtype=str, ndmin=1):
        anno = scipy.io.loadmat(os.path.join(ann_path, img_path))["anno"][0][0]
        cur, height, width = 0, 512, 512
        for obj in anno[1][0]:
            obj_name = str(obj[0][0])
            obj_name = "potted plant" if obj_name == "pottedplant" else obj_name
            if len(obj[3]) < 1:
                continue
            ids = obj2ids[obj_name]
            names = [id2name[i].split(":")[1] for i in ids]
            for part in obj[3][0]:
                part_name, part_mask = str(part[0][0]), part[1]
                height, width = part_mask.shape
                for pid, pname in zip(ids, names, strict=True):
                    if pname in part_name:
                        y, x = np.where(part_mask > 0)
                        box = float(np.min(x)), float(np.min(y)), float(np.max(x)), float(np.max(y))
                        bbox = [box[0], box[1], box[2] - box[0], box[3] - box[1]]
                        anns.append(
                            {
                                "id": ann_id,
                                "segmentation": reference_rle(part_mask),
                                "bbox": bbox,
                                "category_id": pid,
                                "image_id": int(img_path[:4] + img_path[5:]),
                                "iscrowd": 0,
                                "area": bbox[2] * bbox[3],
                            }
                        )
                        ann_id += 1
                        cur += 1
                        break
        if cur > 0:
            imgs.append(
                {
                    "id": int(img_path[:4] + img_path[5:]),
                    "file_name": img_path + ".jpg",
                    "height": height,
                    "width": width,
                }
            )
    return {"categories": categories, "images": imgs, "annotations": anns}


# ---- generated .mat files ----------------------------------------------------------------------

CLASSES = {
    "aeroplane": ["body", "stern", "lwing", "rwing", "tail", "engine_1", "wheel_2"],
    "car": ["frontside", "fliplate", "bliplate", "door_1", "wheel_1", "headlight_2", "window_3"],
    "cat": ["head", "lear", "leye", "nose", "lfpa", "rbleg", "tail", "neck", "torso"],
    "person": ["hair", "head", "lear", "leye", "lebrow", "mouth", "ruarm", "rhand", "llleg"],
    "pottedplant": ["pot", "plant"],
    "sheep": ["head", "lhorn", "muzzle", "tail", "torso"],
    "train": ["head", "hfrontside", "coach_1"],
    "boat": [],
}


def _struct(fields, rows):
    array = np.empty((1, len(rows)), dtype=[(f, object) for f in fields])
    for i, row in enumerate(rows):
        array[0, i] = row
    return array


def write_mat(path: Path, image_id: str, rng: random.Random) -> None:
    h, w = rng.randrange(5, 30), rng.randrange(5, 30)
    objects = []
    for _ in range(rng.randrange(1, 4)):  # VLPart fails on an image without objects
        name = rng.choice(sorted(CLASSES))
        names = rng.sample(CLASSES[name], rng.randrange(0, len(CLASSES[name]) + 1))
        parts = []
        for part_name in names:
            mask = (np.array([[rng.random() for _ in range(w)] for _ in range(h)]) < 0.3).astype(
                np.uint8
            )
            mask[rng.randrange(h), rng.randrange(w)] = 1  # never empty
            if rng.random() < 0.2:
                mask[:] = 1  # starts with a 1: an empty first run
            parts.append((part_name, mask))
        part_array = _struct(["part_name", "mask"], parts) if parts else np.zeros((0, 0))
        objects.append((name, np.array([[1]], np.uint8), np.ones((h, w), np.uint8), part_array))
    anno = {
        "imname": image_id,
        "objects": _struct(["class", "class_ind", "mask", "parts"], objects),
    }
    scipy.io.savemat(path, {"anno": anno})


def generated(tmp: Path, n: int, seed: int = 0) -> tuple[Path, Path]:
    rng = random.Random(seed)
    ann = tmp / "Annotations_Part"
    ann.mkdir(parents=True)
    ids = [f"{2008 + i % 3}_{i:06d}" for i in range(n)]
    for image_id in ids:
        write_mat(ann / f"{image_id}.mat", image_id, rng)
    write_mat(ann / "2011_999999.mat", "2011_999999", rng)  # not in the split: ignored
    split = tmp / "train.txt"
    split.write_text("".join(f"{i}\n" for i in ids))
    return ann, split


def test_agrees_with_vlparts_rules_byte_for_byte(tmp_path):
    ann, split = generated(tmp_path, 60)
    report = pascal_part(ann, split, tmp_path / "out", work=tmp_path / "work", processes=2)
    expected = vlpart_reference(ann, split)
    made = (tmp_path / "out" / "train.json").read_text()
    assert made == json.dumps(expected)  # json.dump's separators: VLPart's bytes
    data = json.loads(made)
    assert len(data["categories"]) == 93
    assert {c["name"] for c in data["categories"] if "abbr" in c} == {
        "bus:license plate", "car:license plate", "cat:paw", "dog:paw",
    }  # fmt: skip
    kept = {i["file_name"][:-4] for i in data["images"]}
    assert 0 < len(kept) < 60 and report["dropped"] == 60 - len(kept)  # some dropped
    assert report["annotations"] == len(data["annotations"]) > 50
    used = {a["category_id"] for a in data["annotations"]}
    # substring (lwing), abbreviations (fliplate, lfpa), pottedplant, first match (lebrow: none)
    assert {2, 25, 35, 83, 84} <= used
    assert not (tmp_path / "work").exists()


def test_the_standin_tar_converts_as_vlpart_does(tmp_path):
    voc = make_voc2010(tmp_path / "seg")
    tar = make_part_annotations(tmp_path, voc["VOCtrainval_03-May-2010.tar"])
    with tarfile.open(tar) as tf:
        tf.extractall(tmp_path / "parts", filter="data")
    with tarfile.open(voc["VOCtrainval_03-May-2010.tar"]) as tf:
        tf.extractall(tmp_path / "voc", filter="data")
    split = tmp_path / "voc/VOCdevkit/VOC2010/ImageSets/Main/train.txt"
    ann = tmp_path / "parts/Annotations_Part"
    report = pascal_part(ann, split, tmp_path / "out", work=tmp_path / "work")
    expected = vlpart_reference(ann, split)
    assert (tmp_path / "out/train.json").read_text() == json.dumps(expected)
    assert report["images"] == 2 and report["dropped"] == 1  # 2010_000038: no part kept


def test_errors_name_the_file(tmp_path):
    ann, split = generated(tmp_path, 4)
    ids = split.read_text().split()
    (ann / f"{ids[2]}.mat").unlink()
    with pytest.raises(ConversionError, match=f"first: {ids[2]}"):
        pascal_part(ann, split, tmp_path / "out", work=tmp_path / "work")
    (ann / f"{ids[2]}.mat").write_bytes(b"not a mat file")
    with pytest.raises(ConversionError, match=f"{ids[2]}.mat: cannot read"):
        pascal_part(ann, split, tmp_path / "out", work=tmp_path / "work")
    assert not (tmp_path / "out").exists()
    split.write_text("2008_000001\nnot-an-id\n")
    with pytest.raises(ConversionError, match="'not-an-id' is not a VOC image id"):
        pascal_part(ann, split, tmp_path / "out", work=tmp_path / "work")


def test_an_empty_mask_of_a_kept_part_is_an_error(tmp_path):
    ann = tmp_path / "Annotations_Part"
    ann.mkdir()
    parts = _struct(["part_name", "mask"], [("lwing", np.zeros((4, 5), np.uint8))])
    objects = _struct(["class", "class_ind", "mask", "parts"], [("aeroplane", 1, 1, parts)])
    scipy.io.savemat(ann / "2008_000001.mat", {"anno": {"imname": "x", "objects": objects}})
    (tmp_path / "train.txt").write_text("2008_000001\n")
    with pytest.raises(
        ConversionError, match=r"2008_000001.mat: object 0 \(aeroplane\), part 'lwing'"
    ):
        pascal_part(ann, tmp_path / "train.txt", tmp_path / "out", work=tmp_path / "work")


def test_a_killed_run_resumes_with_the_same_result(tmp_path):
    ann, split = generated(tmp_path, 400, seed=3)
    work, out = tmp_path / "work", tmp_path / "out"
    code = (
        "import sys; from vlprep.pascal_part import pascal_part; "
        f"pascal_part({str(ann)!r}, {str(split)!r}, {str(out)!r}, work={str(work)!r})"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "scripts"), "VLPREP_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)
    fragments = work / "tree" / "fragments"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if fragments.is_dir() and len(os.listdir(fragments)) >= 20:
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(os.listdir(fragments))
    assert 20 <= done < 400, "the run was not killed midway"
    assert not out.exists()
    report = pascal_part(ann, split, out, work=work, processes=2)
    assert report["reused"] >= done - 1 and report["written"] == 400 - report["reused"]
    assert (out / "train.json").read_text() == json.dumps(vlpart_reference(ann, split))
    assert not work.exists()


def test_changed_inputs_discard_the_work(tmp_path):
    ann, split = generated(tmp_path, 6)
    pascal_part(ann, split, tmp_path / "out", work=tmp_path / "work")
    first = (tmp_path / "out/train.json").read_text()
    shutil.rmtree(tmp_path / "out")
    ids = split.read_text().split()
    split.write_text("".join(f"{i}\n" for i in ids[:3]))
    report = pascal_part(ann, split, tmp_path / "out", work=tmp_path / "work")
    assert report["written"] == 3
    assert (tmp_path / "out/train.json").read_text() == json.dumps(vlpart_reference(ann, split))
    assert (tmp_path / "out/train.json").read_text() != first


# ---- consumer checks: GLaMM's init_pascal_part / init_paco_lvis / init_mapillary -------------


@pytest.fixture(scope="module")
def glamm_tree(tmp_path_factory) -> Path:
    """A glamm/ with the three sets placed as the workflow places them (from the stand-ins)."""
    from standin.coco import make_coco2017

    tmp = tmp_path_factory.mktemp("glamm_semantic")
    gen = tmp / "gen"
    make_coco2017(gen, n_train=8, n_val=2)
    voc = make_voc2010(gen / "segmentation")["VOCtrainval_03-May-2010.tar"]
    made = make_glamm_semantic(gen / "glamm_semantic")
    semantic = tmp / "glamm" / "Semantic_Segm"
    with tarfile.open(made["pascal_part_annotations"]) as tf:
        tf.extractall(tmp / "parts", filter="data")
    with tarfile.open(voc) as tf:
        tf.extractall(tmp / "voc", filter="data")
    pascal_part(
        tmp / "parts/Annotations_Part",
        tmp / "voc/VOCdevkit/VOC2010/ImageSets/Main/train.txt",
        semantic / "pascal_part",
        work=tmp / "work",
    )
    shutil.copytree(
        tmp / "voc/VOCdevkit/VOC2010/JPEGImages",
        semantic / "pascal_part/VOCdevkit/VOC2010/JPEGImages",
    )
    with zipfile.ZipFile(made["paco_lvis"]) as zf:
        zf.extract("paco_lvis_v1_train.json", semantic / "paco_lvis" / "annotations")
    with zipfile.ZipFile(gen / "train2017.zip") as zf:
        zf.extractall(tmp / "glamm" / "coco_2017")
    with zipfile.ZipFile(made["mapillary_vistas"]) as zf:
        zf.extractall(semantic / "mapillary")
    return tmp / "glamm"


PRODUCTS = ["glamm_pascal_part", "glamm_paco_lvis", "glamm_mapillary"]


def test_the_checks_pass_on_a_good_tree(glamm_tree):
    assert check_glamm(glamm_tree, PRODUCTS) == []


def _broken(glamm_tree: Path, tmp_path: Path) -> Path:
    root = tmp_path / "glamm"
    shutil.copytree(glamm_tree, root)
    return root


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_pascal_part_check_fails_on_a_broken_tree(glamm_tree, tmp_path):
    root = _broken(glamm_tree, tmp_path)
    semantic = root / "Semantic_Segm" / "pascal_part"
    (semantic / "VOCdevkit/VOC2010/JPEGImages/2008_000008.jpg").unlink()
    problems = check_glamm(root, ["glamm_pascal_part"])
    assert len(problems) == 1 and "2008_000008.jpg: missing" in problems[0]
    _edit_json(semantic / "train.json", lambda d: d["categories"][0].update(name="aeroplane"))
    assert any("not obj:part" in p for p in check_glamm(root, ["glamm_pascal_part"]))
    _edit_json(semantic / "train.json", lambda d: d["annotations"][0].update(category_id=999))
    assert any("category 999" in p for p in check_glamm(root, ["glamm_pascal_part"]))
    (semantic / "train.json").unlink()
    assert "train.json: not a COCO json" in check_glamm(root, ["glamm_pascal_part"])[0]


def test_paco_check_fails_on_a_broken_tree(glamm_tree, tmp_path):
    root = _broken(glamm_tree, tmp_path)
    path = root / "Semantic_Segm/paco_lvis/annotations/paco_lvis_v1_train.json"
    first = json.loads(path.read_text())["images"][0]["file_name"]
    (root / "coco_2017" / first).unlink()
    problems = check_glamm(root, ["glamm_paco_lvis"])
    assert len(problems) == 1 and f"coco_2017/{first}: missing" in problems[0]
    _edit_json(path, lambda d: d["images"][1].update(file_name="000000000001.jpg"))
    assert any("file_name '000000000001.jpg'" in p for p in check_glamm(root, ["glamm_paco_lvis"]))
    _edit_json(path, lambda d: d["categories"][0].update(name="a:b:c"))
    assert any("more than obj:part" in p for p in check_glamm(root, ["glamm_paco_lvis"]))


def test_mapillary_check_fails_on_a_broken_tree(glamm_tree, tmp_path):
    root = _broken(glamm_tree, tmp_path)
    mapillary = root / "Semantic_Segm" / "mapillary"
    (next((mapillary / "training/images").glob("*.jpg"))).unlink()
    problems = check_glamm(root, ["glamm_mapillary"])
    assert len(problems) == 1 and "missing (the image of" in problems[0]
    _edit_json(mapillary / "config_v2.0.json", lambda d: d["labels"][0].pop("readable"))
    assert "labels[*].readable" in check_glamm(root, ["glamm_mapillary"])[0]
    (mapillary / "config_v2.0.json").unlink()
    shutil.rmtree(mapillary / "training/v2.0/labels")
    assert len(check_glamm(root, ["glamm_mapillary"])) == 1
