"""What the consumers' code opens, checked on a built layout.

The paths come from reading the consumers' loaders (../shared/research/datasets.md, D01-D09 for
VPGTrans's LAVIS cache_root, D28-D31 for nxtp's data_root), written down here independently of
the workflow's own tables, so a rule that puts a file in the wrong place fails a check instead
of agreeing with itself. Beyond existence, each check does what the loader will do: resolve the
image an annotation names, read every webdataset tar the way torchdata groups it.

`python -m vlprep.consumers <data_root> [product ...]` prints the problems; exit 1 if any.
"""

import argparse
import json
import os
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import ijson

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
# Annotation lists whose `image` the dataset class joins onto its vis_root (os.path.join), or
# whose base name it opens there (VPGTrans's ImageTextPairDataset patch: vg, sbu).
IMAGE_REFERENCES = {
    "lavis_coco": [(f, "coco/images", "join") for f in LAVIS_FILES["lavis_coco"][:6]]
    + [(f, "coco/images", "join") for f in ("coco/annotations/vqa_test.json",)]
    + [(f, "coco/images", "join") for f in LAVIS_FILES["lavis_coco"][10:12]],
    "nocaps": [(f, "nocaps/images", "join") for f in LAVIS_FILES["nocaps"]],
    "gqa": [(f, "gqa/images", "join") for f in LAVIS_FILES["gqa"]],
    "vg": [(f, "vg/images", "basename") for f in LAVIS_FILES["vg"]],
    "sbu": [(LAVIS_FILES["sbu"][0], "sbu_captions/images", "basename")],
}
# Web-crawled image sets lose images to dead links: the share that must be present.
WEB_FLOOR = {"nocaps": 0.5, "sbu": 0.4}

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


def _check_images(root: Path, product: str) -> list[str]:
    problems = []
    for rel, image_root, how in IMAGE_REFERENCES.get(product, []):
        path, folder = root / rel, root / image_root
        if not path.is_file():
            continue  # reported as missing already
        seen = present = 0
        first_missing = None
        try:
            for record in _records(path):
                name = record["image"]
                target = folder / (os.path.basename(name) if how == "basename" else name)
                seen += 1
                if target.is_file():
                    present += 1
                elif first_missing is None:
                    first_missing = target
        except ijson.JSONError as err:
            problems.append(f"{path}: not valid JSON ({err})")
            continue
        floor = WEB_FLOOR.get(product, 1.0)
        if seen and present < floor * seen:
            problems.append(
                f"{rel}: {seen - present} of {seen} images it names are missing "
                f"(first: {first_missing})"
            )
    return problems


def _check_cc_sbu_align(root: Path) -> list[str]:
    path = root / "cc_sbu_align/filter_cap.json"
    if not path.is_file():
        return []
    with open(path, "rb") as f:
        first = next(ijson.parse(f))[1]
    if first != "start_array":
        return [f"{path}: VPGTrans extends a list with it; found a {first}"]
    missing = [
        r["image_id"]
        for r in _records(path)
        if not (root / "cc_sbu_align/image" / f"{r['image_id']}.jpg").is_file()
    ]
    return [f"{path}: {len(missing)} images missing, e.g. {missing[:3]}"] if missing else []


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
        if product == "vg":
            nested = [p for p in (root / "vg/images").iterdir() if p.is_dir()]
            if nested:
                problems.append(f"{root}/vg/images: not flat (has {nested[0].name}/)")
        if product == "cc_sbu_align":
            problems += _check_cc_sbu_align(root)
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


CHECKS: dict[str, Callable[[Path, list[str]], list[str]]] = {"lavis": check_lavis, "g3m": check_g3m}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="check a built layout against its consumer")
    parser.add_argument("layout", choices=sorted(CHECKS))
    parser.add_argument("root", type=Path)
    parser.add_argument("products", nargs="+")
    args = parser.parse_args(argv)
    problems = CHECKS[args.layout](args.root, args.products)
    for problem in problems:
        print(problem)
    print(f"{args.layout}: {len(problems)} problem(s) in {', '.join(args.products)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
