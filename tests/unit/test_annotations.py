"""Annotation files keep exactly the records whose image their consumer opens, joined the way
that consumer joins it, and say what they dropped; VQA's companions follow."""

import json
import os

import pytest

from vlprep.annotations import ImageRefs, filter_by_ids, filter_by_images
from vlprep.consumers import check_lavis
from vlprep.errors import ConversionError, VlprepError
from vlprep.images import check_folder


def write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def vg(tmp_path, make_jpeg):
    """A flat vg/images with one good image, one empty and one HTML page, and LAVIS's files
    naming them (and one that never arrived) by absolute Salesforce paths."""
    images = tmp_path / "lavis" / "vg" / "images"
    images.mkdir(parents=True)
    (images / "1.jpg").write_bytes(make_jpeg())
    (images / "2.jpg").write_bytes(b"")
    (images / "3.jpg").write_bytes(b"<html><body>rate limited</body></html>")
    absolute = "/export/share/datasets/vision/visual-genome/image/"
    records = [
        {"image": f"{absolute}{i}.jpg", "caption": f"c{i}", "question_id": i} for i in (1, 2, 3, 4)
    ]
    store = tmp_path / "store"
    return {
        "layout": tmp_path / "lavis",
        "caption": write_json(store / "vg_caption.json", records),
        "qa": write_json(store / "vg_qa.json", records),
        "checks": {"vg_images": check_folder(images)},
    }


def test_basename_join_keeps_only_images_that_open(vg, tmp_path):
    dst = vg["layout"] / "vg" / "annotations" / "vg_caption.json"
    refs = ImageRefs("vg/images", "image", "basename", {"": "vg_images"})
    report = filter_by_images(
        vg["caption"], dst, refs=refs, layout_root=vg["layout"], checks=vg["checks"],
        allow_truncated=True, link_mode="symlink",
    )  # fmt: skip
    kept = json.loads(dst.read_text())
    assert [r["caption"] for r in kept] == ["c1"]
    assert kept[0]["image"].startswith("/export/")  # the consumer takes the base name itself
    assert report["records"] == 4 and report["kept"] == 1
    assert report["dropped"] == {"missing": 1, "undecodable": 2}
    assert not dst.is_symlink()


def test_absolute_paths_are_rewritten_for_a_consumer_that_joins_them(vg):
    """VGVQADataset joins vis_root with the path as written: absolute upstream paths would
    escape vis_root, so they are written relative to it."""
    dst = vg["layout"] / "vg" / "annotations" / "vg_qa.json"
    refs = ImageRefs("vg/images", "image", "path", {"": "vg_images"}, rewrite="basename")
    report = filter_by_images(
        vg["qa"], dst, refs=refs, layout_root=vg["layout"], checks=vg["checks"],
        allow_truncated=True, link_mode="symlink",
    )  # fmt: skip
    kept = json.loads(dst.read_text())
    assert kept == [{"image": "1.jpg", "caption": "c1", "question_id": 1}]
    assert "base name" in report["rewritten"]
    path = os.path.join(vg["layout"] / "vg" / "images", kept[0]["image"])
    assert os.path.isfile(path)


def test_without_rewrite_an_absolute_path_is_outside_the_folder(vg):
    refs = ImageRefs("vg/images", "image", "path", {"": "vg_images"})
    with pytest.raises(ConversionError, match="none of its 4 records"):
        filter_by_images(
            vg["qa"], vg["layout"] / "qa.json", refs=refs, layout_root=vg["layout"],
            checks=vg["checks"], allow_truncated=True, link_mode="symlink",
        )  # fmt: skip
    assert not (vg["layout"] / "qa.json").exists()  # nothing half-written at the final path


def test_a_file_whose_images_all_open_is_the_stored_file_itself(tmp_path, make_jpeg):
    root = tmp_path / "lavis"
    (root / "gqa" / "images").mkdir(parents=True)
    (root / "gqa" / "images" / "n1.jpg").write_bytes(make_jpeg())
    src = write_json(tmp_path / "store" / "q.json", [{"image": "n1.jpg", "question": "?"}])
    dst = root / "gqa" / "annotations" / "q.json"
    refs = ImageRefs("gqa/images", "image", "path", {"": "gqa"})
    checks = {"gqa": check_folder(root / "gqa" / "images")}
    for mode in ("symlink", "hardlink", "copy"):
        report = filter_by_images(
            src, dst, refs=refs, layout_root=root, checks=checks, allow_truncated=True,
            link_mode=mode,
        )  # fmt: skip
        assert report["dropped"] == {} and report["written"] == "linked to the source"
        assert dst.read_bytes() == src.read_bytes()
    assert os.path.samefile(dst, src) is False  # copy mode: its own bytes
    filter_by_images(src, dst, refs=refs, layout_root=root, checks=checks,
                     allow_truncated=True, link_mode="symlink")  # fmt: skip
    assert dst.is_symlink() and not os.path.isabs(os.readlink(dst))


def test_minigpt4_align_file_becomes_the_list_vpgtrans_reads(tmp_path, make_jpeg):
    root = tmp_path / "lavis"
    images = root / "cc_sbu_align" / "image"
    images.mkdir(parents=True)
    (images / "2.jpg").write_bytes(make_jpeg())
    (images / "3.jpg").write_bytes(make_jpeg()[:200])  # header cut: opens under no setting
    src = write_json(
        tmp_path / "store" / "filter_cap.json",
        {"annotations": [{"image_id": "2", "caption": "a"}, {"image_id": "3", "caption": "b"},
                         {"caption": "no id"}]},
    )  # fmt: skip
    dst = root / "cc_sbu_align" / "filter_cap.json"
    refs = ImageRefs("cc_sbu_align/image", "image_id", "id_jpg", {"": "align"},
                     records="annotations.item")  # fmt: skip
    report = filter_by_images(
        src, dst, refs=refs, layout_root=root, checks={"align": check_folder(images)},
        allow_truncated=True, link_mode="symlink",
    )  # fmt: skip
    assert json.loads(dst.read_text()) == [{"image_id": "2", "caption": "a"}]
    assert report["dropped"] == {"no image field": 1, "undecodable": 1}
    assert check_lavis(root, ["cc_sbu_align"]) == []


