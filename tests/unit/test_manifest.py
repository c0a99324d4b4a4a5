"""Manifests (vlprep.manifest) and the offline verify and compare (vlprep.verify), on a small
tree shaped like a layout over its store: a symlinked image folder, per-file links, a hard
link, a webdataset tar and annotation files."""

import gzip
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest

from vlprep.manifest import (
    ManifestError,
    json_records,
    manifest_paths,
    read_header,
    read_lines,
    tar_samples,
    write_manifest,
)
from vlprep.verify import compare, main, verify

PATHS = ["{lavis}/coco/images/val2014", "{lavis}/coco/annotations", "{g3m}/cc3m/cc3m"]


def write_tar(path: Path, samples: dict[str, dict[str, bytes]]) -> None:
    with tarfile.open(path, "w") as tar:
        for key, members in samples.items():
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size, info.mtime = len(data), 0
                tar.addfile(info, io.BytesIO(data))


def roots_of(data: Path) -> dict[str, str]:
    names = ("lavis", "g3m", "downloads", "extracted", "reports")
    return {"data_root": str(data), **{name: str(data / name) for name in names}}


def build_tree(data: Path) -> None:
    """A store (extracted/, downloads/) and two layouts showing it, as vlprep links them."""
    images = data / "extracted" / "coco2014_val" / "val2014"
    images.mkdir(parents=True)
    for i in range(6):
        (images / f"COCO_val2014_{i:012d}.jpg").write_bytes(bytes([i]) * (100 + i))
    lavis = data / "lavis" / "coco"
    (lavis / "images").mkdir(parents=True)
    os.symlink("../../../extracted/coco2014_val/val2014", lavis / "images" / "val2014")
    annotations = lavis / "annotations"
    annotations.mkdir()
    stored = data / "downloads" / "karpathy" / "coco_karpathy_val.json"
    stored.parent.mkdir(parents=True)
    stored.write_text(json.dumps([{"image": f"val2014/{i}.jpg", "caption": "a"} for i in range(6)]))
    os.link(stored, annotations / "coco_karpathy_val.json")  # hardlink mode
    (annotations / "vqa_val.json").write_text(json.dumps({"questions": [1, 2, 3], "info": {}}))
    os.symlink(
        "../../../downloads/karpathy/coco_karpathy_val.json", annotations / "again.json"
    )  # the same inode a third time
    shards = data / "g3m" / "cc3m" / "cc3m"
    shards.mkdir(parents=True)
    write_tar(shards / "0000.tar", {f"{i:04d}": {"jpg": b"x" * i, "txt": b"c"} for i in range(5)})


@pytest.fixture
def built(tmp_path) -> tuple[Path, Path]:
    data = tmp_path / "a" / "data"
    build_tree(data)
    write_manifest("demo", PATHS, roots_of(data), data / "manifests")
    return data, manifest_paths(data / "manifests", "demo")[0]


def drifts_of(header: Path, **kwargs) -> list[tuple[str, str]]:
    _, drifts = verify(header, **kwargs)
    return sorted((d.kind, d.path) for d in drifts)


def test_manifest_lists_every_path_in_walk_order_with_counts(built):
    data, header_path = built
    header = read_header(header_path)
    lines = list(read_lines(header_path))
    paths = [line["path"] for line in lines]
    assert paths == sorted(paths, key=lambda p: p.split("/"))
    by_path = {line["path"]: line for line in lines}
    link = by_path["{lavis}/coco/images/val2014"]
    assert link == {
        "path": "{lavis}/coco/images/val2014",
        "type": "link",
        "target": "../../../extracted/coco2014_val/val2014",
    }
    image = by_path["{lavis}/coco/images/val2014/COCO_val2014_000000000003.jpg"]
    assert image["size"] == 103 and image["type"] == "file"
    assert by_path["{g3m}/cc3m/cc3m/0000.tar"]["samples"] == 5
    assert by_path["{lavis}/coco/annotations/coco_karpathy_val.json"]["records"] == 6
    assert by_path["{lavis}/coco/annotations/vqa_val.json"]["records"] == {"questions": 3}
    again = by_path["{lavis}/coco/annotations/again.json"]
    assert again["sha256"] == by_path["{lavis}/coco/annotations/coco_karpathy_val.json"]["sha256"]
    assert header["totals"]["samples"] == 5 and header["totals"]["links"] == 2
    assert set(header["roots"]) == {"data_root", "lavis", "g3m"}


