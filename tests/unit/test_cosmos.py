"""COSMOS's Flickr30k folder: the store's images linked one by one, BLIP's JSONs inside it,
keeping exactly the records whose image COSMOS opens (strictly: it does not set
LOAD_TRUNCATED_IMAGES), checked by vlprep.consumers' restatement of read_flickr_pairs."""

import json
import os

import pytest

from vlprep.consumers import check_cosmos
from vlprep.cosmos import flickr30k_folder
from vlprep.errors import ConversionError
from vlprep.images import check_folder


@pytest.fixture
def store(tmp_path, make_jpeg):
    """extracted/flickr30k_images/flickr30k-images with a good, a truncated and an empty
    image, and BLIP's val/test files naming them and one that is not there."""
    images = tmp_path / "extracted" / "flickr30k_images" / "flickr30k-images"
    images.mkdir(parents=True)
    good = make_jpeg()
    (images / "1.jpg").write_bytes(good)
    (images / "2.jpg").write_bytes(good[: len(good) // 2])
    (images / "3.jpg").write_bytes(b"")
    (images / "5.jpg").write_bytes(make_jpeg(seed=5))
    caps = ["a dog.", "a cat.", "a bird.", "a tree.", "a car."]
    val = [{"image": f"flickr30k-images/{i}.jpg", "caption": caps} for i in (1, 2, 3, 4)]
    test = [{"image": "flickr30k-images/5.jpg", "caption": caps}]
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    (downloads / "val.json").write_text(json.dumps(val))
    (downloads / "test.json").write_text(json.dumps(test))
    return {
        "images": images,
        "annotations": {
            "flickr30k_val.json": downloads / "val.json",
            "flickr30k_test.json": downloads / "test.json",
        },
        "check": check_folder(images),
    }


@pytest.mark.parametrize("mode", ["symlink", "hardlink", "copy"])
def test_the_folder_cosmos_reads(tmp_path, store, mode):
    dest = tmp_path / "cosmos" / "flickr30k-images"
    result = flickr30k_folder(
        store["images"], store["annotations"], dest, check=store["check"],
        reports=tmp_path / "reports" / "cosmos" / "flickr30k-images", link_mode=mode,
    )  # fmt: skip
    assert dest.is_dir() and not dest.is_symlink()  # a real folder: the JSONs are not in the store
    assert sorted(p.name for p in store["images"].iterdir()) == ["1.jpg", "2.jpg", "3.jpg", "5.jpg"]
    val = json.loads((dest / "flickr30k_val.json").read_text())
    assert [r["image"] for r in val] == ["flickr30k-images/1.jpg"]  # strict: 2 is truncated
    assert json.loads((dest / "flickr30k_test.json").read_text()) == json.loads(
        store["annotations"]["flickr30k_test.json"].read_text()
    )
    report = result["annotations"]["flickr30k_val.json"]
    assert report["dropped"] == {"missing": 1, "undecodable": 2} and report["eval_set"]
    if mode == "symlink":
        assert (dest / "1.jpg").is_symlink() and not os.path.isabs(os.readlink(dest / "1.jpg"))
    assert check_cosmos(tmp_path / "cosmos", ["flickr30k"]) == []


def test_the_unfiltered_file_fails_the_consumer_check(tmp_path, store):
    """What COSMOS would crash on, found by the check (so its silence above means something)."""
    dest = tmp_path / "cosmos" / "flickr30k-images"
    flickr30k_folder(store["images"], store["annotations"], dest, check=store["check"],
                     reports=tmp_path / "r", link_mode="copy")  # fmt: skip
    (dest / "flickr30k_val.json").write_bytes(
        store["annotations"]["flickr30k_val.json"].read_bytes()
    )
    problems = check_cosmos(tmp_path / "cosmos", ["flickr30k"])
    assert problems and "3 of 4 images do not open" in problems[0]


def test_captions_must_be_lists(tmp_path, store):
    src = store["annotations"]["flickr30k_val.json"]
    src.write_text(json.dumps([{"image": "flickr30k-images/1.jpg", "caption": "one string"}]))
    with pytest.raises(ConversionError, match="caption is not a list"):
        flickr30k_folder(store["images"], store["annotations"], tmp_path / "f", check=store["check"],
                         reports=tmp_path / "r", link_mode="copy")  # fmt: skip
    assert not (tmp_path / "f").exists()
