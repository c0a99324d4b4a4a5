"""COCO -> nxtp webdataset tree: byte-exact against the seed script, tars webdataset can read."""

import io
import json
import os
import random
import tarfile
from pathlib import Path

import pytest
import webdataset
from PIL import Image

from bench.seed_mscoco_to_wds import seed_reference
from vlprep.errors import ConversionError
from vlprep.nxtp import build_coco_wds

SPLIT = "val2017"
N_IMAGES = 3005  # crosses the 2998-image first sub-folder; tests on this tree are `slow`
CAPTIONS = [
    "  A cat on a mat. ",
    "\tUn café près de la fenêtre\n",
    "A dog 🐕 chasing a ball",
    'Quotes "inside" and back\\slash',
    "plain caption",
    " ",
]


def tiny_jpeg(text: str) -> bytes:
    """A valid 8x8 JPEG whose bytes are unique through its comment."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (len(text) * 9 % 256, 80, 160)).save(buf, "JPEG", comment=text)
    return buf.getvalue()


def make_coco(root: Path, n: int, seed: int = 0) -> Path:
    """A COCO-like tree: root/val2017/*.jpg and root/annotations/captions_val2017.json.

    Image ids are sparse, `images` is shuffled, annotations are shuffled across images, some
    images have no caption, one annotation points to no image and one annotation id repeats.
    """
    rng = random.Random(seed)
    ids = rng.sample(range(1, 10 * n), n)
    image_dir = root / SPLIT
    image_dir.mkdir(parents=True)
    images, anns = [], []
    for image_id in ids:
        name = f"{image_id:012d}.jpg"
        (image_dir / name).write_bytes(tiny_jpeg(name))
        images.append({"id": image_id, "file_name": name, "height": 8, "width": 8})
        for k in range(rng.choice([0, 1, 5, 6])):
            anns.append({"image_id": image_id, "id": len(anns) + 1, "caption": CAPTIONS[k]})
    anns.append({"image_id": 10 * n + 1, "id": len(anns) + 1, "caption": "orphan"})
    anns.append({"image_id": ids[0], "id": 1, "caption": "repeated id wins"})
    rng.shuffle(images)
    rng.shuffle(anns)
    doc = {"info": {"year": 2017}, "licenses": [], "images": images, "annotations": anns}
    ann_file = root / "annotations" / f"captions_{SPLIT}.json"
    ann_file.parent.mkdir()
    ann_file.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return ann_file


def build(root: Path, out: Path, **kwargs) -> dict:
    ann_file = root / "annotations" / f"captions_{SPLIT}.json"
    return build_coco_wds(ann_file, root / SPLIT, out, split=SPLIT, **kwargs)


def tree(path: Path) -> dict[str, bytes]:
    """Relative path -> content (links followed) of every file under `path`."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*.*"))}


@pytest.fixture(scope="module")
def coco(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("coco")
    make_coco(root, N_IMAGES)
    return root


@pytest.fixture(scope="module")
def seed_tree(coco) -> dict[str, bytes]:
    seed_reference(coco, SPLIT)
    return tree(coco / "coco_valid")


@pytest.fixture(scope="module")
def built(coco, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("out") / "coco_valid"
    return out, build(coco, out)


@pytest.mark.slow
def test_triplets_equal_the_seed_script_output(built, seed_tree):
    out, _ = built
    ours = {k: v for k, v in tree(out).items() if not k.endswith(".tar")}
    assert ours.keys() == seed_tree.keys()
    assert ours == seed_tree


@pytest.mark.slow
def test_folders_split_like_the_seed(built):
    out, report = built
    assert report["per_folder"] == [2998, N_IMAGES - 2998]
    assert report["images"] == N_IMAGES and report["folders"] == 2
    assert sorted(p.name for p in out.iterdir()) == ["00000", "00000.tar", "00001", "00001.tar"]
    assert len(list((out / "00000").glob("*.jpg"))) == 2998


@pytest.mark.slow
def test_tars_are_sorted_with_fixed_metadata_and_match_folders(built):
    out, report = built
    assert report["tar_bytes"] == sum(t.stat().st_size for t in out.glob("*.tar"))
    for shard in out.glob("*.tar"):
        folder = out / shard.stem
        with tarfile.open(shard) as tar:
            infos = tar.getmembers()
            assert [i.name for i in infos] == sorted(p.name for p in folder.iterdir())
            for info in infos:
                assert (info.mtime, info.uid, info.gid, info.mode) == (0, 0, 0, 0o644)
                assert (info.uname, info.gname) == ("", "")
                assert tar.extractfile(info).read() == (folder / info.name).read_bytes()


@pytest.mark.slow
def test_webdataset_reads_every_sample_complete(built):
    out, report = built
    urls = [str(out / f"{i:05d}.tar") for i in range(report["folders"])]
    counts = [0] * len(urls)
    for sample in webdataset.WebDataset(urls, shardshuffle=False):
        assert {"jpg", "txt", "json"} <= sample.keys()
        meta = json.loads(sample["json"])
        assert meta["cap"] == sample["txt"].decode("utf-8")
        folder = out / Path(sample["__url__"]).stem
        assert sample["jpg"] == (folder / f"{sample['__key__']}.jpg").read_bytes()
        counts[urls.index(sample["__url__"])] += 1
    assert counts == report["per_folder"]


@pytest.mark.slow
def test_two_builds_are_byte_identical_also_with_threads(coco, built, tmp_path):
    out, report = built
    again = tmp_path / "coco_valid"
    build(coco, again, workers=2)
    for i in range(report["folders"]):
        assert (again / f"{i:05d}.tar").read_bytes() == (out / f"{i:05d}.tar").read_bytes()


@pytest.fixture
def small(tmp_path) -> Path:
    root = tmp_path / "coco"
    make_coco(root, 12, seed=1)
    return root


def test_symlink_mode_links_relatively(small, tmp_path):
    out = tmp_path / "g3m" / "coco" / "coco_valid"
    build(small, out)
    for jpg in (out / "00000").glob("*.jpg"):
        target = os.readlink(jpg)
        assert not os.path.isabs(target)
        assert jpg.resolve() == (small / SPLIT / jpg.name).resolve()


@pytest.mark.parametrize(("mode", "same_inode"), [("hardlink", True), ("copy", False)])
def test_hardlink_and_copy_modes(small, tmp_path, mode, same_inode):
    out = tmp_path / "coco_valid"
    build(small, out, link_mode=mode)
    for jpg in (out / "00000").glob("*.jpg"):
        src = small / SPLIT / jpg.name
        assert not jpg.is_symlink()
        assert jpg.read_bytes() == src.read_bytes()
        assert (jpg.stat().st_ino == src.stat().st_ino) is same_inode


def test_unknown_link_mode_rejected(small, tmp_path):
    with pytest.raises(ValueError, match="link_mode"):
        build(small, tmp_path / "coco_valid", link_mode="move")


def test_malformed_json_names_the_file(small, tmp_path):
    ann_file = small / "annotations" / f"captions_{SPLIT}.json"
    ann_file.write_bytes(ann_file.read_bytes()[:-40])
    out = tmp_path / "coco_valid"
    with pytest.raises(ConversionError, match=ann_file.name):
        build(small, out)
    assert not out.exists()


def test_missing_image_is_named_and_nothing_is_written(small, tmp_path):
    victim = sorted((small / SPLIT).iterdir())[3]
    victim.unlink()
    out = tmp_path / "coco_valid"
    with pytest.raises(ConversionError, match=rf"{victim.name}.*extraction is incomplete"):
        build(small, out)
    assert list(tmp_path.iterdir()) == [small]


def rewrite_captions(root: Path, edit) -> Path:
    ann_file = root / "annotations" / f"captions_{SPLIT}.json"
    doc = json.loads(ann_file.read_text(encoding="utf-8"))
    edit(doc)
    ann_file.write_text(json.dumps(doc), encoding="utf-8")
    return ann_file


def test_annotation_without_caption_names_the_file(small, tmp_path):
    ann_file = rewrite_captions(small, lambda doc: doc["annotations"][0].pop("caption"))
    with pytest.raises(ConversionError, match=ann_file.name):
        build(small, tmp_path / "coco_valid")


def test_colliding_output_names_rejected(small, tmp_path):
    def collide(doc):
        doc["images"][1]["file_name"] = doc["images"][0]["file_name"].replace(".jpg", ".v2.jpg")

    rewrite_captions(small, collide)
    with pytest.raises(ConversionError, match="both be written as 00000/"):
        build(small, tmp_path / "coco_valid")
    assert not (tmp_path / "coco_valid").exists()
