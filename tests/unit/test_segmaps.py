"""vlprep.segmaps against independent re-statements of the upstream converters.

Each reference below is written from the upstream code (cited), not from vlprep.segmaps: mmseg's
loop of masked assignments for COCO-Stuff, COSMOS's rewrite of the same table for COCO-Object,
the Detail API's RLE decode and getMask followed by mmseg's np.digitize for PASCAL-Context, and
cityscapesscripts' createLabelImage for Cityscapes. Inputs are generated: blob maps, overlapping
RLE masks, overlapping polygons with deleted objects and group labels. tests/loaders/ repeats
the comparison with the upstream packages themselves (mmseg's converter, pycocotools,
cityscapesscripts).
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from standin.segmentation import rle_string
from tests.segmaps_inputs import (
    MMSEG_KEYS,
    blob_map,
    make_cityscapes,
    make_coco_raw,
    make_context_json,
    rle_encode,
)
from vlprep import segmaps
from vlprep.errors import ConversionError

REPO = Path(__file__).resolve().parents[2]

# ---------------------------------------------------------------------------------------------
# References

MMSEG_TABLE = dict(zip(MMSEG_KEYS, [*range(171), 255], strict=True))


def mmseg_stuff(mask: np.ndarray) -> np.ndarray:
    """coco_stuff164k.py:202-205: one masked assignment per table entry, on a copy."""
    mask_copy = mask.copy()
    for cls_id, tr_id in MMSEG_TABLE.items():
        mask_copy[mask == cls_id] = tr_id
    return mask_copy


def cosmos_object(mask: np.ndarray) -> np.ndarray:
    """COSMOS convert_coco_object.py:195-205: the same table, v + 1, then 0 for keys > 90."""
    table = dict(MMSEG_TABLE)
    for k, v in table.items():
        table[k] = v + 1
        if k > 90:
            table[k] = 0
    mask_copy = mask.copy()
    for cls_id, tr_id in table.items():
        mask_copy[mask == cls_id] = tr_id
    return mask_copy


# mmseg tools/dataset_converters/pascal_context.py:11-17
MAPPING = np.sort(
    np.array([
        0, 2, 259, 260, 415, 324, 9, 258, 144, 18, 19, 22, 23, 397, 25, 284, 158, 159, 416, 33,
        162, 420, 454, 295, 296, 427, 44, 45, 46, 308, 59, 440, 445, 31, 232, 65, 354, 424, 68,
        326, 72, 458, 34, 207, 80, 355, 85, 347, 220, 349, 360, 98, 187, 104, 105, 366, 189, 368,
        113, 115,
    ])
)  # fmt: skip
KEY = np.array(range(len(MAPPING))).astype("uint8")


def rle_decode(rle: dict) -> np.ndarray:
    """maskApi.c rleFrString (char by char) + rleDecode, the array as _mask.pyx returns it."""
    s, cnts, p = rle["counts"], [], 0
    while p < len(s):
        x, k, more = 0, 0, 1
        while more:
            c = ord(s[p]) - 48
            x |= (c & 0x1F) << 5 * k
            more = c & 0x20
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << 5 * k
        if len(cnts) > 2:
            x += cnts[-2]
        cnts.append(x)
    h, w = rle["size"]
    flat, v = [], 0
    for c in cnts:
        flat.extend([v] * c)
        v = 1 - v
    return np.array(flat, np.uint8).reshape((h, w), order="F")


def detail_mmseg_context(data: dict) -> dict[str, np.ndarray]:
    """{png name: label map}: Detail API __createIndex + getMask(img) (detail/__init__.py:93-96,
    142-151, 348-357), then mmseg's generate_labels (pascal_context.py:20-33), for the
    images of phase train and val (getImgs, l.517-567)."""
    imgs, segmentations = {}, {}
    for img in data["images"]:
        imgs[img["image_id"]] = dict(img, annotations=[])
    for segm in data["annos_segmentation"]:
        segmentations[segm["id"]] = segm
    for segm_id, segm in segmentations.items():
        imgs[segm["image_id"]]["annotations"].append(segm_id)
    out = {}
    for img in imgs.values():
        if img["phase"] not in ("train", "val"):
            continue
        anns = [a for a in segmentations.values() if a["id"] in img["annotations"]]
        mask = np.zeros((img["height"], img["width"]))
        for ann in anns:
            m = rle_decode(ann["segmentation"])
            mask[np.nonzero(m)] = ann["category_id"]
        for value in np.unique(mask):
            assert value in MAPPING
        index = np.digitize(mask.ravel(), MAPPING, right=True)
        out[img["file_name"].replace("jpg", "png")] = KEY[index].reshape(mask.shape)
    return out


# cityscapesscripts helpers/labels.py:62-99: name -> (id, trainId)
CS_LABELS = {
    "unlabeled": (0, 255), "ego vehicle": (1, 255), "rectification border": (2, 255),
    "out of roi": (3, 255), "static": (4, 255), "dynamic": (5, 255), "ground": (6, 255),
    "road": (7, 0), "sidewalk": (8, 1), "parking": (9, 255), "rail track": (10, 255),
    "building": (11, 2), "wall": (12, 3), "fence": (13, 4), "guard rail": (14, 255),
    "bridge": (15, 255), "tunnel": (16, 255), "pole": (17, 5), "polegroup": (18, 255),
    "traffic light": (19, 6), "traffic sign": (20, 7), "vegetation": (21, 8),
    "terrain": (22, 9), "sky": (23, 10), "person": (24, 11), "rider": (25, 12), "car": (26, 13),
    "truck": (27, 14), "bus": (28, 15), "caravan": (29, 255), "trailer": (30, 255),
    "train": (31, 16), "motorcycle": (32, 17), "bicycle": (33, 18), "license plate": (-1, -1),
}  # fmt: skip


def cs_create_label_image(path: Path) -> np.ndarray:
    """cityscapesscripts json2labelImg.py createLabelImage(annotation, "trainIds")."""
    data = json.loads(path.read_text())
    img = Image.new("L", (int(data["imgWidth"]), int(data["imgHeight"])), 255)
    drawer = ImageDraw.Draw(img)
    for obj in data["objects"]:
        label = str(obj["label"])
        polygon = [tuple(p[:2]) for p in obj["polygon"]]
        if obj.get("deleted", 0):
            continue
        if label not in CS_LABELS and label.endswith("group"):
            label = label[: -len("group")]
        assert label in CS_LABELS
        if CS_LABELS[label][0] < 0:
            continue
        drawer.polygon(polygon, fill=CS_LABELS[label][1])
    return np.asarray(img)


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.mode == "L"
        return np.asarray(img)


def tree_pixels(root: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(root)): pixels(p) for p in sorted(root.rglob("*.png"))}


def no_temporaries(root: Path) -> None:
    assert not [p for p in root.rglob("*") if ".vlprep-tmp-" in p.name]


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("VLPREP_PROGRESS", "0")


# ---------------------------------------------------------------------------------------------
# Agreement with the references


def test_tables_restate_upstream():
    assert segmaps.COCO_STUFF_TRAIN_ID == MMSEG_TABLE
    assert MAPPING.tolist() == segmaps.CONTEXT_IDS
    assert {n: (i, t) for n, i, t in segmaps.CITYSCAPES_LABELS} == CS_LABELS


def test_coco_stuff_and_object_match_mmseg_and_cosmos(tmp_path):
    names = make_coco_raw(tmp_path / "raw", 20)
    report = segmaps.coco_stuff_val(
        tmp_path / "raw", tmp_path / "out", work=tmp_path / "w", processes=2
    )
    assert (
        report["maps"] == len(names) and report["written"] == len(names) and report["reused"] == 0
    )
    out = tmp_path / "out"
    assert len(list(out.iterdir())) == 2 * len(names)
    for name in names:
        raw = np.array(Image.open(tmp_path / "raw" / name))
        stuff = pixels(out / name.replace(".png", "_labelTrainIds.png"))
        obj = pixels(out / name.replace(".png", "_instanceTrainIds.png"))
        np.testing.assert_array_equal(stuff, mmseg_stuff(raw), err_msg=name)
        np.testing.assert_array_equal(obj, cosmos_object(raw), err_msg=name)
        assert set(np.unique(stuff)) <= {*range(171), 255}
        assert set(np.unique(obj)) <= set(range(81))
    every = np.array(Image.open(tmp_path / "raw" / names[-1]))
    assert set(np.unique(pixels(out / f"{999999:012d}_instanceTrainIds.png"))) == set(range(81))
    assert len(np.unique(every)) == 172
    assert not (tmp_path / "w").exists()  # the work folder is gone once dest is complete


def test_coco_palette_map_reads_as_indices(tmp_path):
    """A palette PNG: mmseg's np.array(Image.open()) sees the indices; so do we."""
    raw = tmp_path / "raw"
    raw.mkdir()
    img = blob_map(random.Random(3)).convert("L")
    pal = img.copy()
    pal.putpalette([(255 - i) % 256 for i in range(768)])  # makes it mode P, indices kept
    assert pal.mode == "P"
    pal.save(raw / "000000000001.png")
    segmaps.coco_stuff_val(raw, tmp_path / "out", work=tmp_path / "w")
    expect = mmseg_stuff(np.array(Image.open(raw / "000000000001.png")))
    np.testing.assert_array_equal(pixels(tmp_path / "out/000000000001_labelTrainIds.png"), expect)