def test_untouched_tree_verifies_quick_and_full(built):
    _, header = built
    assert drifts_of(header) == []
    assert drifts_of(header, full=True) == []


def test_each_drift_is_named_once(built):
    data, header = built
    image = data / "extracted/coco2014_val/val2014/COCO_val2014_000000000002.jpg"
    flipped = bytearray(image.read_bytes())
    flipped[10] ^= 0xFF
    image.write_bytes(bytes(flipped))  # same size: only the full mode sees it
    (data / "extracted/coco2014_val/val2014/COCO_val2014_000000000004.jpg").unlink()
    (data / "g3m/cc3m/cc3m/0001.tar").write_bytes(b"new")
    link = data / "lavis/coco/annotations/again.json"
    link.unlink()
    os.symlink("../../../downloads/karpathy/gone.json", link)
    assert drifts_of(header) == [
        ("broken", "{lavis}/coco/annotations/again.json"),
        ("extra", "{g3m}/cc3m/cc3m/0001.tar"),
        ("missing", "{lavis}/coco/images/val2014/COCO_val2014_000000000004.jpg"),
    ]
    assert drifts_of(header, full=True) == [
        ("broken", "{lavis}/coco/annotations/again.json"),
        ("changed", "{lavis}/coco/images/val2014/COCO_val2014_000000000002.jpg"),
        ("extra", "{g3m}/cc3m/cc3m/0001.tar"),
        ("missing", "{lavis}/coco/images/val2014/COCO_val2014_000000000004.jpg"),
    ]


def test_size_change_and_link_retarget_show_in_quick_mode(built):
    data, header = built
    with open(data / "g3m/cc3m/cc3m/0000.tar", "ab") as f:
        f.write(b"\0" * 512)
    link = data / "lavis/coco/images/val2014"
    link.unlink()
    os.symlink("../../../extracted/coco2014_val/../coco2014_val/val2014", link)
    found = drifts_of(header)
    assert found == [
        ("changed", "{g3m}/cc3m/cc3m/0000.tar"),
        ("changed", "{lavis}/coco/images/val2014"),
    ]


def test_a_folder_gone_is_one_line_with_its_count(built, capsys):
    data, header = built
    shutil.rmtree(data / "extracted/coco2014_val")
    status = main(["--manifests", str(header)])
    out = capsys.readouterr().out
    assert status == 1
    assert "broken   {lavis}/coco/images/val2014 (-> ../../../extracted" in out
    assert "and the 6 entries under it" in out
    assert "1 drift(s)" in out


def test_a_store_file_shown_by_two_products_is_one_drift(built):
    data, _ = built
    write_manifest("other", ["{lavis}/coco/images/val2014"], roots_of(data), data / "manifests")
    image = data / "extracted/coco2014_val/val2014/COCO_val2014_000000000001.jpg"
    image.write_bytes(b"?" * image.stat().st_size)
    products, drifts = verify(data / "manifests", full=True)
    assert products == ["demo", "other"]
    assert [(d.kind, d.where, d.products) for d in drifts] == [
        ("changed", str(image.resolve()), ["demo", "other"])
    ]


def test_a_moved_tree_verifies_at_its_new_data_root(built, tmp_path):
    data, _ = built
    moved = tmp_path / "elsewhere" / "data"
    shutil.copytree(data, moved, symlinks=True)
    shutil.rmtree(data)
    assert main(["--data-root", str(moved), "--full"]) == 0
    # at the recorded roots, now gone, everything is missing
    assert main(["--manifests", str(moved / "manifests")]) == 1


