"""MiniGPT-4's whole dataset tree (stage 1: laion + cc_sbu webdatasets; stage 2: cc_sbu_align)
built by the demo against the stand-ins, read back the way MiniGPT-4's dataset classes read it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import webdataset as wds
from PIL import Image

from standin.world import CC_SBU_ROWS
from vlprep.consumers import check_minigpt4

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("minigpt4")
    env = {**os.environ, "VLPREP_PROGRESS": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "standin.demo", "--workdir", str(workdir), "--cores", "2"]
        + ["minigpt4"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    # the demo's own consumer check ran on laion115m, cc_sbu and minigpt4_cc_sbu_align
    [checked] = [line for line in proc.stdout.splitlines() if "checking what the consumers" in line]
    assert {"laion115m", "cc_sbu", "minigpt4_cc_sbu_align"} <= set(
        checked.split(" of ")[1].split(", ")
    )
    assert "consumer path checks (vlprep.consumers): 0 problem(s)" in proc.stdout
    return workdir / "data"


def test_cc_sbu_tars_read_back_as_ccsbudataset_reads_them(demo):
    cc_sbu = demo / "minigpt4" / "cc_sbu"
    report = json.loads((demo / "reports" / "cc_sbu.json").read_text())
    assert report["attempted"] == CC_SBU_ROWS
    assert 0 < report["succeeded"] < CC_SBU_ROWS
    tars = sorted((cc_sbu / "cc_sbu_dataset").glob("*.tar"))
    # 100 rows per shard (the stand-in config), names run on across parts of 200 rows
    assert [t.stem for t in tars] == [f"{i:05d}" for i in range(CC_SBU_ROWS // 100)]
    # CCSBUDataset's pipeline, without resampling and shuffling (storage brace-expanded)
    location = str(cc_sbu / "cc_sbu_dataset" / f"{{00000..{len(tars) - 1:05d}}}.tar")
    pipeline = wds.DataPipeline(
        wds.SimpleShardList(location),
        wds.tarfile_to_samples(),
        wds.decode("pilrgb"),
        wds.to_tuple("jpg", "json"),
    )
    samples = list(pipeline)
    assert len(samples) == report["succeeded"]
    upstream = json.loads((cc_sbu / "ccs_synthetic_filtered_large.json").read_text())
    captions = {r.get("caption") for r in upstream if isinstance(r, dict)}
    for image, meta in samples:
        assert isinstance(image, Image.Image) and image.mode == "RGB"
        assert max(image.size) == 64  # the stand-in config's image_size, border resize
        assert meta["caption"] in captions
    header = (cc_sbu / "ccs_synthetic_filtered_large.tsv").read_bytes().split(b"\r\n", 1)[0]
    assert header == b"caption\turl"


def test_cc_sbu_align_resolves_as_ccsbualigndataset_joins_it(demo):
    storage = demo / "minigpt4" / "cc_sbu_align"
    annotations = json.loads((storage / "filter_cap.json").read_text())["annotations"]
    assert annotations
    for ann in annotations:
        path = os.path.join(storage / "image", "{}.jpg".format(ann["image_id"]))
        with Image.open(path) as img:
            img.convert("RGB")
        assert ann["caption"]
    # one stored download behind lavis/ and minigpt4/: the layout only links it
    stored = demo / "extracted" / "cc_sbu_align" / "cc_sbu_align"
    assert (storage / "image").resolve() == stored.joinpath("image").resolve()
    assert (storage / "filter_cap.json").resolve() == (stored / "filter_cap.json").resolve()


def test_the_check_fails_a_tree_missing_an_align_image(demo, tmp_path):
    """The check can fail: a copy of the align set with one image gone is reported."""
    storage = demo / "minigpt4" / "cc_sbu_align"
    copy = tmp_path / "cc_sbu_align"
    (copy / "image").mkdir(parents=True)
    (copy / "filter_cap.json").write_bytes((storage / "filter_cap.json").read_bytes())
    images = sorted(p for p in (storage / "image").iterdir() if p.suffix == ".jpg")
    for image in images[1:]:
        (copy / "image" / image.name).write_bytes(image.read_bytes())
    [problem] = check_minigpt4(tmp_path, ["minigpt4_cc_sbu_align"])
    assert "1 of" in problem and images[0].name in problem


def test_the_check_fails_a_shard_whose_sample_has_no_caption(demo, tmp_path):
    """A tar whose json lacks "caption" (CCSBUDataset's to_dict would raise) is reported."""
    import io
    import tarfile

    source = sorted((demo / "minigpt4" / "cc_sbu" / "cc_sbu_dataset").glob("*.tar"))[0]
    folder = tmp_path / "cc_sbu" / "cc_sbu_dataset"
    folder.mkdir(parents=True)
    with tarfile.open(source) as src, tarfile.open(folder / source.name, "w") as dst:
        for info in src:
            data = src.extractfile(info).read() if info.isfile() else None
            if info.name.endswith(".json"):
                meta = json.loads(data)
                del meta["caption"]
                data = json.dumps(meta).encode()
                info.size = len(data)
            dst.addfile(info, io.BytesIO(data) if data is not None else None)
    assert check_minigpt4(demo / "minigpt4", ["cc_sbu"]) == []
    [problem] = check_minigpt4(tmp_path, ["cc_sbu"])
    assert "has no caption string" in problem
