"""Stand-ins for the rest of VPGTrans's cache_root: LAVIS annotation files, GQA's images.zip
and MiniGPT-4's cc_sbu_align.zip. Small, deterministic, format-faithful.

The annotation files name images that exist in the other stand-in archives (COCO 2014 zips,
GQA and Visual Genome zips, nocaps lists), so a test can check what a loader would check: every
image an annotation names opens. Shapes follow LAVIS's files (datasets.md D03): Karpathy train
is a list of {"caption", "image", "image_id"}, val/test a list of {"image", "caption": [...]};
the VQA files are lists of {"question_id", "question", "answer", "image", "dataset"}; the
official VQA questions/annotations are {"questions": [...]} / {"annotations": [...]}; GQA's
list names `<imageId>.jpg`; vg_caption's `image` is an absolute Salesforce path (VPGTrans opens
its base name); nocaps' `image` is `<split>/<file_name>`.
"""

import json
import random
import zipfile
from pathlib import Path

from standin.coco import _caption, _jpeg, _write_zip
from standin.named import nocaps_image

ZIP_TIME = (2019, 3, 1, 12, 0, 0)
ANSWERS = ["yes", "no", "2", "red", "dog", "table", "left", "wood", "none", "tennis"]
VG_ABSOLUTE = "/export/share/datasets/vision/visual-genome/image/"


def _write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def zip_images(path: Path) -> list[str]:
    """The image members of a zip, sorted: `top/.../<name>.jpg`."""
    with zipfile.ZipFile(path) as zf:
        return sorted(n for n in zf.namelist() if n.endswith(".jpg"))


def make_gqa_zip(out_dir: Path, *, n_images: int = 30, seed: int = 0) -> Path:
    """GQA's images.zip: `images/<imageId>.jpg`, ids numeric or `n<digits>` as in the real zip."""
    rng = random.Random(f"gqa:{seed}")
    ids = sorted(
        {
            str(rng.randrange(1, 2_417_997)) if i % 3 else f"n{rng.randrange(1, 600_000)}"
            for i in range(n_images)
        }
    )
    members = ((f"{image_id}.jpg", _jpeg(rng, 96, 72, None)) for image_id in ids)
    out_dir.mkdir(parents=True, exist_ok=True)
    return _write_zip(
        out_dir / "gqa_images.zip",
        "images",
        members,
        date_time=ZIP_TIME,
        compress=zipfile.ZIP_STORED,
    )


def make_cc_sbu_align_zip(out_dir: Path, *, n_images: int = 25, seed: int = 0) -> Path:
    """MiniGPT-4's cc_sbu_align.zip: filter_cap.json ({"annotations": [...]}) and image/<id>.jpg."""
    rng = random.Random(f"cc_sbu_align:{seed}")
    ids = sorted(rng.sample(range(2, 5000), n_images), key=str)
    annotations = [
        {"image_id": str(i), "caption": f"The image shows {_caption(rng, i).strip().lower()}"}
        for i in ids
    ]
    members = [("filter_cap.json", json.dumps({"annotations": annotations}, indent=4).encode())]
    members += [(f"image/{i}.jpg", _jpeg(rng, 80, 64, None)) for i in ids]
    out_dir.mkdir(parents=True, exist_ok=True)
    return _write_zip(
        out_dir / "cc_sbu_align.zip",
        "cc_sbu_align",
        iter(members),
        date_time=ZIP_TIME,
        compress=zipfile.ZIP_DEFLATED,
    )


def _vqa(rng: random.Random, images: list[str], first_id: int, answered: bool) -> list[dict]:
    records = []
    for offset, image in enumerate(images):
        record = {
            "question_id": first_id + offset,
            "question": f"What is {rng.choice(['on', 'near', 'under'])} the {rng.choice(ANSWERS)}?",
            "image": image,
            "dataset": "vqa",
        }
        if answered:
            record["answer"] = [rng.choice(ANSWERS) for _ in range(10)]
        records.append(record)
    return records