def test_compare_two_builds(built, tmp_path, capsys):
    data, header = built
    other = tmp_path / "b" / "data"
    build_tree(other)
    write_manifest("demo", PATHS, roots_of(other), other / "manifests")
    assert compare(data / "manifests", other / "manifests") == []
    assert main(["--compare", str(header), str(other / "manifests/demo.json")]) == 0
    assert "equal" in capsys.readouterr().out
    sample = other / "extracted/coco2014_val/val2014/COCO_val2014_000000000005.jpg"
    sample.write_bytes(b"changed" + sample.read_bytes()[7:])
    # again from what the header recorded (the roots its paths use), as a user would
    header = read_header(other / "manifests/demo.json")
    write_manifest("demo", header["paths"], header["roots"], other / "manifests")
    assert compare(data / "manifests", other / "manifests") == [
        "demo: differs    {lavis}/coco/images/val2014/COCO_val2014_000000000005.jpg (sha256)"
    ]


def test_manifest_of_a_tree_with_a_broken_link_is_refused(tmp_path):
    data = tmp_path / "data"
    build_tree(data)
    os.symlink("nowhere", data / "lavis/coco/annotations/dangling.json")
    with pytest.raises(ManifestError, match="dangling.json: a broken link"):
        write_manifest("demo", PATHS, roots_of(data), data / "manifests")
    assert not (data / "manifests" / "demo.json").exists()


def test_manifest_is_reproducible_byte_for_byte(built, tmp_path):
    data, header = built
    first = manifest_paths(data / "manifests", "demo")[1].read_bytes()
    write_manifest("demo", PATHS, roots_of(data), data / "manifests", workers=1)
    assert manifest_paths(data / "manifests", "demo")[1].read_bytes() == first
    assert gzip.decompress(first).count(b"\n") == len(list(read_lines(header)))


def test_unreadable_manifest_names_the_file(tmp_path):
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ManifestError, match="x.json: not a vlprep manifest"):
        read_header(tmp_path / "x.json")
    assert main(["--manifests", str(tmp_path / "nothing")]) == 2


def test_record_counts(tmp_path):
    listing = tmp_path / "l.json"
    listing.write_text('[{"a": [1, 2]}, 3, "x", null, [4]]')
    assert json_records(listing) == 5
    obj = tmp_path / "o.json"
    obj.write_text('{"images": [{"id": 1}, {"id": 2}], "annotations": [], "info": {"x": [1]}}')
    assert json_records(obj) == {"images": 2, "annotations": 0}
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert json_records(bad) is None
    shard = tmp_path / "s.tar"
    write_tar(shard, {"a/0001": {"jpg": b"1", "json": b"{}"}, "a/0002": {"jpg": b"2"}})
    assert tar_samples(shard) == 2


def test_run_records_and_shard_tables_get_a_content_digest_without_the_clock(tmp_path):
    """A report and img2dataset's shard stats and parquet: their `content` ignores timings
    and row order, so two builds of the same data compare equal."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    lines = []
    for run, (duration, rows) in enumerate([(1.5, [1, 2, 3]), (9.25, [3, 1, 2])]):
        data = tmp_path / f"run{run}" / "data"
        shards = data / "minigpt4" / "laion"
        shards.mkdir(parents=True)
        stats = {"succeeded": 3, "duration": duration, "start_time": 100 + run}
        (shards / "00000_stats.json").write_text(json.dumps(stats))
        pq.write_table(pa.table({"key": rows}), shards / "00000.parquet")
        (data / "reports").mkdir()
        (data / "reports" / "laion.json").write_text(json.dumps({"kept": 3, "seconds": run}))
        paths = ["{minigpt4}/laion", "{reports}/laion.json"]
        roots = {**roots_of(data), "minigpt4": str(data / "minigpt4")}
        write_manifest("laion", paths, roots, data / "manifests")
        lines.append({line["path"]: line for line in read_lines(data / "manifests" / "laion.json")})
    for path in ("{minigpt4}/laion/00000_stats.json", "{minigpt4}/laion/00000.parquet",
                 "{reports}/laion.json"):  # fmt: skip
        assert lines[0][path]["content"] == lines[1][path]["content"], path
        assert lines[0][path]["sha256"] != lines[1][path]["sha256"], path
    assert lines[0]["{minigpt4}/laion/00000.parquet"]["records"] == 3
    assert compare(tmp_path / "run0/data/manifests", tmp_path / "run1/data/manifests") == []
