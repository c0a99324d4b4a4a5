"""What the consumers' code opens, checked on a built layout.

The paths come from reading the consumers' loaders (../shared/research/datasets.md, D01-D09 for
VPGTrans's LAVIS cache_root, D28-D31 for nxtp's data_root), written down here independently of
the workflow's own tables, so a rule that puts a file in the wrong place fails a check instead
of agreeing with itself. Beyond existence, each check does what the loader will do, with no
tolerance: open every image an annotation names through the dataset class's own path join and
decode it with Pillow as the class does (a missing or undecodable image fails the check, as it
fails the training run), read every webdataset tar the way torchdata groups it.

`python -m vlprep.consumers <data_root> [product ...]` prints the problems; exit 1 if any.
"""

import argparse
import functools
import glob
import json
import os
import re
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import ijson

from vlprep.classification import CLASSIFICATION_CHECKS
from vlprep.images import truncated_images

# ---- VPGTrans / LAVIS (cache_root) ---------------------------------------------------------

# The annotation files each builder opens (VPGTrans lavis/configs/datasets/*/*.yaml `storage`).
LAVIS_FILES = {
    "lavis_coco": [
        "coco/annotations/coco_karpathy_train.json",
        "coco/annotations/coco_karpathy_val.json",
        "coco/annotations/coco_karpathy_test.json",
        "coco/annotations/vqa_train.json",
        "coco/annotations/vqa_val.json",
        "coco/annotations/vqa_val_eval.json",
        "coco/annotations/answer_list.json",
        "coco/annotations/v2_OpenEnded_mscoco_val2014_questions.json",
        "coco/annotations/v2_mscoco_val2014_annotations.json",
        "coco/annotations/vqa_test.json",
        "okvqa/annotations/okvqa_train.json",
        "okvqa/annotations/vqa_val_eval.json",
        "okvqa/annotations/answer_list.json",
        "okvqa/annotations/OpenEnded_mscoco_val2014_questions.json",
        "okvqa/annotations/mscoco_val2014_annotations.json",
    ],
    "nocaps": ["nocaps/annotations/nocaps_val.json", "nocaps/annotations/nocaps_test.json"],
    "gqa": [
        "gqa/annotations/train_balanced_questions.json",
        "gqa/annotations/val_balanced_questions.json",
        "gqa/annotations/testdev_balanced_questions.json",
        "gqa/annotations/test_balanced_questions.json",
    ],
    "vg": ["vg/annotations/vg_caption.json", "vg/annotations/vg_qa.json"],
    "sbu": ["sbu_captions/annotations/sbu.json"],
    "cc_sbu_align": ["cc_sbu_align/filter_cap.json"],
}
LAVIS_DIRS = {
    "lavis_coco": [f"coco/images/{s}" for s in ("train2014", "val2014", "test2014", "test2015")],
    "nocaps": ["nocaps/images/val", "nocaps/images/test"],
    "gqa": ["gqa/images"],
    "vg": ["vg/images"],
    "sbu": ["sbu_captions/images"],
    "cc_sbu_align": ["cc_sbu_align/image"],
    "laion_coco": ["laion/laion400m-data"],
}
# How each dataset class turns a record into the image it opens (VPGTrans 32e885c,
# lavis/datasets/datasets/): os.path.join(vis_root, ann["image"]) ...
JOIN = "join"
# ... os.path.join(vis_root, os.path.basename(ann["image"])): ImageTextPairDataset,
# image_text_pair_datasets.py:42 (VGCaptionBuilder, SBUCaptionBuilder: image_text_pair_builder.py:61-71)
BASENAME = "basename"
# ... os.path.join(vis_root, "{}.jpg".format(ann["image_id"])): CCSBUAlignDataset,
# self_instruct_caption.py:15-16
ID_JPG = "id_jpg"

# (annotation file, vis_root, join) of every file whose records a dataset class opens images
# for. vis_root is the config's `images.storage`.
IMAGE_REFERENCES = {
    # COCOCapDataset = CaptionDataset (coco_caption_datasets.py:18, caption_datasets.py:50),
    # COCOCapEvalDataset (coco_caption_datasets.py:33); COCOVQADataset and COCOVQAEvalDataset
    # (coco_vqa_datasets.py:40, :96), also OK-VQA's (OKVQABuilder(COCOVQABuilder))
    "lavis_coco": [
        (f, "coco/images", JOIN)
        for f in (
            "coco/annotations/coco_karpathy_train.json",
            "coco/annotations/coco_karpathy_val.json",
            "coco/annotations/coco_karpathy_test.json",
            "coco/annotations/vqa_train.json",
            "coco/annotations/vqa_val.json",
            "coco/annotations/vqa_val_eval.json",
            "coco/annotations/vqa_test.json",
            "okvqa/annotations/okvqa_train.json",
            "okvqa/annotations/vqa_val_eval.json",
        )
    ],
    # NoCapsEvalDataset (coco_caption_datasets.py:59)
    "nocaps": [(f, "nocaps/images", JOIN) for f in LAVIS_FILES["nocaps"]],
    # GQADataset, GQAEvalDataset (gqa_datasets.py:40, :83)
    "gqa": [(f, "gqa/images", JOIN) for f in LAVIS_FILES["gqa"]],
    "vg": [
        ("vg/annotations/vg_caption.json", "vg/images", BASENAME),
        # VGVQADataset (vg_vqa_datasets.py:22) joins the path as written
        ("vg/annotations/vg_qa.json", "vg/images", JOIN),
    ],
    "sbu": [("sbu_captions/annotations/sbu.json", "sbu_captions/images", BASENAME)],
    "cc_sbu_align": [("cc_sbu_align/filter_cap.json", "cc_sbu_align/image", ID_JPG)],
}
# VQA evaluation: VQA.loadRes asserts that the predictions (one per record of the eval file)
# cover exactly the question ids of the official questions file
# (lavis/common/vqa_tools/vqa.py:192, called from lavis/tasks/vqa.py:138).
VQA_EVAL_PAIRS = {
    "lavis_coco": [
        (
            "coco/annotations/vqa_val_eval.json",
            "coco/annotations/v2_OpenEnded_mscoco_val2014_questions.json",
        ),
        (
            "okvqa/annotations/vqa_val_eval.json",
            "okvqa/annotations/OpenEnded_mscoco_val2014_questions.json",
        ),
    ]
}
OPENS_CACHE = 65536  # records of one image tend to be adjacent (VQA questions)
# ---- nxtp (data_root) ----------------------------------------------------------------------

# src/loader.py _DATASETS_META roots; FileLister(root, "*.tar", recursive=True) reads them.
G3M_WDS = {
    "coco_valid": ["coco/coco_valid"],
    "coco_train": ["coco/coco_train"],
    "cc3m": ["cc3m/cc3m", "cc3m/cc3m_valid"],
    "sbu": ["sbu/sbu"],
    "openimages_v7_valid": ["openimages_v7/openimages_v7_valid"],
}
# mscoco_to_wds.py's inputs, which nxtp's docs put beside the tars.
G3M_COCO_INPUTS = {
    "coco_valid": ["coco/annotations/captions_val2017.json", "coco/val2017"],
    "coco_train": ["coco/annotations/captions_train2017.json", "coco/train2017"],
}


