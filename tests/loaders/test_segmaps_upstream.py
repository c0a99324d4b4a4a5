"""vlprep.segmaps against the upstream converters themselves, run in the loaders venv
(segmaps_upstream.py): mmseg's coco_stuff164k.py and pascal_context.py (with pycocotools
decoding the RLE), and cityscapesscripts' json2labelImg."""

import pytest

from tests.segmaps_inputs import make_cityscapes, make_coco_raw, make_context_json
from vlprep import segmaps


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("VLPREP_PROGRESS", "0")


def test_coco_stuff_and_object_match_mmseg_converter(tmp_path, run_loader):
    names = make_coco_raw(tmp_path / "raw", 12, seed=4)
    segmaps.coco_stuff_val(tmp_path / "raw", tmp_path / "ours", work=tmp_path / "w", processes=2)
    result = run_loader(
        "segmaps_upstream.py", "coco", tmp_path / "raw", tmp_path / "ours", tmp_path / "up"
    )
    assert result["table_entries"] == 172  # 171 classes and 255
    assert result["compared"] == 2 * len(names) and result["different"] == []


def test_pascal_context_matches_mmseg_converter_on_detail_semantics(tmp_path, run_loader):
    merged = tmp_path / "trainval_merged.json"
    data = make_context_json(merged, seed=9, n_images=20)
    report = segmaps.pascal_context(merged, tmp_path / "ours", work=tmp_path / "w", processes=2)
    result = run_loader(
        "segmaps_upstream.py", "context", merged, tmp_path / "ours", tmp_path / "up"
    )
    converted = [i for i in data["images"] if i["phase"] in ("train", "val")]
    assert result["compared"] == len(converted) == report["written"]
    assert result["different"] == []


def test_cityscapes_matches_cityscapesscripts(tmp_path, run_loader):
    files = make_cityscapes(tmp_path / "val", seed=6)
    segmaps.cityscapes(tmp_path / "val", tmp_path / "ours", work=tmp_path / "w", processes=2)
    result = run_loader(
        "segmaps_upstream.py", "cityscapes", tmp_path / "val", tmp_path / "ours", tmp_path / "up"
    )
    if "skipped" in result:
        pytest.skip(result["skipped"])
    assert result["compared"] == len(files) and result["different"] == []
