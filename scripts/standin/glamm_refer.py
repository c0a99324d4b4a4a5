"""Stand-ins of GLaMM's referring-expression, region-caption and GranD-f sources, tiny and
shaped like the real files (mbzuai-oryx/groundingLMM e74865f2, lichengunc/refer):

- refcoco.zip, refcoco+.zip, refcocog.zip, refclef.zip: one top folder `<name>/` with
  `instances.json` (COCO style: images, annotations, categories) and `refs(<split_by>).p`, a
  pickled list of ref dicts (ref_id, ann_id, image_id, category_id, split, sentences, sent_ids,
  file_name); unc for all but refcocog (umd). The COCO sets name images of the stand-in COCO
  2014 train zip (standin.coco.make_coco2014), refclef images of saiapr_tc-12.zip.
- saiapr_tc-12.zip: `saiapr_tc-12/<NN>/images/<id>.jpg` [layout unverified: the real zip is only
  a Wayback capture; refclef's file_name is taken as `<NN>/images/<id>.jpg`].
- the mdetr annotations zip (Drive): `mdetr_annotations/<file>.json`, COCO style with the
  COCO_train2014 `file_name`s MDETR writes [inner layout unverified: GLaMM's datasets.md shows
  the folder `mdetr_annotations/` holding these files].
- the hub repository MBZUAI/GranD-f: `train/*.json` (7) and `val_test/*.json` (4), and the HA
  images zip (Drive): `GranDf_HA_images/{train,val_test}/sa_<id>.jpg` [unverified].
"""

import json
import pickle
import random
import zipfile
from pathlib import Path

from standin.coco import _jpeg, _write_zip, make_coco2014
from standin.flickr30k import image_ids as flickr_image_ids
from standin.hub import _repo_dir, _write
from vlprep.glamm_refer import GRANDF_TRAIN, GRANDF_VAL_TEST, MDETR_COCO, MDETR_FLICKR

GRANDF_REPO = "MBZUAI/GranD-f"
MDETR_FILES = (*MDETR_COCO, MDETR_FLICKR)  # what GLaMM opens (vlprep.glamm_refer)
ZIP_TIME = (2022, 4, 13, 1, 17, 18)
REFER_SETS = {"refcoco": "unc", "refcoco+": "unc", "refcocog": "umd", "refclef": "unc"}
CATEGORIES = [{"id": i, "name": n, "supercategory": "thing"} for i, n in enumerate(
    ["person", "dog", "car", "chair", "cup"], start=1)]  # fmt: skip
WORDS = ["left", "right", "man", "woman", "dog", "red", "car", "small", "chair", "cup", "front"]


def coco2014_train_names(scratch: Path) -> list[str]:
    """The image names of the stand-in COCO train2014 zip (the world's, if already made)."""
    zip_path = scratch / "train2014.zip"
    if not zip_path.is_file():
        zip_path = make_coco2014(scratch / "coco2014")["train2014.zip"]
    with zipfile.ZipFile(zip_path) as zf:
        names = [Path(n).name for n in zf.namelist() if n.endswith(".jpg")]
    return sorted(names)


def saiapr_names(n: int = 8, seed: int = 0) -> list[str]:
    rng = random.Random(f"saiapr:{seed}")
    ids = sorted(rng.sample(range(1, 41000), n))
    return [f"{i // 1000:02d}/images/{i}.jpg" for i in ids]


def _sentence(rng: random.Random, sent_id: int) -> dict:
    tokens = rng.sample(WORDS, 3)
    return {"sent_id": sent_id, "tokens": tokens, "raw": " ".join(tokens), "sent": " ".join(tokens)}


def _refer(name: str, files: list[str], seed: int) -> tuple[dict, list[dict]]:
    """instances.json and the refs of one set: 2 objects per image, the last image val only."""
    rng = random.Random(f"refer:{name}:{seed}")
    images, annotations, refs = [], [], []
    for index, file_name in enumerate(files):
        image_id = int(Path(file_name).stem.split("_")[-1])
        width, height = rng.choice([(64, 48), (80, 64)])
        images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
        for k in range(2):
            ann_id = image_id * 10 + k
            x, y = rng.randrange(0, 20), rng.randrange(0, 20)
            box = [x, y, 20, 16]
            annotations.append({
                "id": ann_id, "image_id": image_id, "category_id": rng.randrange(1, 6),
                "bbox": box, "area": 320, "iscrowd": 0,
                "segmentation": [[x, y, x + 20, y, x + 20, y + 16, x, y + 16]],
            })  # fmt: skip
            split = "val" if index == len(files) - 1 else "train"
            ref_id = len(refs)
            sentences = [_sentence(rng, ref_id * 3 + s) for s in range(2)]
            refs.append({
                "ref_id": ref_id, "ann_id": ann_id, "image_id": image_id,
                "category_id": annotations[-1]["category_id"], "split": split,
                "sentences": sentences, "sent_ids": [s["sent_id"] for s in sentences],
                "file_name": f"{Path(file_name).stem}_{ann_id}.jpg",
            })  # fmt: skip
    instances = {"images": images, "annotations": annotations, "categories": CATEGORIES}
    return instances, refs


def make_refer_zip(out: Path, name: str, files: list[str], seed: int = 0) -> Path:
    instances, refs = _refer(name, files, seed)
    members = [
        ("instances.json", json.dumps(instances).encode()),
        (f"refs({REFER_SETS[name]}).p", pickle.dumps(refs, protocol=2)),
    ]
    return _write_zip(out / f"{name}.zip", name, iter(members), date_time=ZIP_TIME,
                      compress=zipfile.ZIP_DEFLATED)  # fmt: skip