def _records(path: Path) -> Iterator[dict]:
    """The records of a LAVIS annotation list, streamed."""
    with open(path, "rb") as f:
        yield from ijson.items(f, "item")


def _first_event(path: Path) -> str:
    with open(path, "rb") as f:
        return next(ijson.parse(f))[1]


@functools.lru_cache(maxsize=OPENS_CACHE)
def opens(path: str, allow_truncated: bool = True) -> str | None:
    """None if `Image.open(path).convert("RGB")` works, else why not.

    Every VPGTrans dataset class makes that call in a process where
    lavis/datasets/datasets/coco_caption_datasets.py:14 set `ImageFile.LOAD_TRUNCATED_IMAGES
    = True` (lavis/datasets/builders/__init__.py imports it through caption_builder.py:9):
    `allow_truncated`. COSMOS makes the same call without it (src/training/data.py:879).
    """
    from PIL import Image

    try:
        with truncated_images(allow_truncated), Image.open(path) as img:
            img.convert("RGB")
    except FileNotFoundError:
        return "missing"
    except Exception as err:  # noqa: BLE001 - any failure kills the loader the same way
        return f"{type(err).__name__}: {err}"
    return None


def _image_path(folder: Path, record: object, how: str) -> str | None:
    """The path the dataset class opens for `record`, or None if it would raise first."""
    if not isinstance(record, dict):
        return None
    value = record.get("image_id" if how == ID_JPG else "image")
    if value is None or (how != ID_JPG and not isinstance(value, str)):
        return None
    if how == ID_JPG:
        return os.path.join(folder, f"{value}.jpg")
    return os.path.join(folder, os.path.basename(value) if how == BASENAME else value)


def _check_images(root: Path, product: str) -> list[str]:
    """Every record of every image-naming file must open its image, as its class opens it."""
    problems = []
    for rel, image_root, how in IMAGE_REFERENCES.get(product, []):
        path, folder = root / rel, root / image_root
        if not path.is_file():
            continue  # reported as missing already
        if (first := _first_event(path)) != "start_array":
            problems.append(
                f"{path}: VPGTrans loads it as a list (base_dataset.py:27); found a {first}"
            )
            continue
        seen, failed, first_failure = 0, 0, None
        try:
            for record in _records(path):
                seen += 1
                image = _image_path(folder, record, how)
                why = "no image in the record" if image is None else opens(image)
                if why is not None:
                    failed += 1
                    first_failure = first_failure or f"{image}: {why}"
        except ijson.JSONError as err:
            problems.append(f"{path}: not valid JSON ({err})")
            continue
        if failed:
            problems.append(
                f"{rel}: {failed} of {seen} records name an image VPGTrans cannot open "
                f"(first: {first_failure})"
            )
    return problems


def _question_ids(path: Path, prefix: str) -> set:
    with open(path, "rb") as f:
        return {q.get("question_id") for q in ijson.items(f, prefix) if isinstance(q, dict)}


def _check_vqa_eval(root: Path, product: str) -> list[str]:
    problems = []
    for eval_file, questions in VQA_EVAL_PAIRS.get(product, []):
        if not (root / eval_file).is_file() or not (root / questions).is_file():
            continue
        asked = _question_ids(root / eval_file, "item")
        official = _question_ids(root / questions, "questions.item")
        if asked != official:
            problems.append(
                f"{eval_file} has {len(asked - official)} question ids not in {questions}, which "
                f"has {len(official - asked)} not in it; VQA.loadRes asserts they are equal"
            )
    return problems


def _check_laion_coco(root: Path) -> list[str]:
    folder = root / "laion/laion400m-data"
    tars = sorted(folder.glob("*.tar")) if folder.is_dir() else []
    if not tars:
        return [f"{folder}: no shards"]
    problems = []
    for tar in tars:
        for key, members in _samples(tar):
            if "json" not in members or "jpg" not in members:
                problems.append(f"{tar}: sample {key} lacks .jpg or .json")
                break
            record = json.loads(members["json"])
            if not {"all_captions", "all_similarities"} <= record.keys():
                problems.append(f"{tar}: {key}.json lacks all_captions/all_similarities")
                break
    return problems


def check_lavis(root: str | Path, products: list[str]) -> list[str]:
    """Problems a VPGTrans run with cache_root=`root` would hit, for the built products."""
    root = Path(root)
    problems = []
    opens.cache_clear()  # a verdict holds for one look at the tree
    for product in products:
        # Files whose images are checked below are parsed there; the rest only here.
        referencing = {rel for rel, _, _ in IMAGE_REFERENCES.get(product, [])}
        for rel in LAVIS_FILES.get(product, []):
            if not (root / rel).is_file():
                problems.append(f"{root / rel}: missing ({product})")
            elif rel not in referencing:
                try:
                    with open(root / rel, "rb") as f:
                        for _ in ijson.parse(f):
                            pass
                except ijson.JSONError as err:
                    problems.append(f"{root / rel}: not valid JSON ({err})")
        for rel in LAVIS_DIRS.get(product, []):
            if not (root / rel).is_dir():
                problems.append(f"{root / rel}/: missing ({product})")
        problems += _check_images(root, product)
        problems += _check_vqa_eval(root, product)
        if product == "vg":
            nested = [p for p in (root / "vg/images").iterdir() if p.is_dir()]
            if nested:
                problems.append(f"{root}/vg/images: not flat (has {nested[0].name}/)")
        if product == "laion_coco":
            problems += _check_laion_coco(root)
    return problems


# ---- webdataset tars, read the way nxtp reads them ------------------------------------------