def _official(rng: random.Random, images: list[str], first_id: int) -> tuple[dict, dict]:
    """The official VQA val questions and annotations files for these images."""
    questions, annotations = [], []
    for offset, image in enumerate(images):
        image_id = int(Path(image).stem.rsplit("_", 1)[1])
        qid = first_id + offset
        questions.append({"image_id": image_id, "question": "What is this?", "question_id": qid})
        answer = rng.choice(ANSWERS)
        annotations.append(
            {
                "question_type": "what is",
                "multiple_choice_answer": answer,
                "answers": [
                    {"answer": answer, "answer_confidence": "yes", "answer_id": k + 1}
                    for k in range(10)
                ],
                "image_id": image_id,
                "answer_type": "other",
                "question_id": qid,
            }
        )
    header = {"info": {"description": "stand-in"}, "license": {}, "data_subtype": "val2014"}
    return (
        {**header, "task_type": "Open-Ended", "data_type": "mscoco", "questions": questions},
        {**header, "data_type": "mscoco", "annotations": annotations},
    )


def make_lavis_annotations(
    out_dir: Path,
    *,
    coco2014: dict[str, Path],
    gqa_zip: Path,
    vg_zips: list[Path],
    nocaps_rows: dict[str, int],
    seed: int = 0,
) -> dict[str, Path]:
    """Write every LAVIS annotation file of the catalog; return {URL file name: path}.

    `coco2014` maps split (train2014, val2014, test2015) to its zip; the files name their
    images. Names the real catalog shares across datasets (none today) would need entry ids.
    """
    rng = random.Random(f"lavis:{seed}")
    out = Path(out_dir) / "lavis"
    coco = {split: zip_images(path) for split, path in coco2014.items()}  # split/COCO_..jpg
    train, val, test = coco["train2014"], coco["val2014"], coco["test2015"]
    written: dict[str, Path] = {}

    def put(name: str, data) -> None:
        written[name] = _write_json(out / name, data)

    put(
        "coco_karpathy_train.json",
        [
            {"caption": _caption(rng, i), "image": image, "image_id": f"coco_{i}"}
            for i, image in enumerate(train + val[: len(val) // 2])
        ],
    )
    for name, images in (("val", val[len(val) // 2 :]), ("test", val[: len(val) // 2])):
        put(
            f"coco_karpathy_{name}.json",
            [{"image": image, "caption": [_caption(rng, k) for k in range(5)]} for image in images],
        )
    put("vqa_train.json", _vqa(rng, train, 1000, answered=True))
    put("vqa_val.json", _vqa(rng, val, 2000, answered=True))
    put("vqa_val_eval.json", _vqa(rng, val, 3000, answered=True))
    put("vqa_test.json", _vqa(rng, test, 4000, answered=False))
    put("answer_list.json", ANSWERS)
    questions, annotations = _official(rng, val, 3000)
    put("v2_OpenEnded_mscoco_val2014_questions.json", questions)
    put("v2_mscoco_val2014_annotations.json", annotations)
    put("okvqa_train.json", _vqa(rng, train, 5000, answered=True))
    put("okvqa_val_eval.json", _vqa(rng, val, 6000, answered=True))
    put("okvqa_answer_list_train.json", ANSWERS[::-1])
    questions, annotations = _official(rng, val, 6000)
    put("OpenEnded_mscoco_val2014_questions.json", questions)
    put("mscoco_val2014_annotations.json", annotations)

    for split, rows in nocaps_rows.items():
        put(
            f"nocaps_{split}.json",
            [
                {
                    "image": f"{split}/{nocaps_image(split, i, 'http://x')['file_name']}",
                    "caption": [f"a photo of thing {i}."] * (10 if split == "val" else 0),
                    "img_id": i,
                }
                for i in range(rows)
            ],
        )

    gqa = [Path(name).name for name in zip_images(gqa_zip)]
    for k, split in enumerate(("train", "val", "testdev", "test")):
        put(
            f"{split}_balanced_questions.json",
            [
                {
                    "image": image,
                    "question": f"Is there a {rng.choice(ANSWERS)} in the picture?",
                    "question_id": f"{k}{i:07d}",
                    "answer": rng.choice(["yes", "no"]),
                    "dataset": "gqa",
                }
                for i, image in enumerate(gqa)
            ],
        )

    vg = [Path(name).name for path in vg_zips for name in zip_images(path)]
    put(
        "vg_caption.json",
        [{"image": VG_ABSOLUTE + name, "caption": _caption(rng, i)} for i, name in enumerate(vg)],
    )
    put(
        "vg_qa.json",
        [
            {
                "image": VG_ABSOLUTE + name,
                "question": "What color is the sky?",
                "answer": [rng.choice(ANSWERS)],
                "question_id": i,
            }
            for i, name in enumerate(vg)
        ],
    )
    return written
