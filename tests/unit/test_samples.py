"""Sample grids (vlprep.samples): drawn from small built trees made here, one per kind of
reader, read the way the consumers read them; bounded whatever the product's size."""

import io
import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from PIL import Image

from vlprep import samples
from vlprep.errors import VlprepError
from vlprep.products import PRODUCTS
from vlprep.products.base import Samples
from vlprep.samples import SAMPLE_LIMIT, THUMB, draw_grid, grid_size

GREY = (128, 128, 128)


def jpeg(colour=GREY, size=(40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG", quality=95)
    return out.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def roots(tmp_path: Path) -> dict[str, str]:
    names = ("g3m", "cosmos", "lavis", "minigpt4", "glamm", "downloads", "extracted", "reports")
    return {"data_root": str(tmp_path), **{name: str(tmp_path / name) for name in names}}


def grid(tmp_path: Path, product: str, **kwargs) -> tuple[list[str], Image.Image]:
    out = tmp_path / "grids" / f"{product}.jpg"
    texts = draw_grid(product, roots(tmp_path), out, **kwargs)
    image = Image.open(out)
    assert image.format == "JPEG"
    image.load()
    return texts, image


def wds_folder(folder: Path, tars: int, per_tar: int, caption_in_json: bool = False) -> None:
    folder.mkdir(parents=True)
    for t in range(tars):
        with wds.TarWriter(str(folder / f"{t:05d}.tar")) as sink:
            for i in range(per_tar):
                text = f"caption {t}-{i}"
                sample = {"__key__": f"{t:05d}{i:04d}", "jpg": jpeg()}
                if caption_in_json:
                    sample["json"] = json.dumps({"caption": text}).encode()
                else:
                    sample["txt"] = text.encode()
                sink.write(sample)


def image_folder(folder: Path, classes: int, per_class: int) -> None:
    data = jpeg()
    for c in range(classes):
        for i in range(per_class):
            write(folder / f"n{c:08d}" / f"ILSVRC2012_val_{c * per_class + i:08d}.JPEG", data)
    write(folder / ".snakemake_timestamp", b"")


# ---- one product per kind of reader --------------------------------------------------------


def test_wds_txt_captions(tmp_path):
    wds_folder(tmp_path / "g3m/coco/coco_valid", tars=2, per_tar=20)
    texts, image = grid(tmp_path, "coco_valid")
    # the first tar in name order, its first samples, in order
    assert texts == [f"caption 0-{i}" for i in range(SAMPLE_LIMIT)]
    assert image.size == grid_size(SAMPLE_LIMIT)


def test_wds_json_captions_and_fewer_samples_than_the_limit(tmp_path):
    wds_folder(tmp_path / "minigpt4/laion/laion_dataset", tars=1, per_tar=5, caption_in_json=True)
    texts, image = grid(tmp_path, "laion115m")
    assert texts == [f"caption 0-{i}" for i in range(5)]
    assert image.size == grid_size(5)
    assert grid_size(5) != grid_size(SAMPLE_LIMIT)


def test_image_folder_labels_are_class_folders_a_few_per_class(tmp_path):
    image_folder(tmp_path / "cosmos/imagenet/data/val_images", classes=10, per_class=5)
    texts, image = grid(tmp_path, "cosmos_imagenet")
    assert len(texts) == SAMPLE_LIMIT
    assert texts[:4] == ["n00000000", "n00000000", "n00000001", "n00000001"]
    assert len(set(texts)) == SAMPLE_LIMIT // samples.PER_CLASS
    assert image.size == grid_size(SAMPLE_LIMIT)


def test_cifar_rows_with_their_label_names(tmp_path):
    folder = tmp_path / "cosmos/classification/cifar-10-batches-py"
    names = [f"class{i}" for i in range(10)]
    rows = bytes((r * 7 + p) % 256 for r in range(20) for p in range(3072))
    batch = {
        "data": np.frombuffer(rows, np.uint8).reshape(20, 3072),
        "labels": [r % 10 for r in range(20)],
    }
    write(folder / "batches.meta", pickle.dumps({"label_names": names}))
    write(folder / "test_batch", pickle.dumps(batch))
    texts, image = grid(tmp_path, "cosmos_cifar10", limit=6)
    assert texts == [f"class{i}" for i in range(6)]
    assert image.size == grid_size(6)


def test_annotation_records_joined_as_the_consumer_joins_them(tmp_path):
    lavis = tmp_path / "lavis"
    records = [
        {"image": f"{i}.jpg", "question": f"Is it {i}?", "answer": "yes", "question_id": i}
        for i in range(30)
    ]
    records.insert(1, {"question": "no image field"})  # skipped, as no image is named
    write(lavis / "gqa/annotations/val_balanced_questions.json", json.dumps(records).encode())
    for i in range(30):
        if i != 2:  # a missing image is drawn as a tile saying so, the grid goes on
            write(lavis / f"gqa/images/{i}.jpg", jpeg())
    texts, image = grid(tmp_path, "gqa", limit=4)
    assert texts == [f"Is it {i}? → yes" for i in range(4)]
    assert image.size == grid_size(4)


def test_minigpt4_align_records_under_annotations_by_image_id(tmp_path):
    storage = tmp_path / "minigpt4/cc_sbu_align"
    anns = [{"image_id": str(i), "caption": f"The image shows {i}."} for i in range(3)]
    write(storage / "filter_cap.json", json.dumps({"annotations": anns}).encode())
    for i in range(3):
        write(storage / f"image/{i}.jpg", jpeg())
    texts, _ = grid(tmp_path, "minigpt4_cc_sbu_align")
    assert texts == [f"The image shows {i}." for i in range(3)]


def coco_file(path: Path, images: int, annotations_first: bool = False) -> None:
    data = {
        "images": [
            {"id": i, "file_name": f"train2017/{i:012d}.jpg", "width": 40, "height": 30}
            for i in range(images)
        ],
        "annotations": [
            {
                "id": i,
                "image_id": i,
                "category_id": 1 + i % 2,
                "bbox": [1, 1, 10, 10],
                "segmentation": [[1, 1, 20, 1, 20, 20, 1, 20]],
            }
            for i in range(images)
        ],  # fmt: skip
        "categories": [{"id": 1, "name": "mug"}, {"id": 2, "name": "mug:handle"}],
    }
    write(path, json.dumps(data).encode())


def test_coco_style_file_names_categories_of_each_image(tmp_path):
    glamm = tmp_path / "glamm"
    coco_file(glamm / "Semantic_Segm/paco_lvis/annotations/paco_lvis_v1_train.json", images=5)
    for i in range(5):
        write(glamm / f"coco_2017/train2017/{i:012d}.jpg", jpeg())
    texts, image = grid(tmp_path, "glamm_paco_lvis")
    # categories come after the annotations in the file: named all the same
    assert texts == ["mug", "mug:handle", "mug", "mug:handle", "mug"]
    assert image.size == grid_size(5)
    # the polygon is blended over the grey image: the tile's top-left is no longer grey
    pixel = image.getpixel((samples.GAP + 10, samples.GAP + THUMB // 2 - 20))
    assert max(abs(a - b) for a, b in zip(pixel, GREY, strict=True)) > 30, pixel


def test_label_maps_are_blended_over_their_images(tmp_path):
    voc = tmp_path / "cosmos/mmseg/VOCdevkit/VOC2012"
    ids = ["2007_000001", "2007_000002"]
    write(voc / "ImageSets/Segmentation/val.txt", ("\n".join(ids) + "\n").encode())
    for n, i in enumerate(ids):
        write(voc / f"JPEGImages/{i}.jpg", jpeg(size=(40, 40)))
        label = io.BytesIO()
        # the first map all class 1, the second all 255 (ignored: left uncoloured)
        Image.new("L", (40, 40), 1 if n == 0 else 255).save(label, "PNG")
        write(voc / f"SegmentationClass/{i}.png", label.getvalue())
    texts, image = grid(tmp_path, "cosmos_voc2012")
    assert texts == ids
    centre = (samples.GAP + THUMB // 2, samples.GAP + THUMB // 2)
    coloured = image.getpixel(centre)
    plain = image.getpixel((centre[0] + samples.TILE[0] + samples.GAP, centre[1]))
    # VOC's colour of class 1 is (128, 0, 0): half of it over grey lowers green and blue
    assert coloured[1] < 100 and coloured[2] < 100, coloured
    assert all(abs(a - b) < 12 for a, b in zip(plain, GREY, strict=True)), plain


def test_maps_listed_first_name_their_images(tmp_path):
    glamm = tmp_path / "glamm"
    for i in range(3):
        label = io.BytesIO()
        Image.new("L", (40, 30), i).save(label, "PNG")
        write(glamm / f"Semantic_Segm/cocostuff/train2017/{i:012d}.png", label.getvalue())
        write(glamm / f"coco_2017/train2017/{i:012d}.jpg", jpeg())
    texts, _ = grid(tmp_path, "glamm_cocostuff")
    assert texts == [f"{i:012d}" for i in range(3)]


def test_list_file_labels(tmp_path):
    data = tmp_path / "cosmos/classification/fgvc-aircraft-2013b/data"
    write(data / "images_variant_test.txt", b"1000001 707-320\n1000002 Boeing 737\n")
    for i in (1000001, 1000002):
        write(data / f"images/{i}.jpg", jpeg())
    assert grid(tmp_path, "cosmos_fgvc_aircraft")[0] == ["707-320", "Boeing 737"]


def test_a_product_without_images_says_why(tmp_path):
    texts, image = grid(tmp_path, "glamm_grand")
    assert texts == []
    assert image.size == grid_size(1)


# ---- errors, atomic output -----------------------------------------------------------------


def test_a_product_not_built_is_an_error_naming_it_and_writes_nothing(tmp_path):
    out = tmp_path / "grids" / "gqa.jpg"
    with pytest.raises(VlprepError, match=r"val_balanced_questions\.json: missing.*snakemake gqa"):
        draw_grid("gqa", roots(tmp_path), out)
    assert not out.exists()


def test_a_malformed_annotation_file_names_it_and_leaves_no_grid(tmp_path):
    write(tmp_path / "lavis/gqa/annotations/val_balanced_questions.json", b'[{"image": "1.jpg",')
    out = tmp_path / "grids" / "gqa.jpg"
    with pytest.raises(VlprepError, match=r"val_balanced_questions\.json: not valid JSON"):
        draw_grid("gqa", roots(tmp_path), out)
    assert not out.exists()
    assert not out.parent.exists() or os.listdir(out.parent) == []


def test_an_annotation_file_is_parsed_only_to_its_budget(tmp_path, monkeypatch):
    glamm = tmp_path / "glamm"
    path = glamm / "Semantic_Segm/paco_lvis/annotations/paco_lvis_v1_train.json"
    coco_file(path, images=400)
    for i in range(3):
        write(glamm / f"coco_2017/train2017/{i:012d}.jpg", jpeg())
    # the images list ends past the budget: the grid is drawn from what came before, quietly
    monkeypatch.setattr(samples, "ANNOTATION_BYTES", 2000)
    assert path.stat().st_size > 10 * 2000
    texts, image = grid(tmp_path, "glamm_paco_lvis", limit=3)
    assert texts == [f"train2017/{i:012d}.jpg" for i in range(3)]  # no annotation reached


# ---- bounded whatever the size ---------------------------------------------------------------

OPENED: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if OPENED is not None and event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


def measured(tmp_path: Path, product: str, monkeypatch) -> tuple[int, int, tuple[int, int]]:
    """(files opened, folder entries looked at, grid size) of drawing `product`'s grid."""
    global OPENED
    entries = 0
    real_scandir = os.scandir

    class Counted:
        """os.scandir, counting the entries it yields under the product's tree."""

        def __init__(self, path="."):
            self.scan = real_scandir(path)
            self.ours = str(tmp_path) in os.fsdecode(path)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.scan.close()

        def __iter__(self):
            return self

        def __next__(self):
            nonlocal entries
            entry = next(self.scan)
            entries += self.ours
            return entry

        def close(self):
            self.scan.close()

    monkeypatch.setattr(os, "scandir", Counted)
    OPENED = []
    try:
        out = tmp_path / "grids" / f"{product}.jpg"
        draw_grid(product, roots(tmp_path), out)
        opened = [p for p in OPENED if str(tmp_path) in p and "/grids/" not in p]
    finally:
        OPENED = None
        monkeypatch.undo()
    return len(opened), entries, Image.open(out).size


@pytest.mark.parametrize(
    ("product", "build"),
    [
        ("cosmos_imagenet", lambda root, n: image_folder(root / "cosmos/imagenet/data/val_images",
                                                         classes=10 * n, per_class=15)),
        ("cosmos_flowers102", lambda root, n: [
            write(root / f"cosmos/classification/flowers-102/jpg/image_{i:05d}.jpg", jpeg())
            for i in range(150 * n)]),
        ("coco_valid", lambda root, n: wds_folder(root / "g3m/coco/coco_valid", tars=2 * n,
                                                  per_tar=15 * n)),
    ],
)  # fmt: skip
def test_a_product_20x_larger_opens_no_more_files_and_draws_the_same_grid(
    tmp_path, monkeypatch, product, build
):
    small, large = tmp_path / "small", tmp_path / "large"
    build(small, 1)
    build(large, 20)
    opened_small, entries_small, size_small = measured(small, product, monkeypatch)
    opened_large, entries_large, size_large = measured(large, product, monkeypatch)
    assert size_large == size_small == grid_size(SAMPLE_LIMIT)
    assert opened_large == opened_small <= SAMPLE_LIMIT + 1
    # folders are left after a bounded number of entries, when they hold more
    total = sum(len(dirs) + len(files) for _, dirs, files in os.walk(large))
    assert entries_large <= min(total, samples.SCAN_ENTRIES)
    if product != "coco_valid":  # 40 tars: fewer than the bound
        assert total > samples.SCAN_ENTRIES


def test_a_long_annotation_file_opens_no_more_files(tmp_path, monkeypatch):
    for root, n in ((tmp_path / "small", 30), (tmp_path / "large", 600)):
        records = [{"image": f"{i}.jpg", "question": "q", "answer": "a"} for i in range(n)]
        write(
            root / "lavis/gqa/annotations/val_balanced_questions.json", json.dumps(records).encode()
        )
        for i in range(n):
            write(root / f"lavis/gqa/images/{i}.jpg", jpeg())
    small = measured(tmp_path / "small", "gqa", monkeypatch)
    large = measured(tmp_path / "large", "gqa", monkeypatch)
    assert large == small
    assert small[0] == SAMPLE_LIMIT + 1  # the file and one image per tile


# ---- the registry ----------------------------------------------------------------------------

ROOT_NAMES = {"g3m", "cosmos", "lavis", "minigpt4", "glamm", "data_root", "downloads", "extracted"}


@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_every_product_declares_its_samples(name):
    spec = PRODUCTS[name].samples
    assert isinstance(spec, Samples), f"{name}: no samples= in its family module"
    assert spec.kind in samples.READERS
    if spec.kind == "none":
        assert spec.why, f"{name}: a product without images says why"
        return
    fields = ["path"] + {
        "annotations": ["images"],
        "coco": ["images"],
        "lines": ["images"],
        "segmap": ["images", "maps"],
    }.get(spec.kind, [])
    for field in fields:
        template = getattr(spec, field)
        assert template.startswith("{") and template[1:].split("}")[0] in ROOT_NAMES, (
            f"{name}: samples {field} {template!r} is not under a registry root"
        )
        # under a folder the product builds: its samples are the built product itself
        resolved = template.format(**{r: f"/R/{r}" for r in ROOT_NAMES | {"reports"}})
        files = [f.format(**{r: f"/R/{r}" for r in ROOT_NAMES | {"reports"}}) for f in
                 PRODUCTS[name].files]  # fmt: skip
        assert any(resolved == f or resolved.startswith(f + "/") or f.startswith(resolved + "/")
                   for f in files), f"{name}: {resolved} is none of its files {files}"  # fmt: skip