def _samples(tar: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) per run of consecutive members with one key (torchdata's
    grouping); a key that comes back after another key is an error."""
    seen: set[str] = set()
    key, members = None, {}
    with tarfile.open(tar) as tf:
        for info in tf:
            if not info.isfile():
                continue
            base = info.name.rsplit("/", 1)[-1]
            stem, _, ext = base.partition(".")
            prefix = info.name[: len(info.name) - len(base)] + stem
            if prefix != key:
                if key is not None:
                    yield key, members
                if prefix in seen:
                    raise ValueError(f"{tar}: sample {prefix} is split (members not sorted)")
                seen.add(prefix)
                key, members = prefix, {}
            members[ext] = tf.extractfile(info).read()
    if key is not None:
        yield key, members


def check_wds_folder(folder: Path) -> tuple[list[str], dict[str, int]]:
    """Problems of one nxtp webdataset folder and its samples per tar."""
    tars = sorted(folder.glob("*.tar")) if folder.is_dir() else []
    if not tars:
        return [f"{folder}: no tars"], {}
    problems, counts = [], {}
    for tar in tars:
        keys = []
        try:
            for key, members in _samples(tar):
                if "jpg" not in members or "txt" not in members:
                    problems.append(
                        f"{tar}: sample {key} lacks .jpg or .txt (has {sorted(members)})"
                    )
                keys.append(key)
        except (tarfile.TarError, ValueError) as err:
            problems.append(f"{tar}: {err}")
        if keys != sorted(keys):
            problems.append(f"{tar}: samples not in sorted order")
        counts[tar.name] = len(keys)
    return problems, counts


def check_g3m(root: str | Path, products: list[str]) -> list[str]:
    """Problems nxtp with data_root=`root` would hit, for the built products."""
    root = Path(root)
    problems = []
    wanted = {rel for product in products for rel in G3M_WDS.get(product, [])}
    for rel in sorted(wanted):
        problems += check_wds_folder(root / rel)[0]
    for product in products:
        for rel in G3M_COCO_INPUTS.get(product, []):
            if not (root / rel).exists():
                problems.append(f"{root / rel}: missing ({product})")
    # The recursive glob must find no tar outside the dataset folders.
    known = {rel for rels in G3M_WDS.values() for rel in rels}
    for dirpath, _, filenames in os.walk(root, followlinks=False):
        rel = os.path.relpath(dirpath, root)
        if rel in known:
            continue
        stray = [name for name in filenames if name.endswith(".tar")]
        if stray:
            problems.append(f"{dirpath}: stray tars {stray[:3]} would be read as training data")
    return problems


# ---- COSMOS (--data-root-dir) ----------------------------------------------------------------
# ExplainableML/cosmos c80348f, src/training/data.py: retrieval evaluation opens
# <root>/coco (read_coco_pairs, :965-996) and <root>/flickr30k-images (get_flickr_dataset
# :781-785 with split 'val', read_flickr_pairs :1064-1086), and every image with
# Image.open(path).convert('RGB') (:879, :1056), LOAD_TRUNCATED_IMAGES unset.


def _first_failure(paths: Iterator[str], allow_truncated: bool) -> tuple[int, int, str | None]:
    seen = failed = 0
    first = None
    for path in paths:
        seen += 1
        why = opens(path, allow_truncated)
        if why is not None:
            failed += 1
            first = first or f"{path}: {why}"
    return seen, failed, first


def _check_cosmos_coco(root: Path) -> list[str]:
    """read_coco_pairs(root/coco, 'val'): every caption's image, by the images list's
    file_name, under images/val2017."""
    coco = root / "coco"
    captions = coco / "annotations" / "captions_val2017.json"
    if not captions.is_file():
        return [f"{captions}: missing (cosmos_coco)"]
    with open(captions, "rb") as f:
        names = {image["id"]: image["file_name"] for image in ijson.items(f, "images.item")}
    with open(captions, "rb") as f:
        used = {a["image_id"] for a in ijson.items(f, "annotations.item") if a["image_id"] in names}
    paths = (os.path.join(coco, "images", "val2017", names[i]) for i in sorted(used))
    seen, failed, first = _first_failure(paths, allow_truncated=False)
    if not seen:
        return [f"{captions}: no caption names an image of its images list"]
    return [f"{captions}: {failed} of {seen} images do not open (first: {first})"] if failed else []


def _check_flickr30k(root: Path) -> list[str]:
    """read_flickr_pairs(root/flickr30k-images, 'val'): the JSON inside the image folder, each
    `image` joined onto the folder's parent, `caption` a list (else the entry gets no image_id
    and map_img_cap raises KeyError)."""
    folder = root / "flickr30k-images"
    val = folder / "flickr30k_val.json"
    if not val.is_file():
        return [f"{val}: missing (flickr30k)"]
    problems, paths = [], []
    with open(val, "rb") as f:
        for index, record in enumerate(ijson.items(f, "item")):
            if not isinstance(record.get("caption"), list):
                problems.append(f"{val}: record {index}'s caption is not a list")
                break
            paths.append(os.path.join(os.path.dirname(folder), record["image"]))
    seen, failed, first = _first_failure(iter(paths), allow_truncated=False)
    if not seen:
        problems.append(f"{val}: no records")
    elif failed:
        problems.append(f"{val}: {failed} of {seen} images do not open (first: {first})")
    return problems


# ---- COSMOS: ImageNet val (--imagenet-val) ----
# COSMOS c80348f src/training/data.py:156 (get_imagenet) opens --imagenet-val, the layout's
# imagenet/data/val_images, as torchvision.datasets.ImageFolder(path). torchvision 0.29.1
# datasets/folder.py: the classes are the sorted names of the sub-folders (find_classes,
# :36-46; files beside them are ignored), each class's samples every file below its folder
# (os.walk, followlinks=True, :89) whose lower-cased name ends with an IMG_EXTENSIONS suffix
# (:11-21, :257; others are skipped without a word, which shifts the counts), a class with none
# raises FileNotFoundError (:100-104), and each sample is opened with pil_loader (:260-264):
# Image.open(f).convert("RGB"), LOAD_TRUNCATED_IMAGES unset. COSMOS indexes classes by that
# sorted order against OpenCLIP's IMAGENET_CLASSNAMES, so the folders must be exactly the
# 1,000 wnids, 50 images each (the catalog's `images`/`classes`; a stand-in has its own).
IMAGENET_VAL = "imagenet/data/val_images"
IMAGENET_ENTRIES = ("imagenet_val_hub", "imagenet_val_tar")
WNID_NAME = re.compile(r"n\d{8}")
FOLDER_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def imagenet_val_shape(catalog: dict) -> tuple[int, int]:
    """(images, classes) the tree must hold: the catalog's, ImageNet-1k val's without one."""
    for entry in IMAGENET_ENTRIES:
        if entry in catalog and catalog[entry].get("images") and catalog[entry].get("classes"):
            return catalog[entry]["images"], catalog[entry]["classes"]
    return 50_000, 1_000


def _check_cosmos_imagenet(root: Path, catalog: dict) -> list[str]:
    """ImageFolder(root/imagenet/data/val_images): wnid folders only, every file an image
    that opens, the catalog's counts (every class the same share)."""
    folder = root / IMAGENET_VAL
    if not folder.is_dir():
        return [f"{folder}/: missing (cosmos_imagenet)"]
    images, classes = imagenet_val_shape(catalog)
    per_class = images // classes
    problems: list[str] = []
    entries = sorted(os.scandir(folder), key=lambda e: e.name)
    # Snakemake's .snakemake_timestamp marker of a directory output sits there too: hidden files
    # are no data anyone left behind.
    flat = [e.name for e in entries if not e.is_dir() and not e.name.startswith(".")]
    if flat:
        problems.append(
            f"{folder}: {len(flat)} file(s) beside the class folders (first: {flat[0]}); "
            "ImageFolder ignores them, so those images are left out of the evaluation"
        )
    wnids = [e.name for e in entries if e.is_dir()]
    bad = [name for name in wnids if not WNID_NAME.fullmatch(name)]
    if bad:
        problems.append(
            f"{folder}: {len(bad)} folder(s) not named as a wnid n########, which ImageFolder "
            f"makes classes and shift every class index after them (first: {bad[0]})"
        )
    if len(wnids) != classes:
        problems.append(f"{folder}: {len(wnids)} class folders, ImageNet val has {classes}")
    total = failed = 0
    first = None
    uneven, skipped, nested = [], [], []
    for wnid in wnids:  # one class folder's names at a time
        class_paths = []
        for dirpath, dirnames, filenames in os.walk(folder / wnid, followlinks=True):
            nested += [os.path.join(dirpath, d) for d in dirnames]
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                (class_paths if name.lower().endswith(FOLDER_EXTENSIONS) else skipped).append(path)
        if len(class_paths) != per_class:
            uneven.append(f"{wnid}: {len(class_paths)}")
        seen, bad_images, first_bad = _first_failure(iter(class_paths), allow_truncated=False)
        total, failed, first = total + seen, failed + bad_images, first or first_bad
    if nested:
        problems.append(f"{folder}: class folders hold folders (first: {nested[0]})")
    if skipped:
        problems.append(
            f"{folder}: {len(skipped)} file(s) without an image extension, which ImageFolder "
            f"skips (first: {skipped[0]})"
        )
    if uneven:
        problems.append(
            f"{folder}: {len(uneven)} class(es) without {per_class} images "
            f"(first: {', '.join(uneven[:3])})"
        )
    if total != images:
        problems.append(f"{folder}: {total} images, ImageNet val has {images}")
    if failed:
        problems.append(f"{folder}: {failed} of {total} images do not open (first: {first})")
    return problems