def test_rle_counts_match_the_detail_decoder():
    rng = random.Random(1)
    for _ in range(200):
        cnts = [
            rng.choice([0, 1, 5, 31, 32, 1000, 70000, 2**31]) for _ in range(rng.randint(1, 12))
        ]
        s = rle_string(cnts)
        assert segmaps.rle_counts(s).tolist() == cnts
        total = sum(cnts)
        if total < 5000:
            flat = rle_decode({"size": [1, total], "counts": s})
            assert flat.sum() == sum(cnts[1::2])


def test_pascal_context_matches_detail_and_mmseg(tmp_path):
    merged = tmp_path / "trainval_merged.json"
    data = make_context_json(merged, seed=5, n_images=15)
    expect = detail_mmseg_context(data)
    report = segmaps.pascal_context(merged, tmp_path / "VOC2010", work=tmp_path / "w", processes=2)
    folder = tmp_path / "VOC2010" / "SegmentationClassContext"
    got = {p.name: pixels(p) for p in folder.iterdir()}
    assert sorted(got) == sorted(expect)
    for name, label in expect.items():
        np.testing.assert_array_equal(got[name], label, err_msg=name)
    assert any(len(np.unique(v)) > 2 for v in expect.values())  # overlaps, several classes
    for phase in ("train", "val"):
        ids = [Path(i["file_name"]).stem for i in data["images"] if i["phase"] == phase]
        text = (tmp_path / f"VOC2010/ImageSets/SegmentationContext/{phase}.txt").read_text()
        assert text == "".join(f"{i}\n" for i in sorted(ids))
        assert report[phase] == len(ids)
    assert report["written"] == len(expect)


