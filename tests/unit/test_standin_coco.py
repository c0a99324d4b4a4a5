"""The COCO stand-ins: real layout and schema, the real data's quirks, byte-for-byte repeatable."""

import hashlib
import io
import json
import re
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from standin.coco import make_bad_archives, make_coco2014, make_coco2017

IMAGE_FIELDS = {"license", "file_name", "coco_url", "height", "width", "date_captured"}
IMAGE_FIELDS |= {"flickr_url", "id"}
INSTANCE_FIELDS = {"segmentation", "area", "iscrowd", "image_id", "bbox", "category_id", "id"}


@pytest.fixture(scope="module")
def coco2017(tmp_path_factory) -> dict[str, Path]:
    return make_coco2017(tmp_path_factory.mktemp("coco2017"))


def annotation(zips: dict[str, Path], name: str) -> dict:
    with zipfile.ZipFile(zips["annotations_trainval2017.zip"]) as zf:
        return json.loads(zf.read(f"annotations/{name}"))


def digests(files: dict[str, Path]) -> dict[str, str]:
    return {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in files.items()}


def test_zips_have_the_real_member_layout(coco2017):
    assert set(coco2017) == {"val2017.zip", "train2017.zip", "annotations_trainval2017.zip"}
    for split in ("val2017", "train2017"):
        with zipfile.ZipFile(coco2017[f"{split}.zip"]) as zf:
            infos = zf.infolist()
        assert infos[0].filename == f"{split}/" and infos[0].is_dir()
        names = [i.filename for i in infos[1:]]
        assert names == sorted(names)
        assert all(re.fullmatch(rf"{split}/\d{{12}}\.jpg", n) for n in names)
        assert {i.compress_type for i in infos[1:]} == {zipfile.ZIP_STORED}
    with zipfile.ZipFile(coco2017["annotations_trainval2017.zip"]) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == ["annotations/"] + [
        f"annotations/{kind}_{split}2017.json"
        for kind in ("captions", "instances", "person_keypoints")
        for split in ("train", "val")
    ]
    assert {i.compress_type for i in infos[1:]} == {zipfile.ZIP_DEFLATED}


def test_captions_have_the_real_schema_and_quirks(coco2017):
    data = annotation(coco2017, "captions_val2017.json")
    assert set(data) == {"info", "licenses", "images", "annotations"}
    assert data["info"]["year"] == 2017
    images, anns = data["images"], data["annotations"]
    assert len(images) > 2999
    assert all(set(image) == IMAGE_FIELDS for image in images)
    assert all(set(ann) == {"image_id", "id", "caption"} for ann in anns)

    ids = [image["id"] for image in images]
    assert ids != sorted(ids), "the real image list is not sorted by id"
    assert max(ids) - min(ids) + 1 > len(ids), "ids are sparse"
    assert len({ann["id"] for ann in anns}) == len(anns)
    per_image = Counter(ann["image_id"] for ann in anns)
    assert set(per_image) == set(ids)
    assert set(per_image.values()) == {5, 6, 7}
    runs = sum(1 for a, b in zip(anns, anns[1:], strict=False) if a["image_id"] == b["image_id"])
    assert runs < len(anns) / 10, "captions are interleaved, not grouped by image"

    captions = [ann["caption"] for ann in anns]
    assert any(c.startswith(" ") for c in captions)
    assert any(c.endswith(" ") for c in captions)
    assert any(c.endswith("\n") for c in captions)
    assert any("café" in c for c in captions) and any("naïve" in c for c in captions)
    assert any('"' in c for c in captions)


def test_annotation_json_is_compact_and_ascii_escaped(coco2017):
    with zipfile.ZipFile(coco2017["annotations_trainval2017.zip"]) as zf:
        raw = zf.read("annotations/captions_val2017.json")
    assert raw.isascii() and b"caf\\u00e9" in raw and b'\\"STOP\\"' in raw
    assert raw.startswith(b'{"info":{"description":"COCO 2017 Dataset"')


