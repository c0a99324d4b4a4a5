"""The consumer checks find what would break VPGTrans or nxtp (so a clean result means something)."""

import io
import json
import tarfile
from pathlib import Path

from vlprep.consumers import check_g3m, check_lavis, check_wds_folder


def write_tar(path: Path, names: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tf:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = 3
            tf.addfile(info, io.BytesIO(b"abc"))
    return path


def test_complete_sorted_tars_pass(tmp_path):
    write_tar(tmp_path / "sbu" / "sbu" / "00000.tar", ["a.jpg", "a.txt", "b.jpg", "b.txt"])
    problems, counts = check_wds_folder(tmp_path / "sbu" / "sbu")
    assert problems == [] and counts == {"00000.tar": 2}
    assert check_g3m(tmp_path, ["sbu"]) == []


def test_split_and_incomplete_samples_are_found(tmp_path):
    folder = tmp_path / "sbu" / "sbu"
    write_tar(folder / "00000.tar", ["a.jpg", "b.jpg", "a.txt", "b.txt"])  # readdir order
    write_tar(folder / "00001.tar", ["c.jpg", "d.jpg", "d.txt"])
    problems = check_g3m(tmp_path, ["sbu"])
    assert any("split" in p and "00000.tar" in p for p in problems)
    assert any("c lacks .jpg or .txt" in p for p in problems)


def test_stray_tars_under_the_root_are_found(tmp_path):
    write_tar(tmp_path / "sbu" / "sbu" / "00000.tar", ["a.jpg", "a.txt"])
    write_tar(tmp_path / "sbu" / "raw" / "00000.tar", ["a.jpg", "a.txt"])
    assert any("stray tars" in p for p in check_g3m(tmp_path, ["sbu"]))


def test_missing_images_and_wrong_shapes_are_found(tmp_path):
    lavis = tmp_path / "lavis"
    (lavis / "vg" / "images" / "VG_100K").mkdir(parents=True)
    (lavis / "vg" / "images" / "1.jpg").write_bytes(b"x")
    (lavis / "vg" / "annotations").mkdir(parents=True)
    records = [{"image": "/export/x/1.jpg", "caption": "a"}, {"image": "/export/x/2.jpg"}]
    for name in ("vg_caption.json", "vg_qa.json"):
        (lavis / "vg" / "annotations" / name).write_text(json.dumps(records))
    (lavis / "cc_sbu_align" / "image").mkdir(parents=True)
    (lavis / "cc_sbu_align" / "filter_cap.json").write_text('{"annotations": []}')
    problems = check_lavis(lavis, ["vg", "cc_sbu_align"])
    assert any("vg_caption.json: 2 of 2 records name an image" in p for p in problems)
    assert any("not flat" in p for p in problems)
    assert any("loads it as a list" in p for p in problems)


def lavis_tree(tmp_path, make_jpeg, image: bytes | None) -> Path:
    """A lavis/ tree whose vg files name 1.jpg (good) and 2.jpg (`image`, absent if None)."""
    lavis = tmp_path / "lavis"
    images = lavis / "vg" / "images"
    images.mkdir(parents=True)
    (images / "1.jpg").write_bytes(make_jpeg())
    if image is not None:
        (images / "2.jpg").write_bytes(image)
    (lavis / "vg" / "annotations").mkdir(parents=True)
    caption = [{"image": f"/export/vg/{i}.jpg", "caption": "c"} for i in (1, 2)]
    qa = [{"image": f"{i}.jpg", "question": "q", "answer": "a"} for i in (1, 2)]
    (lavis / "vg" / "annotations" / "vg_caption.json").write_text(json.dumps(caption))
    (lavis / "vg" / "annotations" / "vg_qa.json").write_text(json.dumps(qa))
    return lavis


def test_every_named_image_must_open_no_tolerance(tmp_path, make_jpeg):
    """One missing image in two is a problem: the loader dies on the first one it meets."""
    good = make_jpeg()
    assert check_lavis(lavis_tree(tmp_path / "a", make_jpeg, good), ["vg"]) == []
    missing = check_lavis(lavis_tree(tmp_path / "b", make_jpeg, None), ["vg"])
    assert len(missing) == 2 and all("1 of 2 records" in p and "missing" in p for p in missing)
    empty = check_lavis(lavis_tree(tmp_path / "c", make_jpeg, b""), ["vg"])
    assert len(empty) == 2 and all("UnidentifiedImageError" in p for p in empty)
    # truncated and garbled data open: VPGTrans sets LOAD_TRUNCATED_IMAGES
    assert check_lavis(lavis_tree(tmp_path / "d", make_jpeg, good[: len(good) // 2]), ["vg"]) == []


def test_vg_qa_paths_are_joined_as_written(tmp_path, make_jpeg):
    """VGVQADataset does not take the base name: LAVIS's absolute paths fail."""
    lavis = lavis_tree(tmp_path, make_jpeg, make_jpeg())
    qa = [{"image": f"/export/vg/{i}.jpg", "question": "q", "answer": "a"} for i in (1, 2)]
    (lavis / "vg" / "annotations" / "vg_qa.json").write_text(json.dumps(qa))
    problems = check_lavis(lavis, ["vg"])
    assert problems and "vg_qa.json: 2 of 2 records" in problems[0]


def test_vqa_eval_must_match_the_official_questions(tmp_path, make_jpeg):
    lavis = tmp_path / "lavis"
    (lavis / "coco" / "images" / "val2014").mkdir(parents=True)
    (lavis / "coco" / "images" / "val2014" / "a.jpg").write_bytes(make_jpeg())
    ann = lavis / "coco" / "annotations"
    ann.mkdir(parents=True)
    (ann / "vqa_val_eval.json").write_text(
        json.dumps([{"image": "val2014/a.jpg", "question_id": 1}])
    )
    questions = {"questions": [{"question_id": 1}, {"question_id": 2}]}
    (ann / "v2_OpenEnded_mscoco_val2014_questions.json").write_text(json.dumps(questions))
    problems = check_lavis(lavis, ["lavis_coco"])
    assert any("VQA.loadRes asserts" in p for p in problems)


def test_missing_annotation_files_are_named(tmp_path):
    problems = check_lavis(tmp_path, ["gqa"])
    assert any(p.endswith("train_balanced_questions.json: missing (gqa)") for p in problems)
    assert any("gqa/images/: missing" in p for p in problems)