def test_pascal_context_duplicate_id_keeps_first_position(tmp_path):
    """Two records with one id: the Detail API keeps the last record at the first one's place
    in the draw order (a dict); a naive 'file order' reading would draw it last."""
    h = w = 4
    full = np.ones((h, w), np.uint8)
    left = np.zeros((h, w), np.uint8)
    left[:, :2] = 1

    def ann(id_, cat, mask):
        return {"id": id_, "image_id": 1, "category_id": cat, "segmentation": rle_encode(mask)}

    data = {
        "images": [{"image_id": 1, "file_name": "2008_000001.jpg", "phase": "val", "height": h, "width": w}],
        "annos_segmentation": [ann(9, 2, left), ann(8, 9, full), ann(9, 18, left)],
    }  # fmt: skip
    merged = tmp_path / "merged.json"
    merged.write_text(json.dumps(data))
    segmaps.pascal_context(merged, tmp_path / "out", work=tmp_path / "w")
    got = pixels(tmp_path / "out/SegmentationClassContext/2008_000001.png")
    np.testing.assert_array_equal(got, detail_mmseg_context(data)["2008_000001.png"])
    assert (got == list(MAPPING).index(9)).all()  # id 9's second record is drawn first


def test_cityscapes_matches_create_label_image(tmp_path):
    files = make_cityscapes(tmp_path / "gtFine" / "val")
    report = segmaps.cityscapes(
        tmp_path / "gtFine" / "val", tmp_path / "out", work=tmp_path / "w", processes=2
    )
    assert report["maps"] == len(files) == report["written"] and report["cities"] == 3
    drawn = set()
    for path in files:
        out = (
            tmp_path
            / "out"
            / path.parent.name
            / path.name.replace("_polygons.json", "_labelTrainIds.png")
        )
        expect = cs_create_label_image(path)
        np.testing.assert_array_equal(pixels(out), expect, err_msg=str(path))
        drawn |= set(np.unique(expect).tolist())
    assert len(drawn) > 10 and drawn <= {*range(19), 255}