def test_instances_and_keypoints_have_the_real_schema(coco2017):
    instances = annotation(coco2017, "instances_train2017.json")
    assert set(instances) == {"info", "licenses", "images", "annotations", "categories"}
    assert len(instances["categories"]) == 80
    assert {c["id"] for c in instances["categories"]} <= set(range(1, 91))
    assert all(set(ann) == INSTANCE_FIELDS for ann in instances["annotations"])
    image_ids = {image["id"] for image in instances["images"]}
    assert {ann["image_id"] for ann in instances["annotations"]} <= image_ids

    keypoints = annotation(coco2017, "person_keypoints_val2017.json")
    person = keypoints["categories"]
    assert [c["name"] for c in person] == ["person"] and len(person[0]["keypoints"]) == 17
    anns = keypoints["annotations"]
    assert anns and all(ann["category_id"] == 1 and len(ann["keypoints"]) == 51 for ann in anns)
    crowds = [
        a for a in annotation(coco2017, "instances_val2017.json")["annotations"] if a["iscrowd"]
    ]
    assert crowds and all(set(a["segmentation"]) == {"counts", "size"} for a in crowds)


def test_images_match_the_annotations_and_decode(coco2017):
    images = {i["file_name"]: i for i in annotation(coco2017, "captions_val2017.json")["images"]}
    with zipfile.ZipFile(coco2017["val2017.zip"]) as zf:
        members = {i.filename.removeprefix("val2017/"): zf.read(i) for i in zf.infolist()[1:]}
    assert set(members) == set(images)
    assert len({hashlib.sha256(data).digest() for data in members.values()}) == len(members)
    sizes = [len(data) for data in members.values()]
    assert 1_000 < sum(sizes) / len(sizes) < 10_000
    for name in sorted(members)[::100]:
        with Image.open(io.BytesIO(members[name])) as image:
            image.load()
            assert image.format == "JPEG"
            assert image.size == (images[name]["width"], images[name]["height"])


def test_output_is_byte_for_byte_repeatable(tmp_path):
    first = make_coco2017(tmp_path / "a", n_train=3, n_val=30)
    first |= make_coco2014(tmp_path / "a")
    second = make_coco2017(tmp_path / "b", n_train=3, n_val=30)
    second |= make_coco2014(tmp_path / "b")
    assert digests(first) == digests(second)
    other_seed = make_coco2017(tmp_path / "c", n_train=3, n_val=30, seed=1)
    assert digests(other_seed)["val2017.zip"] != digests(first)["val2017.zip"]


def test_coco2014_names_follow_the_real_pattern(tmp_path):
    made = make_coco2014(tmp_path, n_train=4, n_val=3, n_test=2)
    assert set(made) == {"train2014.zip", "val2014.zip", "test2014.zip", "test2015.zip"}
    for name, path in made.items():
        split = name.removesuffix(".zip")
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        assert names[0] == f"{split}/"
        assert all(re.fullmatch(rf"{split}/COCO_{split}_\d{{12}}\.jpg", n) for n in names[1:])
    with zipfile.ZipFile(made["train2014.zip"]) as zf:
        assert len(zf.namelist()) == 1 + 4


def test_jpeg_bytes_pads_to_a_valid_jpeg(tmp_path):
    made = make_coco2017(tmp_path, n_train=1, n_val=3, jpeg_bytes=150_000)
    with zipfile.ZipFile(made["val2017.zip"]) as zf:
        blobs = [zf.read(i) for i in zf.infolist()[1:]]
    assert len(set(blobs)) == 3
    for blob in blobs:
        assert abs(len(blob) - 150_000) <= 4
        with Image.open(io.BytesIO(blob)) as image:
            image.load()


def test_bad_archives_are_all_made(tmp_path):
    made = make_bad_archives(tmp_path)
    assert all(path.is_file() and path.parent == tmp_path for path in made.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(made)
