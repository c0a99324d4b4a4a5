"""Open Images V7 + Localized Narratives -> nxtp tars: the seed script's members and bytes,
readable by webdataset, and nothing at the output path when the input is bad or the run dies."""

import io
import json
import os
import os.path as osp
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
import webdataset
from PIL import Image

from standin.openimages import (
    NARRATIVES_NAME,
    make_narratives,
    make_validation_tarball,
)
from vlprep.errors import ConversionError
from vlprep.extract import extract
from vlprep.openimages import build_openimages_wds

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
N_IMAGES = 6100  # 6103 narratives: three of nxtp's sub-folders


def seed_openimages_to_wds(root: Path) -> None:
    """openimages_to_wds.py as pasted in the seed README, line for line.

    Changed: `root` is a parameter instead of "/data/openimages_v7", the images come from
    `validation/` (the tarball's folder) instead of `valid/`, tqdm is gone, and the text
    files' encoding is spelled out (what the script gets under any UTF-8 locale).
    """
    root = str(root)
    save_dir = osp.join(root, "openimages_v7_valid")

    if not os.path.exists(save_dir):
        os.makedirs(save_dir)

    json_file_path = osp.join(root, "open_images_validation_localized_narratives.jsonl")
    sub_fold_cnt = 1
    with open(json_file_path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            line = json.loads(line)
            image_id = line["image_id"]

            cap = line["caption"]
            src = osp.join(root, "validation", f"{image_id}.jpg")

            if (i + 1) % 2999 == 0:
                sub_fold_cnt += 1
            sub_fold = osp.join(save_dir, str(sub_fold_cnt - 1).zfill(5))
            if not os.path.exists(sub_fold):
                os.makedirs(sub_fold)

            img_path = osp.join(root, sub_fold, f"{image_id}.jpg")
            txt_path = osp.join(root, sub_fold, f"{image_id}.txt")
            jsn_path = osp.join(root, sub_fold, f"{image_id}.json")

            shutil.copy(src, img_path)

            with open(txt_path, "w", encoding="utf-8") as f:  # shadows `f`, as in the seed
                f.write(cap)

            with open(jsn_path, "w", encoding="utf-8") as f:
                json.dump(line, f)


def seed_tars(save_dir: Path) -> dict[str, list[tuple[str, bytes]]]:
    """What tarring each sub-folder with sorted members (`tar --sort=name`) gives nxtp.

    Tar name -> (member name, bytes) in name order, read from the folders, so the reference
    does not depend on any tar writer.
    """
    return {
        f"{folder.name}.tar": [(p.name, p.read_bytes()) for p in sorted(folder.iterdir())]
        for folder in sorted(save_dir.iterdir())
    }


def tar_members(path: Path) -> list[tuple[str, bytes]]:
    """(name, bytes) of every member, in archive order."""
    with tarfile.open(path) as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]