# ---------------------------------------------------------------------------------------------
# Resume


class Boom(RuntimeError):
    pass


def fail_after(monkeypatch, n: int) -> None:
    """Make the (forked) worker raise after writing `n` files."""
    real = segmaps._save_png
    calls = {"n": 0}

    def save(image, final):
        if calls["n"] >= n:
            raise Boom(f"stopped after {n} files")
        calls["n"] += 1
        real(image, final)

    monkeypatch.setattr(segmaps, "_save_png", save)


def test_coco_resume_after_a_worker_fails(tmp_path, monkeypatch):
    names = make_coco_raw(tmp_path / "raw", 40)
    segmaps.coco_stuff_val(tmp_path / "raw", tmp_path / "clean", work=tmp_path / "w0")
    fail_after(monkeypatch, 25)  # 12 whole pairs and half of one
    with pytest.raises(Boom):
        segmaps.coco_stuff_val(tmp_path / "raw", tmp_path / "out", work=tmp_path / "w", processes=1)
    assert not (tmp_path / "out").exists()
    tree = tmp_path / "w" / "tree"
    assert len(list(tree.iterdir())) == 25
    no_temporaries(tree)
    monkeypatch.undo()
    report = segmaps.coco_stuff_val(
        tmp_path / "raw", tmp_path / "out", work=tmp_path / "w", processes=2
    )
    assert report["reused"] == 12 and report["written"] == len(names) - 12
    clean, out = tree_pixels(tmp_path / "clean"), tree_pixels(tmp_path / "out")
    assert clean.keys() == out.keys() and len(out) == 2 * len(names)
    for key in clean:
        np.testing.assert_array_equal(clean[key], out[key])


def test_pascal_context_resume_reuses_index_and_maps(tmp_path, monkeypatch):
    merged = tmp_path / "trainval_merged.json"
    data = make_context_json(merged, seed=2, n_images=30)
    fail_after(monkeypatch, 7)
    with pytest.raises(Boom):
        segmaps.pascal_context(merged, tmp_path / "out", work=tmp_path / "w")
    assert not (tmp_path / "out").exists() and (tmp_path / "w" / "index.sqlite").is_file()
    monkeypatch.undo()
    built = []
    real = segmaps._build_index
    monkeypatch.setattr(segmaps, "_build_index", lambda *a: built.append(a) or real(*a))
    report = segmaps.pascal_context(merged, tmp_path / "out", work=tmp_path / "w")
    assert report["reused"] == 7 and not built  # the index of the first run served
    expect = detail_mmseg_context(data)
    assert report["written"] + 7 == len(expect)
    for name, label in expect.items():
        np.testing.assert_array_equal(
            pixels(tmp_path / "out/SegmentationClassContext" / name), label
        )


def test_changed_input_discards_finished_work(tmp_path, monkeypatch):
    make_coco_raw(tmp_path / "raw", 6)
    fail_after(monkeypatch, 4)
    with pytest.raises(Boom):
        segmaps.coco_stuff_val(tmp_path / "raw", tmp_path / "out", work=tmp_path / "w")
    monkeypatch.undo()
    first = tmp_path / "raw" / "000000100000.png"
    Image.new("L", (5, 5), 181).save(first)  # the source changed since
    report = segmaps.coco_stuff_val(tmp_path / "raw", tmp_path / "out", work=tmp_path / "w")
    assert report["reused"] == 0
    assert (pixels(tmp_path / "out/000000100000_labelTrainIds.png") == 170).all()


KILLED = """
import sys, time
from vlprep import segmaps
real = segmaps._save_png
def slow(image, final):
    real(image, final)
    time.sleep(0.05)
segmaps._save_png = slow
segmaps.coco_stuff_val(sys.argv[1], sys.argv[2], work=sys.argv[3], processes=2)
"""