# ---- COSMOS: classification (dataset_root) ----
# <cosmos>/classification, as torchvision's classes open it for COSMOS's get_loader_test: the
# checks (vlprep.classification) also take the catalog the tree was built from, for the counts
# COSMOS's random_split needs and the md5s torchvision checks (check_cosmos's `catalog`).


# ---- COSMOS: segmentation (mmseg data/) ----
# The 8 configs (ExplainableML/cosmos c80348f src/training/seg_configs/cfg_*.py) read
# data_root='/mmsegmentation_datasets/data/<subpath>' (cfg line 10-13); cosmos/mmseg/ is that
# data/ folder. Each builds its dataset class with data_prefix (img_path, seg_map_path) and,
# for VOC and Context, ann_file; mmseg 1.1.1 BaseSegDataset.load_data_list
# (basesegdataset.py:229-271) then reads ann_file's ids (`assert osp.isfile(ann_file)`, :239;
# sample = img_path/<id><img_suffix> + seg_map_path/<id><seg_map_suffix>, :243-249) or, with no
# ann_file, lists every file under img_path ending in img_suffix, recursively, links followed,
# hidden names skipped (:255-270; mmengine local_backend.py:525-541), each map named by suffix
# replacement. LoadImageFromFile opens the image, LoadAnnotations the map
# (mmseg/datasets/transforms/loading.py:99-103, 'unchanged', then `.astype(np.uint8)`).
# (config, subpath under mmseg/, img_path, seg_map_path, ann_file, img_suffix, seg_map_suffix,
#  label values a map may hold, the class and where its suffixes are set)
MMSEG_CONFIGS = {
    "cosmos_voc2012": [
        ("cfg_voc21.py", "VOCdevkit/VOC2012", "JPEGImages", "SegmentationClass",
         "ImageSets/Segmentation/val.txt", ".jpg", ".png", set(range(21)) | {255},
         "PascalVOCDataset (mmseg voc.py:29-40, asserts img_path exists and ann_file is a file)"),
        ("cfg_voc20.py", "VOCdevkit/VOC2012", "JPEGImages", "SegmentationClass",
         "ImageSets/Segmentation/val.txt", ".jpg", ".png", set(range(21)) | {255},
         "PascalVOC20Dataset (COSMOS custom_datasets.py:26-39, reduce_zero_label=True, asserts "
         "img_path exists and ann_file is a file)"),
    ],
    "cosmos_pascal_context": [
        (f"cfg_context{n}.py", "VOCdevkit/VOC2010", "JPEGImages", "SegmentationClassContext",
         "ImageSets/SegmentationContext/val.txt", ".jpg", ".png", set(range(60)),
         f"PascalContext{n}Dataset (COSMOS custom_datasets.py:{line})")
        for n, line in ((59, "148-159, reduce_zero_label=True"), (60, "106-116"))
    ],
    "cosmos_coco_stuff": [
        ("cfg_coco_stuff164k.py", "coco_stuff164k", "images/val2017", "annotations/val2017", None,
         ".jpg", "_labelTrainIds.png", set(range(171)) | {255},
         "COCOStuffDataset (mmseg coco_stuff.py:94-99)"),
        ("cfg_coco_object.py", "coco_stuff164k", "images/val2017", "annotations/val2017", None,
         ".jpg", "_instanceTrainIds.png", set(range(81)),
         "COCOObjectDataset (COSMOS custom_datasets.py:74-75)"),
    ],
    "cosmos_cityscapes": [
        ("cfg_city_scapes.py", "cityscapes", "leftImg8bit/val", "gtFine/val", None,
         "_leftImg8bit.png", "_gtFine_labelTrainIds.png", set(range(19)) | {255},
         "CityscapesDataset (mmseg cityscapes.py:25-30)"),
    ],
    "cosmos_ade20k": [
        ("cfg_ade20k.py", "ade/ADEChallengeData2016", "images/validation",
         "annotations/validation", None, ".jpg", ".png", set(range(151)),
         "ADE20KDataset (mmseg ade.py:83-91)"),
    ],
}  # fmt: skip