def narratives_by_line(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """The generated tarball, extracted with vlprep's extractor, and its narratives."""
    root = tmp_path_factory.mktemp("openimages_v7")
    tarball, ids = make_validation_tarball(root / "validation.tar.gz", N_IMAGES, seed=4)
    narratives = make_narratives(root / NARRATIVES_NAME, ids, seed=4)
    extract(tarball, root / "extracted", kind="tar.gz", entry="openimages_validation")
    (root / "validation").symlink_to(root / "extracted" / "validation")
    return {"root": root, "ids": ids, "narratives": narratives}


@pytest.fixture(scope="module")
def seed_output(world) -> dict[str, list[tuple[str, bytes]]]:
    seed_openimages_to_wds(world["root"])
    return seed_tars(world["root"] / "openimages_v7_valid")


@pytest.fixture(scope="module")
def built(world, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("g3m") / "openimages_v7" / "openimages_v7_valid"
    root = world["root"]
    return out, build_openimages_wds(root / NARRATIVES_NAME, root / "validation", out)


@pytest.fixture(scope="module")
def ours(built) -> dict[str, list[tuple[str, bytes]]]:
    """Tar name -> members of the built tars, read once."""
    out, _ = built
    return {p.name: tar_members(p) for p in sorted(out.iterdir())}


def build(world: dict, jsonl: Path, out: Path, **kwargs) -> dict:
    return build_openimages_wds(jsonl, world["root"] / "validation", out, **kwargs)


# ---- the seed's output --------------------------------------------------------------------


@pytest.mark.slow
def test_tars_hold_the_seed_scripts_members_byte_for_byte(built, ours, seed_output):
    _, report = built
    assert list(ours) == list(seed_output) == ["00000.tar", "00001.tar", "00002.tar"]
    for name, members in seed_output.items():
        assert ours[name] == members, name
    assert report["per_tar"] == [len(m) // 3 for m in seed_output.values()]


@pytest.mark.slow
def test_folders_and_duplicates_follow_the_seed(world, built, ours):
    """Line-based folders (2998, then 2999 lines); in-folder duplicates keep the later line."""
    out, report = built
    narratives = world["narratives"]
    assert report["lines"] == narratives.lines == 6103
    assert report["duplicates_in_folder"] == len(narratives.same_folder) == 3
    # 2998 + 2999 + 106 lines, minus one overwritten narrative in 00000 and two in 00001.
    assert report["per_tar"] == [2997, 2997, 106]
    narrated = N_IMAGES - len(narratives.unnarrated)
    assert report["samples"] == narrated + 3  # 3 images are in two tars: narrated in two folders
    assert report["tar_bytes"] == sum(p.stat().st_size for p in out.iterdir())

    lines = narratives_by_line(narratives.path)
    members = {name: dict(m) for name, m in ours.items()}
    for image_id in narratives.across_folders:  # incl. the last line of 00000 vs first of 00001
        assert sum(f"{image_id}.jpg" in m for m in members.values()) == 2
    for image_id in narratives.same_folder:
        where = [i for i, rec in enumerate(lines) if rec["image_id"] == image_id]
        last = lines[where[-1] if where[-1] < 5997 else where[-2]]
        shard = members["00000.tar" if where[0] < 2998 else "00001.tar"]
        assert shard[f"{image_id}.txt"] == last["caption"].encode("utf-8")
        assert json.loads(shard[f"{image_id}.json"])["annotator_id"] == last["annotator_id"]
    for image_id in narratives.unnarrated:
        assert not any(f"{image_id}.jpg" in m for m in members.values())


@pytest.mark.slow
def test_members_are_sorted_with_fixed_metadata(built):
    out, _ = built
    for shard in sorted(out.iterdir()):
        with tarfile.open(shard) as tar:
            infos = tar.getmembers()
        assert [i.name for i in infos] == sorted(i.name for i in infos)
        for info in infos:
            assert (info.mtime, info.uid, info.gid, info.mode) == (0, 0, 0, 0o644)
            assert (info.uname, info.gname) == ("", "")


@pytest.mark.slow
def test_webdataset_reads_complete_samples_in_sorted_order(world, built):
    out, report = built
    urls = [str(out / f"{i:05d}.tar") for i in range(report["tars"])]
    keys: dict[str, list[str]] = {url: [] for url in urls}
    for sample in webdataset.WebDataset(urls, shardshuffle=False):
        assert {"jpg", "txt", "json"} <= sample.keys()
        record = json.loads(sample["json"])
        assert record["image_id"] == sample["__key__"]
        assert record["caption"] == sample["txt"].decode("utf-8")
        image = world["root"] / "validation" / f"{sample['__key__']}.jpg"
        assert sample["jpg"] == image.read_bytes()
        assert Image.open(io.BytesIO(sample["jpg"])).format == "JPEG"
        keys[sample["__url__"]].append(sample["__key__"])
    assert [len(k) for k in keys.values()] == report["per_tar"]
    assert all(k == sorted(k) for k in keys.values())


@pytest.mark.slow
def test_a_second_build_is_byte_identical(world, built, tmp_path):
    out, report = built
    again = tmp_path / "openimages_v7_valid"
    build(world, world["root"] / NARRATIVES_NAME, again)
    for i in range(report["tars"]):
        assert (again / f"{i:05d}.tar").read_bytes() == (out / f"{i:05d}.tar").read_bytes()


# ---- missing images --------------------------------------------------------------------------


@pytest.fixture
def small(tmp_path) -> dict:
    """A 40-image world whose image folder the test may change."""
    tarball, ids = make_validation_tarball(tmp_path / "validation.tar.gz", 40, seed=9)
    narratives = make_narratives(tmp_path / NARRATIVES_NAME, ids, seed=9, unnarrated=2)
    extract(tarball, tmp_path / "extracted", kind="tar.gz", entry="openimages_validation")
    return {"root": tmp_path / "extracted", "ids": ids, "jsonl": narratives.path}


def listing(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def narrated_ids(jsonl: Path) -> list[str]:
    return [rec["image_id"] for rec in narratives_by_line(jsonl)]


def test_missing_images_are_counted_named_and_nothing_is_written(small, tmp_path):
    narrated = narrated_ids(small["jsonl"])
    gone = set(narrated[8:16])  # line 11 narrates an image that line 26 narrates again
    for image_id in gone:
        (small["root"] / "validation" / f"{image_id}.jpg").unlink()
    out = tmp_path / "g3m" / "openimages_v7_valid"
    with pytest.raises(ConversionError) as caught:
        build(small, small["jsonl"], out)
    message = str(caught.value)
    missing_lines = [n for n, image_id in enumerate(narrated, 1) if image_id in gone]
    assert len(missing_lines) == 9
    assert message.startswith(f"9 narrative(s) of {small['jsonl']} name images missing from")
    for n in missing_lines[:5]:
        assert f"{narrated[n - 1]}.jpg (line {n})" in message
    assert "and 4 more" in message and "extract validation.tar.gz again" in message
    assert "allow_missing" in message
    assert listing(tmp_path / "g3m") == []


def test_allow_missing_skips_those_narratives_only(small, tmp_path):
    full = build(small, small["jsonl"], tmp_path / "full")
    gone = narrated_ids(small["jsonl"])[3]
    (small["root"] / "validation" / f"{gone}.jpg").unlink()
    report = build(small, small["jsonl"], tmp_path / "partial", allow_missing=True)
    assert report["images_missing"] == 1 and report["missing_examples"] == [f"{gone}.jpg (line 4)"]
    assert report["samples"] == full["samples"] - 1
    expected = [m for m in tar_members(tmp_path / "full" / "00000.tar") if gone not in m[0]]
    assert tar_members(tmp_path / "partial" / "00000.tar") == expected


def test_image_dir_must_be_the_extracted_validation_folder(small, tmp_path):
    with pytest.raises(ConversionError, match=r"holds a validation/ folder; pass .*validation"):
        build_openimages_wds(small["jsonl"], small["root"], tmp_path / "out")
    with pytest.raises(ConversionError, match="extract validation.tar.gz"):
        build_openimages_wds(small["jsonl"], tmp_path / "nowhere", tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---- malformed narratives ------------------------------------------------------------------


def rewrite_line(src: Path, dest: Path, number: int, new: str) -> Path:
    """Copy the JSONL with line `number` (1-based) replaced by `new`."""
    with open(src, encoding="utf-8") as f, open(dest, "w", encoding="utf-8") as out:
        for n, line in enumerate(f, 1):
            out.write(new + "\n" if n == number else line)
    return dest


@pytest.mark.parametrize(
    ("new", "expected"),
    [
        ('{"dataset_id":"open_images","image_id":"0a1b2c3d4e5f6a7b","capt', "not valid JSON"),
        ('["a list"]', "not a Localized Narrative"),
        ('{"image_id":"0a1b2c3d4e5f6a7b","annotator_id":3}', "not a Localized Narrative"),
        ('{"image_id":"../../etc/passwd","caption":"x"}', "is not an Open Images ImageID"),
        ('{"image_id":"0a1b2c3d4e5f6a7b","caption":null}', "not text"),
        ('{"image_id":"0a1b2c3d4e5f6a7b","caption":"\\ud800"}', "not valid text"),
        ("", "not valid JSON"),
    ],
)
def test_malformed_line_is_named_by_number(small, tmp_path, new, expected):
    jsonl = rewrite_line(small["jsonl"], tmp_path / "bad.jsonl", 17, new)
    out = tmp_path / "g3m" / "openimages_v7_valid"
    with pytest.raises(ConversionError, match=rf"bad\.jsonl, line 17.*{expected}"):
        build(small, jsonl, out)
    assert listing(tmp_path / "g3m") == []


def test_error_message_shows_an_excerpt(small, tmp_path):
    jsonl = rewrite_line(small["jsonl"], tmp_path / "bad.jsonl", 3, '{"image_id": "abc", oops')
    with pytest.raises(ConversionError, match=r"'\{\"image_id\": \"abc\", oops'; .*download"):
        build(small, jsonl, tmp_path / "out")


@pytest.mark.slow
def test_failure_after_tars_were_written_leaves_nothing(world, tmp_path):
    """Line 4000 is in the second folder: 00000.tar exists (staged) when the error comes."""
    jsonl = rewrite_line(world["narratives"].path, tmp_path / "bad.jsonl", 4000, "{")
    out = tmp_path / "g3m" / "openimages_v7_valid"
    with pytest.raises(ConversionError, match="line 4000"):
        build(world, jsonl, out)
    assert listing(tmp_path / "g3m") == []


# ---- a killed run ----------------------------------------------------------------------------


@pytest.mark.slow
def test_killed_run_leaves_no_output_and_the_rerun_succeeds(world, tmp_path):
    """Feed a real build through a pipe, SIGKILL it once its first tar exists, build again."""
    fifo = tmp_path / NARRATIVES_NAME
    os.mkfifo(fifo)
    out = tmp_path / "g3m" / "openimages_v7_valid"
    code = (
        "import sys; from vlprep.openimages import build_openimages_wds; "
        "build_openimages_wds(*sys.argv[1:])"
    )
    env = {**os.environ, "PYTHONPATH": str(SCRIPTS), "VLPREP_PROGRESS": "0"}
    images = world["root"] / "validation"
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(fifo), str(images), str(out)], env=env
    )
    killed = threading.Event()

    def feed() -> None:
        """All of folder 00000 and part of 00001; the pipe stays open (no EOF) until the kill."""
        try:
            with open(fifo, "w", encoding="utf-8") as pipe, open(world["narratives"].path) as src:
                for _ in range(3500):
                    pipe.write(src.readline())
                pipe.flush()
                killed.wait(60)
        except BrokenPipeError:
            pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    first_tar = out.parent / f".{out.name}.vlprep-tmp-{child.pid}" / "00000.tar"
    deadline = time.monotonic() + 60
    while not first_tar.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL, "the build ended before the kill"
    killed.set()
    feeder.join(timeout=10)
    assert first_tar.exists(), "the build never wrote its first tar"
    assert not out.exists()

    fifo.unlink()
    shutil.copy(world["narratives"].path, fifo)
    report = build(world, fifo, out)
    assert report["per_tar"] == [2997, 2997, 106]
    assert listing(out.parent) == ["openimages_v7_valid"]


# ---- the stand-in generators -----------------------------------------------------------------

FIELDS = ["dataset_id", "image_id", "annotator_id", "caption", "timed_caption", "traces"]
FIELDS += ["voice_recording"]


def test_standin_files_are_deterministic_and_shaped_like_the_real_ones(tmp_path):
    made = [make_validation_tarball(tmp_path / d / "validation.tar.gz", 30, 2) for d in "ab"]
    (tarball, ids), (again, _) = made
    assert tarball.read_bytes() == again.read_bytes()
    assert all(re.fullmatch("[0-9a-f]{16}", i) for i in ids) and ids == sorted(set(ids))
    with tarfile.open(tarball) as tar:
        infos = tar.getmembers()
    assert infos[0].name == "validation" and infos[0].isdir()
    names = [i.name for i in infos[1:]]
    assert sorted(names) == [f"validation/{i}.jpg" for i in ids] and names != sorted(names)

    narratives = make_narratives(tmp_path / NARRATIVES_NAME, ids, seed=2, unnarrated=4)
    records = narratives_by_line(narratives.path)
    assert len(records) == narratives.lines == 26 + 1  # lines 10 and 25 narrate one image
    assert {r["image_id"] for r in records} == set(ids) - set(narratives.unnarrated)
    for r in records:
        assert list(r) == FIELDS
        assert r["voice_recording"].endswith(f"_{r['image_id']}_{r['annotator_id']}.ogg")
        assert all(set(p) == {"x", "y", "t"} for segment in r["traces"] for p in segment)
        assert " ".join(u["utterance"] for u in r["timed_caption"]) == " ".join(
            r["caption"].split()
        )
