"""vlprep.images decodes every image and says which ones a consumer cannot open, and why."""

import pytest
from PIL import Image

from vlprep.images import DAMAGED, UNDECODABLE, check_folder, judge, unusable


def garbled(data: bytes) -> bytes:
    """Entropy-coded data garbled between intact markers: Pillow raises "broken data stream"
    unless LOAD_TRUNCATED_IMAGES is set."""
    body = bytearray(data)
    start = data.index(b"\xff\xda") + 400  # inside the scan, well after the SOS header
    for i in range(start, start + 400):
        body[i] = (body[i] * 7 + 3) % 256
    return bytes(body)


@pytest.fixture
def folder(tmp_path, make_jpeg):
    good = make_jpeg()
    files = {
        "good.jpg": good,
        "truncated.jpg": good[: len(good) * 2 // 3],
        "empty.jpg": b"",
        "page.jpg": b"<!DOCTYPE html><html><body>Not Found</body></html>",
        "header_only.jpg": good[:300],
        "garbled.jpg": garbled(good),
        "sub/deeper.png": b"",
        "notes.txt": b"not an image, not looked at",
    }
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    (tmp_path / "link.jpg").symlink_to(tmp_path / "good.jpg")
    return tmp_path


def test_each_way_an_image_fails_is_told_apart(folder):
    assert judge(folder / "good.jpg") == ("ok", None)
    assert judge(folder / "truncated.jpg")[0] == DAMAGED
    assert judge(folder / "garbled.jpg") == (
        DAMAGED,
        "OSError: broken data stream when reading image file",
    )
    for name in ("empty.jpg", "page.jpg", "header_only.jpg"):
        assert judge(folder / name)[0] == UNDECODABLE, name
    assert "empty" in judge(folder / "empty.jpg")[1]
    assert "UnidentifiedImageError" in judge(folder / "page.jpg")[1]


def test_a_folder_report_keeps_only_the_failures(folder):
    report = check_folder(folder, workers=2)
    assert report["images"] == 8  # links followed, sub-folders walked, .txt skipped
    assert [t["name"] for t in report["damaged"]] == ["garbled.jpg", "truncated.jpg"]
    assert [u["name"] for u in report["undecodable"]] == [
        "empty.jpg",
        "header_only.jpg",
        "page.jpg",
        "sub/deeper.png",
    ]
    # LAVIS sets LOAD_TRUNCATED_IMAGES; a consumer that does not also loses the damaged ones
    assert "truncated.jpg" not in unusable(report, allow_truncated=True)
    assert {"truncated.jpg", "garbled.jpg"} <= unusable(report, allow_truncated=False).keys()


def test_what_pillow_opens_agrees_with_the_verdicts(folder):
    """The verdicts are what the consumer's own call does, not a guess from markers."""
    from PIL import ImageFile

    report = check_folder(folder)
    bad = unusable(report, allow_truncated=True)
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        for path in folder.rglob("*"):
            if path.suffix not in (".jpg", ".png"):
                continue
            name = str(path.relative_to(folder))
            try:
                Image.open(path).convert("RGB")
                opened = True
            except Exception:  # noqa: BLE001
                opened = False
            assert opened == (name not in bad), name
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False


def test_a_missing_folder_is_an_error(tmp_path):
    from vlprep.errors import VlprepError

    with pytest.raises(VlprepError, match="image folder not found"):
        check_folder(tmp_path / "nope")