def make_saiapr_zip(out: Path, names: list[str], seed: int = 0) -> Path:
    rng = random.Random(f"saiapr-images:{seed}")
    members = [(name, _jpeg(rng, 64, 48, None)) for name in names]
    return _write_zip(out / "saiapr_tc-12.zip", "saiapr_tc-12", iter(members),
                      date_time=ZIP_TIME, compress=zipfile.ZIP_STORED)  # fmt: skip


def _mdetr(rng: random.Random, files: list[str]) -> dict:
    """MDETR's finetune_*.json: one image record per expression, COCO style."""
    images, annotations = [], []
    for index, file_name in enumerate(files):
        caption = " ".join(rng.sample(WORDS, 3))
        images.append({
            "file_name": file_name, "height": 48, "width": 64, "id": index,
            "original_id": int(Path(file_name).stem.split("_")[-1]), "caption": caption,
            "dataset_name": "refcoco", "tokens_negative": [[0, len(caption)]],
        })  # fmt: skip
        annotations.append({
            "area": 320, "iscrowd": 0, "image_id": index, "category_id": 1, "id": index,
            "bbox": [2, 3, 20, 16], "tokens_positive": [[0, len(caption)]],
        })  # fmt: skip
    return {"images": images, "annotations": annotations, "categories": CATEGORIES}


def make_mdetr_zip(out: Path, coco_names: list[str], seed: int = 0) -> Path:
    rng = random.Random(f"mdetr:{seed}")
    flickr = [f"{i}.jpg" for i in flickr_image_ids(24)][16:]  # the Karpathy train part
    members = []
    for name in sorted(MDETR_FILES):
        files = flickr if name.startswith("final_flickr") else rng.sample(coco_names, 6)
        members.append((name, json.dumps(_mdetr(rng, files)).encode()))
    return _write_zip(out / "mdetr_annotations.zip", "mdetr_annotations", iter(members),
                      date_time=ZIP_TIME, compress=zipfile.ZIP_DEFLATED)  # fmt: skip


def grandf_images(split: str, n: int = 5, seed: int = 0) -> list[str]:
    rng = random.Random(f"grandf:{split}:{seed}")
    return [f"sa_{i}.jpg" for i in sorted(rng.sample(range(10_000_000, 11_000_000), n))]


def make_grandf_ha_zip(out: Path, seed: int = 0) -> Path:
    rng = random.Random(f"grandf-images:{seed}")
    members = [
        (f"{split}/{name}", _jpeg(rng, 64, 48, None))
        for split in ("train", "val_test")
        for name in grandf_images(split)
    ]
    return _write_zip(out / "GranDf_HA_images.zip", "GranDf_HA_images", iter(members),
                      date_time=ZIP_TIME, compress=zipfile.ZIP_STORED)  # fmt: skip


def _gcg_record(rng: random.Random, file_name: str) -> dict:
    caption = " ".join(rng.sample(WORDS, 4))
    phrase = caption.split()[0]
    rle = {"size": [48, 64], "counts": "PPYo1"}
    return {"file_name": file_name, "caption": caption,
            "groundings": {phrase: {"token_positives": [0, len(phrase)], "rle_masks": [rle]}}}  # fmt: skip


def make_grandf_repo(root: str | Path, seed: int = 0) -> Path:
    """The hub repository MBZUAI/GranD-f: train/ (7 GCG files) and val_test/ (4 COCO-style)."""
    repo = _repo_dir(root, GRANDF_REPO)
    rng = random.Random(f"grandf-repo:{seed}")
    for name in GRANDF_TRAIN:
        files = grandf_images("train") if name.startswith("GranDf_HA") else [
            f"{rng.randrange(1, 581929):012d}.jpg" for _ in range(3)]  # fmt: skip
        (repo / "train").mkdir(parents=True, exist_ok=True)
        _write(repo / "train" / name, json.dumps([_gcg_record(rng, f) for f in files]).encode())
    val_test = grandf_images("val_test")
    for name in GRANDF_VAL_TEST:
        split_files = val_test[:3] if name.startswith("val") else val_test[3:]
        images = [{"id": f[:-4], "file_name": f, "height": 48, "width": 64} for f in split_files]
        (repo / "val_test").mkdir(parents=True, exist_ok=True)
        body = {"images": images, "annotations": [], "categories": [{"id": 1, "name": "object"}]}
        _write(repo / "val_test" / name, json.dumps(body).encode())
    readme = (
        "---\nlicense: apache-2.0\n---\n# GranD-f (stand-in)\n\nGenerated by vlprep for tests.\n"
    )
    _write(repo / "README.md", readme.encode())
    _write(repo / ".gitattributes", b"*.json filter=lfs diff=lfs merge=lfs -text\n")
    return repo


def make_glamm_refer(out: Path) -> dict[str, Path]:
    """Write the stand-in files into `out`; return {catalog file name or entry id: path}."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    coco = coco2014_train_names(out.parent)
    saiapr = saiapr_names()
    made: dict[str, Path] = {}
    for index, name in enumerate(("refcoco", "refcoco+", "refcocog")):
        made[f"{name}.zip"] = make_refer_zip(out, name, coco[index * 4 : index * 4 + 6])
    made["refclef.zip"] = make_refer_zip(out, "refclef", saiapr[:6])
    made["saiapr_tc-12.zip"] = make_saiapr_zip(out, saiapr)
    made["glamm_mdetr"] = make_mdetr_zip(out, coco)
    made["glamm_grandf_ha"] = make_grandf_ha_zip(out)
    return made