@pytest.mark.slow
def test_coco_sigkill_then_rerun(tmp_path):
    names = make_coco_raw(tmp_path / "raw", 120)
    work, out = tmp_path / "w", tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO / "scripts"), "VLPREP_PROGRESS": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(tmp_path / "raw"), str(out), str(work)],
        env=env,
        start_new_session=True,
    )
    tree = work / "tree"
    deadline = time.monotonic() + 60
    while not (tree.is_dir() and len(os.listdir(tree)) >= 40):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and both workers
    proc.wait()
    assert not out.exists()
    finished = [n for n in os.listdir(tree) if ".vlprep-tmp-" not in n]
    for name in finished:  # whatever has a final name is whole
        pixels(tree / name)
    pairs = {n.split("_")[0] for n in finished if n.endswith("_instanceTrainIds.png")}
    pairs &= {n.split("_")[0] for n in finished if n.endswith("_labelTrainIds.png")}
    report = segmaps.coco_stuff_val(tmp_path / "raw", out, work=work, processes=2)
    assert report["reused"] == len(pairs) >= 15
    no_temporaries(out)
    assert len(list(out.iterdir())) == 2 * len(names)
    for name in names:
        raw = np.array(Image.open(tmp_path / "raw" / name))
        np.testing.assert_array_equal(
            pixels(out / name.replace(".png", "_labelTrainIds.png")), mmseg_stuff(raw)
        )
        np.testing.assert_array_equal(
            pixels(out / name.replace(".png", "_instanceTrainIds.png")), cosmos_object(raw)
        )


def test_dest_is_replaced_as_a_whole(tmp_path):
    make_coco_raw(tmp_path / "raw", 3)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "stale.png").write_bytes(b"old")
    segmaps.coco_stuff_val(tmp_path / "raw", tmp_path / "out", work=tmp_path / "w")
    assert not (tmp_path / "out" / "stale.png").exists()
    assert len(list((tmp_path / "out").iterdir())) == 8


# ---------------------------------------------------------------------------------------------
# Bad input: a clear error naming the file; nothing at dest


def test_coco_unknown_raw_value_names_the_file(tmp_path):
    make_coco_raw(tmp_path / "raw", 3)
    bad = tmp_path / "raw" / "000000000007.png"
    arr = np.full((10, 10), 5, np.uint8)
    arr[3, 3] = 11  # an unused COCO thing id: absent from mmseg's table
    Image.fromarray(arr).save(bad)
    with pytest.raises(ConversionError, match=r"000000000007\.png: pixel values \[11\]"):
        segmaps.coco_stuff_val(tmp_path / "raw", tmp_path / "out", work=tmp_path / "w", processes=2)
    assert not (tmp_path / "out").exists()


def test_coco_truncated_png_names_the_file(tmp_path):
    make_coco_raw(tmp_path / "raw", 2)
    good = tmp_path / "raw" / "000000100000.png"
    (tmp_path / "raw" / "000000000009.png").write_bytes(good.read_bytes()[:-40])
    with pytest.raises(ConversionError, match=r"000000000009\.png: cannot decode"):
        segmaps.coco_stuff_val(tmp_path / "raw", tmp_path / "out", work=tmp_path / "w")
    (tmp_path / "raw" / "000000000009.png").write_bytes(b"<html>not found</html>")
    with pytest.raises(ConversionError, match=r"000000000009\.png: cannot decode"):
        segmaps.coco_stuff_val(tmp_path / "raw", tmp_path / "out", work=tmp_path / "w")
    Image.new("RGB", (4, 4)).save(tmp_path / "raw" / "000000000009.png")
    with pytest.raises(ConversionError, match=r"000000000009\.png: a RGB image"):
        segmaps.coco_stuff_val(tmp_path / "raw", tmp_path / "out", work=tmp_path / "w")


