"""GLaMM's pascal_part/train.json read by pycocotools (open_pascal_part.py, loaders venv): it
loads as init_pascal_part loads it, and every RLE pycocotools decodes is one of the image's
part masks in the .mat files."""

import pytest

from tests.unit.test_pascal_part import generated
from vlprep.pascal_part import pascal_part


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("VLPREP_PROGRESS", "0")


def test_pycocotools_decodes_every_mask_to_its_part(tmp_path, run_loader):
    ann, split = generated(tmp_path, 40, seed=11)
    report = pascal_part(ann, split, tmp_path / "out", work=tmp_path / "w", processes=2)
    result = run_loader("open_pascal_part.py", tmp_path / "out" / "train.json", ann)
    assert result["categories"] == 93
    assert result["images"] == report["images"] > 0
    assert result["matched"] == report["annotations"] > 0 and result["unmatched"] == 0
