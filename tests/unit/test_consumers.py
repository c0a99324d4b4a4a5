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
    assert any("1 of 2 images it names are missing" in p for p in problems)
    assert any("not flat" in p for p in problems)
    assert any("extends a list" in p for p in problems)


def test_missing_annotation_files_are_named(tmp_path):
    problems = check_lavis(tmp_path, ["gqa"])
    assert any(p.endswith("train_balanced_questions.json: missing (gqa)") for p in problems)
    assert any("gqa/images/: missing" in p for p in problems)