def test_pascal_context_bad_inputs_name_the_file(tmp_path):
    merged = tmp_path / "trainval_merged.json"
    data = make_context_json(merged, seed=1)
    text = merged.read_text()
    merged.write_text(text[: len(text) // 2])
    with pytest.raises(ConversionError, match=r"trainval_merged\.json: not valid JSON"):
        segmaps.pascal_context(merged, tmp_path / "out", work=tmp_path / "w")

    anns = data["annos_segmentation"]
    ids = [a["id"] for a in anns]
    train = next(
        a
        for a in anns
        if a["image_id"] == data["images"][0]["image_id"] and ids.count(a["id"]) == 1
    )
    train["category_id"] = 1  # not one of the 60
    merged.write_text(json.dumps(data))
    with pytest.raises(
        ConversionError, match=rf"annotation {train['id']} of 2008_000000\.jpg has category 1,"
    ):
        segmaps.pascal_context(merged, tmp_path / "out", work=tmp_path / "w")

    train["category_id"] = 2
    train["segmentation"] = dict(
        train["segmentation"], counts=train["segmentation"]["counts"] + "1"
    )
    merged.write_text(json.dumps(data))
    with pytest.raises(
        ConversionError, match=rf"annotation {train['id']} of 2008_000000\.jpg: RLE runs"
    ):
        segmaps.pascal_context(merged, tmp_path / "out", work=tmp_path / "w")

    train["segmentation"] = [[0, 0, 5, 0, 5, 5]]  # a polygon: getMask cannot decode it either
    merged.write_text(json.dumps(data))
    with pytest.raises(ConversionError, match=rf"annotation {train['id']}: .*RLE"):
        segmaps.pascal_context(merged, tmp_path / "out", work=tmp_path / "w")
    assert not (tmp_path / "out").exists()


def test_cityscapes_bad_inputs_name_the_file(tmp_path):
    files = make_cityscapes(tmp_path / "val", per_city=2)
    data = json.loads(files[3].read_text())
    data["objects"].append({"label": "spaceship", "polygon": [[0, 0], [5, 0], [5, 5]]})
    files[3].write_text(json.dumps(data))
    with pytest.raises(ConversionError, match=rf"{files[3].name}: object \d+: label 'spaceship'"):
        segmaps.cityscapes(tmp_path / "val", tmp_path / "out", work=tmp_path / "w", processes=2)
    data["objects"][-1]["deleted"] = 1  # a deleted object is skipped before its label is looked up
    files[3].write_text(json.dumps(data))
    files[1].write_text('{"imgHeight": 64, "imgWidth": 96, "objects": [')
    with pytest.raises(ConversionError, match=rf"{files[1].name}: not a Cityscapes polygon"):
        segmaps.cityscapes(tmp_path / "val", tmp_path / "out", work=tmp_path / "w")
    files[1].unlink()
    report = segmaps.cityscapes(tmp_path / "val", tmp_path / "out", work=tmp_path / "w")
    assert report["maps"] == len(files) - 1


def big_context_json(path: Path, images: int) -> None:
    """A trainval_merged.json of `images` images with 6 annotations each (one RLE reused)."""
    rle = rle_encode(np.eye(40, 50, dtype=np.uint8))
    with open(path, "w") as f:
        f.write('{"images": [')
        f.write(",".join(
            json.dumps({"image_id": i, "file_name": f"2008_{i:06d}.jpg", "phase": "val",
                        "height": 40, "width": 50})
            for i in range(images)
        ))  # fmt: skip
        f.write('], "annos_segmentation": [')
        f.write(",".join(
            json.dumps({"id": n, "image_id": n % images, "category_id": 2, "segmentation": rle})
            for n in range(6 * images)
        ))  # fmt: skip
        f.write("]}")


def test_pascal_context_index_memory_does_not_grow_with_the_json(tmp_path):
    """The json is streamed into SQLite: the indexing's peak Python memory is the same for a
    file 8x larger (json.load would hold it all, several times its size)."""
    import tracemalloc

    peaks = {}
    for images in (500, 4000):
        merged = tmp_path / f"{images}.json"
        big_context_json(merged, images)
        tracemalloc.start()
        segmaps._build_index(merged, tmp_path / f"{images}.sqlite")
        peaks[images] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert merged.stat().st_size > 4_000_000
    assert peaks[4000] < 1.3 * peaks[500] + 200_000, peaks


def test_a_cut_map_fails_whatever_the_process_set(tmp_path):
    """Pillow's LOAD_TRUNCATED_IMAGES is process-wide, and the consumer checks of VPGTrans and
    MiniGPT-4 need it on: a conversion in the same process must still refuse a cut map."""
    from PIL import ImageFile

    make_coco_raw(tmp_path / "raw", 2)
    good = tmp_path / "raw" / "000000100000.png"
    (tmp_path / "raw" / "000000000009.png").write_bytes(good.read_bytes()[:-40])
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        with pytest.raises(ConversionError, match=r"000000000009\.png: cannot decode"):
            segmaps.coco_stuff_val(tmp_path / "raw", tmp_path / "out", work=tmp_path / "w")
        assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # and the setting is put back
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False