def _mmseg_samples(img_dir: Path, suffix: str) -> Iterator[str]:
    """What list_dir_or_file(img_dir, list_dir=False, suffix=..., recursive=True) yields."""
    for dirpath, dirnames, filenames in os.walk(img_dir, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if not name.startswith(".") and os.path.isfile(path) and name.endswith(suffix):
                yield os.path.relpath(path, img_dir)


def map_values(path: str) -> set[int] | str:
    """The label values LoadAnnotations gets from a map (pillow, 'unchanged'), or why the map
    does not load as an 8-bit label image. One map in memory at a time."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.mode not in ("L", "P"):
                return f"mode {image.mode}, not an 8-bit label map (L or P)"
            counts = np.bincount(np.asarray(image).ravel(), minlength=256)
    except FileNotFoundError:
        return "missing"
    except Exception as err:  # noqa: BLE001 - LoadAnnotations fails on any of them
        return f"{type(err).__name__}: {err}"
    return {int(v) for v in np.flatnonzero(counts)}


def _check_mmseg_config(mmseg: Path, spec: tuple) -> list[str]:
    cfg, subpath, img_path, seg_path, ann_file, img_suffix, seg_suffix, valid, cls = spec
    root = mmseg / subpath
    img_dir, seg_dir = root / img_path, root / seg_path
    what = f"{cfg} ({cls})"
    if not root.is_dir():
        return [f"{root}: missing; {cfg}'s data_root is /mmsegmentation_datasets/data/{subpath}"]
    if not img_dir.is_dir():
        return [f"{img_dir}: missing; {what} lists its images there"]
    if ann_file is not None:
        split = root / ann_file
        if not split.is_file():
            return [f"{split}: missing; {what}: load_data_list asserts ann_file is a file"]
        stems = [line.strip() for line in split.read_text().splitlines()]
    else:
        stems = [rel[: -len(img_suffix)] for rel in _mmseg_samples(img_dir, img_suffix)]
    if not stems:
        return [f"{img_dir}: no samples for {what}"]
    problems: list[str] = []
    missing_images = bad_images = missing_maps = bad_maps = 0
    first: dict[str, str] = {}
    for stem in stems:
        image = str(img_dir / f"{stem}{img_suffix}")
        why = opens(image, allow_truncated=False)
        if why == "missing":
            missing_images += 1
            first.setdefault("image", image)
        elif why is not None:
            bad_images += 1
            first.setdefault("bad image", f"{image}: {why}")
        seg_map = str(seg_dir / f"{stem}{seg_suffix}")
        values = map_values(seg_map)
        if values == "missing":
            missing_maps += 1
            first.setdefault("map", seg_map)
        elif isinstance(values, str) or not values <= valid:
            bad_maps += 1
            found = values if isinstance(values, str) else f"values {sorted(values - valid)}"
            first.setdefault("bad map", f"{seg_map}: {found}")
    total = len(stems)
    for count, key, text in (
        (missing_images, "image", "images missing"),
        (bad_images, "bad image", "images that do not decode"),
        (missing_maps, "map", f"label maps ({seg_suffix}) missing"),
        (bad_maps, "bad map", f"label maps outside {_ranges(valid)}"),
    ):
        if count:
            problems.append(f"{what}: {count} of {total} samples have {text} (first: {first[key]})")
    return problems


def _ranges(values: set[int]) -> str:
    low = sorted(v for v in values if v != 255)
    text = f"{low[0]}-{low[-1]}"
    return text + ", 255" if 255 in values else text


def _mmseg_check(product: str) -> Callable[[Path], list[str]]:
    def check(root: Path) -> list[str]:
        return [
            p for spec in MMSEG_CONFIGS[product] for p in _check_mmseg_config(root / "mmseg", spec)
        ]

    return check


COSMOS_CHECKS = {
    "cosmos_coco": _check_cosmos_coco,
    "flickr30k": _check_flickr30k,
    "cosmos_imagenet": _check_cosmos_imagenet,  # ImageNet: (root, catalog)
    **CLASSIFICATION_CHECKS,  # classification: (root, catalog)
    # segmentation
    **{product: _mmseg_check(product) for product in MMSEG_CONFIGS},
}


def check_cosmos(
    root: str | Path, products: list[str], catalog: str | Path | dict | None = None
) -> list[str]:
    """Problems COSMOS's evaluations would hit in the cosmos layout at `root`.

    `catalog` is the catalog the tree was built from (a path or the loaded catalog; default
    config/catalog.yaml): the checks that need it (CATALOG_CHECKS) read expected counts and
    checksums from it, so a stand-in tree is checked against its own catalog's numbers.
    """
    root = Path(root)
    opens.cache_clear()
    problems, loaded = [], None
    for product in products:
        check = COSMOS_CHECKS.get(product)
        if check is None:
            continue
        if product in CATALOG_CHECKS:
            loaded = loaded if loaded is not None else _load_catalog(catalog)
            problems += check(root, loaded)
        else:
            problems += check(root)
    return problems


# COSMOS checks that take the catalog as well as the root.
CATALOG_CHECKS = set(CLASSIFICATION_CHECKS) | {"cosmos_imagenet"}
DEFAULT_CATALOG = Path(__file__).resolve().parents[2] / "config" / "catalog.yaml"


def _load_catalog(catalog: str | Path | dict | None) -> dict:
    if isinstance(catalog, dict):
        return catalog
    from vlprep.catalog import load_catalog

    return load_catalog(Path(catalog) if catalog is not None else DEFAULT_CATALOG)


# ---- GLaMM (--dataset_dir, and the working-directory folders) -------------------------------
# mbzuai-oryx/groundingLMM e74865f2 (research/cosmos-glamm.md §2, §4).

# COCO_Caption_ds.py:36-42 (coco_2017/annotations/captions_{train,val}2017.json, images
# coco_2017/{mode}2017/), :52-60 (every annotation's image by the images list), :74 (the path
# join), :109 (cv2.imread; an unreadable image returns None and cvtColor raises).
GLAMM_COCO_SPLITS = ("train", "val")
# The four COCO train2014 paths: eval/region_captioning/infer.py:25 and the checkout's
# coco_2014/train2014 (GranDf_gcg_ds.py:284), RefCOCO_Segm_ds.py:83-84, and RefCoco_Reg's flat
# folder (RefCOCO_VG_Region_ds.py:39-42, 191-193: <dd>/RefCoco_Reg/coco_2014/<file_name>).
GLAMM_COCO2014 = ("coco_2014/train2014", "Refer_Segm/coco_2014/train2014", "RefCoco_Reg/coco_2014")
# cocostuff_classes.txt has 183 lines, the first skipped (Semantic_Segm_ds.py:33-34): raw values
# index 182 classes; 255 is ignore.
COCOSTUFF_VALUES = set(range(182)) | {255}


def _glamm_images(folder: Path, pattern: str, what: str) -> list[str]:
    """A folder GLaMM joins file names onto: it exists, holds `pattern` files directly (not in
    a subfolder) and the first of them opens."""
    if not folder.is_dir():
        return [f"{folder}: missing ({what})"]
    first = next(iter(sorted(folder.glob(pattern))), None)
    if first is None:
        return [f"{folder}: no {pattern} directly inside ({what})"]
    why = opens(str(first))
    return [f"{first}: {why} ({what})"] if why else []


def _glamm_opens(label: str, paths: list[str], what: str) -> list[str]:
    seen, failed, first = _first_failure(iter(paths), allow_truncated=True)
    if not seen:
        return [f"{label}: names no image ({what})"]
    return [f"{label}: {failed} of {seen} images do not open (first: {first})"] if failed else []


def _check_glamm_coco(root: Path) -> list[str]:
    """CocoCapDataset (train) and CocoCapVal: every caption's image; the COCO 2014 folders."""
    problems = []
    for mode in GLAMM_COCO_SPLITS:
        captions = os.path.join(root, "coco_2017", "annotations", f"captions_{mode}2017.json")
        if not os.path.isfile(captions):
            problems.append(f"{captions}: missing (COCO_Caption_ds.py:41, glamm_coco)")
            continue
        with open(captions, "rb") as f:
            names = {image["id"]: image["file_name"] for image in ijson.items(f, "images.item")}
        with open(captions, "rb") as f:
            used = {a["image_id"] for a in ijson.items(f, "annotations.item")}
        folder = os.path.join(root, f"coco_2017/{mode}2017")
        unknown = sorted(used - set(names))
        if unknown:  # COCO.loadImgs raises KeyError
            problems.append(f"{captions}: annotations name image ids not in images: {unknown[:3]}")
        paths = [os.path.join(folder, names[i]) for i in sorted(used & set(names))]
        problems += _glamm_opens(captions, paths, "CocoCap")
    for rel in GLAMM_COCO2014:
        problems += _glamm_images(root / rel, "COCO_train2014_*.jpg", "COCO train2014, flat")
    return problems


def _check_glamm_flickr(root: Path) -> list[str]:
    """Flickr_Region_ds.py:36-37 (flikcr_30k/flickr30k-images/<file_name>) and the GCG folder
    flikcr_30k/train (GranDf_gcg_ds.py:196), both flat folders of <id>.jpg."""
    problems = []
    for rel in ("flikcr_30k/flickr30k-images", "flikcr_30k/train"):
        problems += _glamm_images(root / rel, "*.jpg", "Flickr30k images, GLaMM's spelling")
    return problems


def _check_glamm_region_file(path: Path, images: Path, what: str) -> list[str]:
    """RegionBaseDataset (RefCOCO_VG_Region_ds.py:39-64, 97): pycocotools COCO(ann_file), images
    under 32 px a side dropped, each kept image opened at image_folder/<file_name>."""
    if not path.is_file():
        return [f"{path}: missing ({what})"]
    try:
        data = json.loads(path.read_text())
    except ValueError as err:
        return [f"{path}: not valid JSON ({err})"]
    if not isinstance(data, dict) or not {"images", "annotations"} <= set(data):
        return [f"{path}: not a COCO-style file with images and annotations (pycocotools COCO)"]
    problems, paths = [], []
    for record in data["images"]:
        try:
            if min(int(record["width"]), int(record["height"])) < 32:
                continue
            paths.append(os.path.join(images, record["file_name"]))
        except (KeyError, TypeError, ValueError):
            problems.append(f"{path}: image record without file_name/width/height: {record}")
            break
    return problems + _glamm_opens(str(path), paths, what)


def _check_glamm_vg(root: Path) -> list[str]:
    """VisualGenomeRegDataset (RefCOCO_VG_Region_ds.py:250-258): visual_genome/{train.json,
    test_caption.json}, images visual_genome/images/<file_name> (flat)."""
    vg = root / "visual_genome"
    return [
        p
        for name in ("test_caption.json", "train.json")
        for p in _check_glamm_region_file(vg / name, vg / "images", f"VisGen_Reg {name}")
    ]


def _check_glamm_llava(root: Path) -> list[str]:
    """LLaVAInstructDataset (LLavaInstruct_vqa_ds.py:35-37, 43, 87-88): a JSON list, each
    record's `image` under coco_2017/train2017/."""
    path = root / "llava_dataset" / "llava_instruct_150k.json"
    if not path.is_file():
        return [f"{path}: missing (LLavaInstruct_vqa_ds.py:37, glamm_llava)"]
    if _first_event(path) != "start_array":
        return [f"{path}: LLaVaInstruct loads a list (json.load, l.43)"]
    folder = root / "coco_2017" / "train2017"
    paths, problems = [], []
    for index, record in enumerate(_records(path)):
        if not isinstance(record, dict) or not isinstance(record.get("image"), str):
            problems.append(f"{path}: record {index} has no image (KeyError at l.87)")
            break
        paths.append(os.path.join(folder, record["image"]))
    return problems + _glamm_opens(str(path), paths, "LLaVaInstruct")


def _check_glamm_ade20k(root: Path) -> list[str]:
    """init_ade20k (Semantic_Segm_ds.py:23-29): listdir of Semantic_Segm/ade20k/images/training,
    the .jpg files; each label = the whole path with .jpg->.png and images->annotations."""
    image_dir = os.path.join(root, "Semantic_Segm", "ade20k", "images", "training")
    if not os.path.isdir(image_dir):
        return [f"{image_dir}: missing (Semantic_Segm_ds.py:25, glamm_ade20k)"]
    images = sorted(os.path.join(image_dir, n) for n in os.listdir(image_dir) if n.endswith(".jpg"))
    if not images:
        return [f"{image_dir}: no .jpg (glamm_ade20k)"]
    labels = [p.replace(".jpg", ".png").replace("images", "annotations") for p in images]
    problems = _glamm_opens(image_dir, images, "ade20k images")
    missing = [label for label in labels if not os.path.isfile(label)]
    if missing:
        problems.append(f"{image_dir}: {len(missing)} of {len(labels)} labels missing "
                        f"(first: {missing[0]})")  # fmt: skip
    return problems


def _check_glamm_cocostuff(root: Path) -> list[str]:
    """init_cocostuff (Semantic_Segm_ds.py:32-40): glob Semantic_Segm/cocostuff/train2017/*.png;
    image = the whole path with .png->.jpg, cocostuff->coco_2017, Semantic_Segm/ removed, which
    must be an image of coco_2017/train2017; raw values index the 182 classes (l.203-207)."""
    labels = sorted(
        glob.glob(os.path.join(root, "Semantic_Segm", "cocostuff", "train2017", "*.png"))
    )
    if not labels:
        return [f"{root}/Semantic_Segm/cocostuff/train2017: no *.png (glamm_cocostuff)"]
    images = [
        label.replace(".png", ".jpg")
        .replace("cocostuff", "coco_2017")
        .replace("Semantic_Segm/", "")
        for label in labels
    ]
    problems = _glamm_opens(f"{root}/Semantic_Segm/cocostuff/train2017", images, "cocostuff")
    for label in labels[:20]:
        values = map_values(label)
        bad = values if isinstance(values, str) else values - COCOSTUFF_VALUES
        if bad:
            problems.append(f"{label}: not a raw COCO-Stuff map (0-181, 255): {bad}")
            break
    return problems


def check_glamm_working_dir(checkout: str | Path) -> list[str]:
    """The GCG image folders GLaMM opens relative to its working directory, the checkout
    (GranDf_gcg_ds.py:48, 182, 196, 284): each a folder of images."""
    checkout = Path(checkout)
    return [
        p
        for rel, pattern in (
            ("coco_2017/train2017", "*.jpg"),
            ("flikcr_30k/train", "*.jpg"),
            ("coco_2014/train2014", "COCO_train2014_*.jpg"),
        )
        for p in _glamm_images(checkout / rel, pattern, "GCG, relative to the GLaMM checkout")
    ]


def _check_glamm_refer_segm(root: Path) -> list[str]:
    """Refer_Segm/ as GLaMM's REFER and ReferSegmDataset load it (vlprep.glamm_refer)."""
    from vlprep import glamm_refer

    return glamm_refer.check_refer_segm(root)


def _check_glamm_mdetr(root: Path) -> list[str]:
    """The mdetr annotations as RegionBaseDataset and Flickr30kRegDataset open them."""
    from vlprep import glamm_refer

    return glamm_refer.check_mdetr(root)


def _check_glamm_grandf(root: Path) -> list[str]:
    """GranDf/ as GCGBaseDataset and eval/gcg open it."""
    from vlprep import glamm_refer

    return glamm_refer.check_grandf(root)


# Semantic_Segm_ds.py (dataset_dir = <glamm>/Semantic_Segm, l.113). init_pascal_part (l.64-73):
# COCO(pascal_part/train.json), each category name splits on ":" into two (l.69); images at
# pascal_part/VOCdevkit/VOC2010/JPEGImages/<file_name> (l.173-174, the path meant before the
# 3-tuple crash); class_map[category_id] (l.189); the RLE masks are decoded at the image's size.
def _check_glamm_pascal_part(root: Path) -> list[str]:
    folder = root / "Semantic_Segm" / "pascal_part"
    path = folder / "train.json"
    try:
        data = json.loads(path.read_text())
        images, anns, cats = data["images"], data["annotations"], data["categories"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        return [f"{path}: not a COCO json pycocotools loads ({type(err).__name__}: {err})"]
    problems = [
        f"{path}: category {c.get('id')} {c.get('name')!r} is not obj:part (l.69)"
        for c in cats
        if not isinstance(c.get("name"), str) or len(c["name"].strip().split(":")) != 2
    ]
    if not images:
        problems.append(f"{path}: no images (getImgIds is empty; random.randint fails, l.170)")
    jpegs = folder / "VOCdevkit" / "VOC2010" / "JPEGImages"
    sizes = {}
    for image in images:
        sizes[image["id"]] = (image["height"], image["width"])
        if not (jpegs / image["file_name"]).is_file():
            problems.append(f"{jpegs / image['file_name']}: missing (image {image['id']})")
    if images and not problems:
        why = opens(str(jpegs / images[0]["file_name"]))
        if why:
            problems.append(f"{jpegs / images[0]['file_name']}: does not open ({why})")
    cat_ids = {c.get("id") for c in cats}
    for ann in anns:
        where = f"{path}: annotation {ann.get('id')}"
        if ann.get("category_id") not in cat_ids:
            problems.append(f"{where}: category {ann.get('category_id')} not in categories")
        if ann.get("image_id") not in sizes:
            problems.append(f"{where}: image {ann.get('image_id')} not in images")
        seg = ann.get("segmentation")
        if not isinstance(seg, dict) or not isinstance(seg.get("counts"), str):
            problems.append(f"{where}: segmentation is not a compressed RLE")
        elif tuple(seg.get("size", ())) != sizes.get(ann.get("image_id")):
            problems.append(f"{where}: mask size {seg.get('size')} is not its image's")
    return problems


# init_paco_lvis (l.43-61): COCO(paco_lvis/annotations/paco_lvis_v1_train.json); each category
# name is one name or obj:part (the assert at l.53); images meant at <glamm>/coco_2017/<file_name>
# (l.175-176; file_name is train2017/... or val2017/...), folders the product declares: each must
# be there. Streamed: the file is large.
PACO_FILE_NAME = re.compile(r"^(train|val)2017/\d{12}\.jpg$")


def _check_glamm_paco_lvis(root: Path) -> list[str]:
    path = root / "Semantic_Segm" / "paco_lvis" / "annotations" / "paco_lvis_v1_train.json"
    coco = root / "coco_2017"
    problems: list[str] = []
    try:
        with open(path, "rb") as f:
            for cat in ijson.items(f, "categories.item"):
                if len(str(cat.get("name", "")).strip().split(":")) > 2:
                    problems.append(f"{path}: category {cat.get('name')!r}: more than obj:part")
        count = 0
        with open(path, "rb") as f:
            for image in ijson.items(f, "images.item"):
                count += 1
                name = image.get("file_name", "")
                if not PACO_FILE_NAME.match(name):
                    problems.append(f"{path}: image {image.get('id')}: file_name {name!r}")
                elif not (coco / name).is_file():
                    problems.append(f"{coco / name}: missing (image {image.get('id')})")
    except (OSError, ijson.JSONError) as err:
        return [f"{path}: not a COCO json pycocotools loads ({type(err).__name__}: {err})"]
    if not count:
        problems.append(f"{path}: no images (getImgIds is empty)")
    return problems


# init_mapillary (l.76-82): config_v2.0.json labels[*].readable; sorted glob of
# training/v2.0/labels/*.png; each image is the label path with .png -> .jpg and
# v2.0/labels -> images (str.replace on the whole path, as GLaMM does); cv2 reads both (l.200+).
def _check_glamm_mapillary(root: Path) -> list[str]:
    folder = os.path.join(root, "Semantic_Segm", "mapillary")
    config = os.path.join(folder, "config_v2.0.json")
    try:
        labels = json.loads(Path(config).read_text())["labels"]
        [label["readable"].lower() for label in labels]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        return [f"{config}: GLaMM reads labels[*].readable ({type(err).__name__}: {err})"]
    maps = sorted(glob.glob(os.path.join(folder, "training", "v2.0", "labels", "*.png")))
    if not maps:
        return [f"{folder}/training/v2.0/labels: no *.png label maps"]
    problems = []
    for label in maps:
        image = label.replace(".png", ".jpg").replace("v2.0/labels", "images")
        if not os.path.isfile(image):
            problems.append(f"{image}: missing (the image of {label})")
    for first in (maps[0], maps[0].replace(".png", ".jpg").replace("v2.0/labels", "images")):
        why = None if problems else opens(first)
        if why:
            problems.append(f"{first}: does not open ({why})")
    return problems


def _check_glamm_grand(root: Path) -> list[str]:
    """GranD pre-training: GLaMM's GranD datasets open GranD_Data/Grand_*_lmdb (datasets.md D27),
    built by its own GranD/prepare_annotations scripts from the hub's part archives, which is all
    vlprep fetches: GranD_Data/annotations must hold part_N/part_N_M.tar.gz, each gzip."""
    folder = root / "GranD_Data" / "annotations"
    if not folder.is_dir():
        return [f"{folder}: missing (glamm_grand)"]
    archives = sorted(folder.glob("part_*/part_*.tar.gz"))
    if not archives:
        return [f"{folder}: no part_N/part_N_M.tar.gz (the MBZUAI/GranD repo's archives)"]
    problems = []
    for archive in archives:
        with open(archive, "rb") as f:
            if f.read(2) != b"\x1f\x8b":
                problems.append(f"{archive}: not a gzip file")
    return problems


GLAMM_CHECKS: dict[str, Callable[[Path], list[str]]] = {
    "glamm_coco": _check_glamm_coco,
    "glamm_flickr": _check_glamm_flickr,
    "glamm_vg": _check_glamm_vg,
    "glamm_llava": _check_glamm_llava,
    "glamm_ade20k": _check_glamm_ade20k,
    "glamm_cocostuff": _check_glamm_cocostuff,
    "glamm_refer_segm": _check_glamm_refer_segm,
    "glamm_mdetr": _check_glamm_mdetr,
    "glamm_grandf": _check_glamm_grandf,
    "glamm_pascal_part": _check_glamm_pascal_part,
    "glamm_paco_lvis": _check_glamm_paco_lvis,
    "glamm_mapillary": _check_glamm_mapillary,
    "glamm_grand": _check_glamm_grand,
}


def check_glamm(root: str | Path, products: list[str]) -> list[str]:
    """Problems GLaMM's dataset classes with --dataset_dir=`root` would hit."""
    root = Path(root)
    return [
        p for product in products if product in GLAMM_CHECKS for p in GLAMM_CHECKS[product](root)
    ]


# ---- MiniGPT-4 (MINIGPT4_DATASET) -----------------------------------------------------------

# Stage 1's webdatasets: configs/datasets/{laion,cc_sbu}/defaults.yaml `storage`
# (/path/to/laion_dataset/{00000..10488}.tar, /path/to/cc_sbu_dataset/{00000..01255}.tar).
MINIGPT4_WDS = {"laion115m": "laion/laion_dataset", "cc_sbu": "cc_sbu/cc_sbu_dataset"}
# Stage 2: configs/datasets/cc_sbu/align.yaml `storage`; CCSBUAlignBuilder reads
# <storage>/filter_cap.json with vis_root <storage>/image.
MINIGPT4_ALIGN = {"minigpt4_cc_sbu_align": "cc_sbu_align"}


def _check_minigpt4_wds(folder: Path) -> list[str]:
    """Every sample as LaionDataset / CCSBUDataset reads it (cc_sbu_dataset.py): webdataset
    groups members by key, decode("pilrgb"), to_tuple("jpg", "json"), then json["caption"].
    Their handler (warn_and_continue) would skip a bad sample silently; here it is a problem."""
    tars = sorted(folder.glob("*.tar")) if folder.is_dir() else []
    if not tars:
        return [f"{folder}: no shards"]
    problems = []
    for tar in tars:
        samples = 0
        try:
            for key, members in _samples(tar):
                samples += 1
                if "jpg" not in members or "json" not in members:
                    problems.append(f"{tar}: sample {key} lacks .jpg or .json")
                    break
                try:
                    caption = json.loads(members["json"]).get("caption")
                except (ValueError, AttributeError) as err:
                    problems.append(f"{tar}: {key}.json is not a JSON object ({err})")
                    break
                if not isinstance(caption, str):
                    problems.append(f"{tar}: {key}.json has no caption string")
                    break
                why = _decodes(members["jpg"])
                if why is not None:
                    problems.append(f"{tar}: {key}.jpg does not decode ({why})")
                    break
        except (tarfile.TarError, ValueError) as err:
            problems.append(f"{tar}: not a readable webdataset tar ({err})")
            continue
        if samples == 0:
            problems.append(f"{tar}: no samples")
    return problems


def _decodes(data: bytes) -> str | None:
    """None if webdataset's "pilrgb" decoder (PIL.Image.open(...).convert("RGB")) takes `data`.
    MiniGPT-4 sets ImageFile.LOAD_TRUNCATED_IMAGES (minigpt4/datasets/datasets/coco_caption.py)."""
    import io

    from PIL import Image

    try:
        with truncated_images(True), Image.open(io.BytesIO(data)) as img:
            img.convert("RGB")
    except Exception as err:  # noqa: BLE001 - any failure drops the sample the same way
        return f"{type(err).__name__}: {err}"
    return None


def _check_minigpt4_align(storage: Path) -> list[str]:
    """MiniGPT-4's BaseDataset loads filter_cap.json (a dict: its "annotations"), CaptionDataset
    maps every ann["image_id"], CCSBUAlignDataset opens os.path.join(vis_root,
    "{}.jpg".format(ann["image_id"])) and returns ann["caption"]."""
    path, vis_root = storage / "filter_cap.json", storage / "image"
    if not path.is_file():
        return [f"{path}: missing (minigpt4_cc_sbu_align)"]
    if not vis_root.is_dir():
        return [f"{vis_root}/: missing (minigpt4_cc_sbu_align)"]
    try:
        data = json.loads(path.read_text())
    except ValueError as err:
        return [f"{path}: not valid JSON ({err})"]
    annotations = data["annotations"] if isinstance(data, dict) else data
    if not isinstance(annotations, list) or not annotations:
        return [f"{path}: no annotations list"]
    failed, first = 0, None
    for ann in annotations:
        if not isinstance(ann, dict) or "image_id" not in ann or "caption" not in ann:
            why, image = "no image_id or caption in the record", None
        else:
            image = os.path.join(vis_root, "{}.jpg".format(ann["image_id"]))
            why = opens(image)
        if why is not None:
            failed += 1
            first = first or f"{image}: {why}"
    if failed:
        return [f"{path}: {failed} of {len(annotations)} annotations fail; first: {first}"]
    return []


def check_minigpt4(root: str | Path, products: list[str]) -> list[str]:
    """Problems MiniGPT-4's stage-1 and stage-2 datasets with their storage under `root` (the
    minigpt4 layout) would hit, for the built products."""
    root = Path(root)
    problems = []
    opens.cache_clear()
    for product in products:
        if product in MINIGPT4_WDS:
            problems += _check_minigpt4_wds(root / MINIGPT4_WDS[product])
        if product in MINIGPT4_ALIGN:
            problems += _check_minigpt4_align(root / MINIGPT4_ALIGN[product])
    return problems


CHECKS: dict[str, Callable[[Path, list[str]], list[str]]] = {
    "lavis": check_lavis,
    "minigpt4": check_minigpt4,
    "g3m": check_g3m,
    "cosmos": check_cosmos,
    "glamm": check_glamm,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="check a built layout against its consumer")
    parser.add_argument("layout", choices=sorted(CHECKS))
    parser.add_argument("root", type=Path)
    parser.add_argument("products", nargs="+")
    parser.add_argument(
        "--catalog",
        type=Path,
        help="cosmos: the catalog the tree was built from (default: config/catalog.yaml)",
    )
    args = parser.parse_args(argv)
    if args.catalog and args.layout != "cosmos":
        parser.error("--catalog is for the cosmos layout only")
    extra = {"catalog": args.catalog} if args.catalog else {}
    problems = CHECKS[args.layout](args.root, args.products, **extra)
    for problem in problems:
        print(problem)
    print(f"{args.layout}: {len(problems)} problem(s) in {', '.join(args.products)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