def test_a_damaged_image_stays_only_for_a_consumer_that_allows_it(tmp_path, make_jpeg):
    root = tmp_path / "lavis"
    images = root / "nocaps" / "images" / "val"
    images.mkdir(parents=True)
    good = make_jpeg()
    (images / "a.jpg").write_bytes(good)
    (images / "b.jpg").write_bytes(good[: len(good) // 2])
    src = write_json(tmp_path / "store" / "nocaps_val.json",
                     [{"image": "val/a.jpg", "img_id": 0}, {"image": "val/b.jpg", "img_id": 1}])  # fmt: skip
    refs = ImageRefs("nocaps/images", "image", "path", {"val": "nocaps_val"}, eval_set=True)
    checks = {"nocaps_val": check_folder(images)}
    dst = root / "nocaps" / "annotations" / "nocaps_val.json"
    lenient = filter_by_images(src, dst, refs=refs, layout_root=root, checks=checks,
                               allow_truncated=True, link_mode="symlink")  # fmt: skip
    strict = filter_by_images(src, dst, refs=refs, layout_root=root, checks=checks,
                              allow_truncated=False, link_mode="symlink")  # fmt: skip
    assert (lenient["kept"], strict["kept"]) == (2, 1)
    assert strict["eval_set"] is True


def test_an_image_in_a_folder_nobody_checked_is_a_bug_not_a_pass(tmp_path, make_jpeg):
    root = tmp_path / "lavis"
    (root / "coco" / "images" / "test2015").mkdir(parents=True)
    (root / "coco" / "images" / "test2015" / "x.jpg").write_bytes(make_jpeg())
    src = write_json(tmp_path / "vqa_test.json", [{"image": "test2015/x.jpg"}])
    refs = ImageRefs("coco/images", "image", "path", {"val2014": "coco2014_val"})
    with pytest.raises(VlprepError, match="no image check of that folder"):
        filter_by_images(src, root / "t.json", refs=refs, layout_root=root,
                         checks={"coco2014_val": {"undecodable": [], "damaged": []}},
                         allow_truncated=True, link_mode="symlink")  # fmt: skip


def test_vqa_companions_drop_the_same_questions(tmp_path):
    questions = {
        "info": {"description": "x"},
        "task_type": "Open-Ended",
        "questions": [{"question_id": i, "image_id": i} for i in range(5)],
        "data_subtype": "val2014",
    }
    src = write_json(tmp_path / "store" / "q.json", questions)
    dst = tmp_path / "lavis" / "q.json"
    report = filter_by_ids(src, dst, list_key="questions", id_field="question_id",
                           dropped=[1, 3], link_mode="symlink")  # fmt: skip
    written = json.loads(dst.read_text())
    assert [q["question_id"] for q in written["questions"]] == [0, 2, 4]
    assert {k: v for k, v in written.items() if k != "questions"} == {
        k: v for k, v in questions.items() if k != "questions"
    }
    assert report == {"records": 5, "kept": 3, "dropped": 2}
    assert filter_by_ids(src, dst, list_key="questions", id_field="question_id", dropped=[],
                         link_mode="symlink") == {"dropped": 0}  # fmt: skip
    assert dst.is_symlink()


@pytest.mark.parametrize("shape", ["minigpt4", "list"])
def test_both_shapes_of_the_align_file_are_read(tmp_path, make_jpeg, shape):
    """MiniGPT-4 ships {"annotations": [...]}, VPGTrans's copy is the bare list."""
    images = tmp_path / "lavis" / "cc_sbu_align" / "image"
    images.mkdir(parents=True)
    (images / "2.jpg").write_bytes(make_jpeg())
    records = [{"image_id": "2", "caption": "é"}]
    src = write_json(
        tmp_path / "f.json", {"annotations": records} if shape == "minigpt4" else records
    )
    refs = ImageRefs(
        "cc_sbu_align/image", "image_id", "id_jpg", {"": "a"}, records="annotations.item"
    )
    dst = tmp_path / "lavis" / "cc_sbu_align" / "filter_cap.json"
    filter_by_images(src, dst, refs=refs, layout_root=tmp_path / "lavis",
                     checks={"a": check_folder(images)}, allow_truncated=True, link_mode="copy")  # fmt: skip
    assert json.loads(dst.read_text()) == records


@pytest.mark.parametrize("text", ['{"annotations": [', '"just a string"', '{"other": []}', ""])
def test_bad_annotation_files_fail_naming_them_and_write_nothing(tmp_path, text):
    (tmp_path / "image").mkdir()
    src = tmp_path / "filter_cap.json"
    src.write_text(text)
    dst = tmp_path / "out" / "filter_cap.json"
    refs = ImageRefs("image", "image_id", "id_jpg", {"": "a"}, records="annotations.item")
    with pytest.raises(ConversionError) as err:
        filter_by_images(src, dst, refs=refs, layout_root=tmp_path,
                         checks={"a": {"undecodable": [], "damaged": []}}, allow_truncated=True,
                         link_mode="copy")  # fmt: skip
    assert str(src) in str(err.value)
    assert not dst.exists()
