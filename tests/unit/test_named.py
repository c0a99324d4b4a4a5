"""By-name URL lists (vlprep.named): SBU / NoCaps annotations -> URL list -> img2dataset
"files" -> a flat folder of images by name, and sorted webdataset tars.

The slow tests run the real img2dataset (vlprep.i2d.run_part) against the stand-in image host,
some of whose URLs fail (404, truncated, corrupt), redirect or trickle.
"""

import hashlib
import io
import json
import os
import posixpath
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from PIL import Image

from standin.imagehost import FAILING, ImageHost
from standin.named import NOCAPS_FILES, make_nocaps_jsons, make_sbu_json
from vlprep import i2d, named
from vlprep.errors import ConversionError, VlprepError

MIX = {"ok": 0.55, "404": 0.1, "truncated": 0.1, "corrupt": 0.1, "redirect": 0.1, "slow": 0.05}
SBU_ROWS, PER_SHARD, PER_PART = 60, 20, 60  # one part each: img2dataset starts slowly
SBU_ARGS = {
    "input_format": "parquet",
    "url_col": "url",
    "caption_col": "caption",
    "output_format": "files",
    "save_additional_columns": ["name"],
    "resize_mode": "no",
    "skip_reencode": True,
    "encode_format": "jpg",
    "number_sample_per_shard": PER_SHARD,
    "timeout": 2,
    "retries": 0,
}
NOCAPS_ARGS = {**SBU_ARGS, "caption_col": None}


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    monkeypatch.setenv("VLPREP_PROGRESS", "0")
    monkeypatch.setenv("NO_ALBUMENTATIONS_UPDATE", "1")
    monkeypatch.setenv("WANDB_MODE", "disabled")
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


# ------------------------------------------------------------ fast: annotations -> list


def test_sbu_json_to_url_list_keeps_fields_and_order(tmp_path):
    src = make_sbu_json(tmp_path / "sbu.json", 9000, "http://images.example/", duplicate_every=7)
    records = json.loads(src.read_text())
    records[3]["image"] = "/export/share/sbu/images/" + records[3]["image"]  # absolute path
    src.write_text(json.dumps(records))
    dest = tmp_path / "urls.parquet"
    assert named.annotations_to_url_list(src, dest, kind="sbu") == 9000  # > one batch
    table = pq.read_table(dest)
    assert table.column_names == ["url", "caption", "name"]
    assert table.column("url").to_pylist() == [r["url"] for r in records]
    assert table.column("caption").to_pylist() == [r["caption"] for r in records]
    assert table.column("name").to_pylist() == [posixpath.basename(r["image"]) for r in records]
    assert records[1]["url"].startswith("http://images.example/sbu/")
    assert records[6]["image"] == records[5]["image"] != records[4]["image"]
    again = tmp_path / "again.parquet"
    named.annotations_to_url_list(src, again, kind="sbu")
    assert again.read_bytes() == dest.read_bytes()
    assert i2d.count_rows(dest, "parquet") == 9000


def test_nocaps_jsons_to_url_lists(tmp_path):
    files = make_nocaps_jsons(tmp_path, n_val=12, n_test=5, url_host="http://images.example")
    assert sorted(files) == sorted(NOCAPS_FILES.values())
    val = json.loads(files["nocaps_val_4500_captions.json"].read_text())
    test = json.loads(files["nocaps_test_image_info.json"].read_text())
    assert set(val) == {"licenses", "info", "images", "annotations"} and "annotations" not in test
    assert len(val["annotations"]) == 120 and {a["image_id"] for a in val["annotations"]} == set(
        range(12)
    )
    image = val["images"][0]
    assert image["file_name"] == image["open_images_id"] + ".jpg"
    assert image["coco_url"] == f"http://images.example/nocaps/val/{image['file_name']}"
    assert test["images"][0]["coco_url"].startswith("http://images.example/nocaps/test/")
    for name, data in ((NOCAPS_FILES["val"], val), (NOCAPS_FILES["test"], test)):
        dest = tmp_path / f"{name}.parquet"
        assert named.annotations_to_url_list(files[name], dest, kind="nocaps") == len(
            data["images"]
        )
        table = pq.read_table(dest)
        assert table.column_names == ["url", "name"]
        assert table.column("url").to_pylist() == [im["coco_url"] for im in data["images"]]
        assert table.column("name").to_pylist() == [im["file_name"] for im in data["images"]]


SBU_OK = {"image": "1_a.jpg", "caption": "c", "url": "http://x/1_a.jpg"}


@pytest.mark.parametrize(
    ("kind", "content", "expected"),
    [
        ("sbu", [SBU_OK, 5], r"record 1: expected an object, got int"),
        ("sbu", [SBU_OK, SBU_OK, {"image": "2.jpg", "caption": "c"}], r"record 2: field 'url'"),
        ("sbu", [{**SBU_OK, "caption": None}], r"record 0: field 'caption' must be a string"),
        ("sbu", [{**SBU_OK, "image": "dir/"}], r"record 0 \(image 'dir/'\): '' is not a plain"),
        ("sbu", [{**SBU_OK, "url": ""}], r"record 0: field 'url' must be a non-empty"),
        ("sbu", [], r"no records found; expected a JSON list"),
        ("sbu", {"images": [SBU_OK]}, r"no records found"),
        ("nocaps", {"images": [{"file_name": "../a.jpg", "coco_url": "http://x/a.jpg"}]},
         r"record 0: '\.\./a\.jpg' is not a plain file name"),
        ("nocaps", {"images": [{"file_name": "a.jpg", "coco_url": "http://x/a.jpg"},
                               {"file_name": "b.jpg", "open_images_url": "http://x/b"}]},
         r"record 1: field 'coco_url'"),
        ("nocaps", [{"image": "val/a.jpg"}], r"no records found; expected a JSON object"),
    ],
)  # fmt: skip
def test_malformed_annotations_are_named(tmp_path, kind, content, expected):
    src = tmp_path / "ann.json"
    src.write_text(json.dumps(content))
    dest = tmp_path / "out" / "urls.parquet"
    with pytest.raises(ConversionError, match=expected) as err:
        named.annotations_to_url_list(src, dest, kind=kind)
    assert str(src) in str(err.value)
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_broken_json_names_the_record(tmp_path):
    src = make_sbu_json(tmp_path / "sbu.json", 10, "http://x/")
    raw = src.read_bytes()
    src.write_bytes(raw[: len(raw) * 2 // 3])  # cut inside a record
    with pytest.raises(ConversionError, match=r"sbu\.json: record \d+ .*broken JSON"):
        named.annotations_to_url_list(src, tmp_path / "urls.parquet", kind="sbu")
    with pytest.raises(ConversionError, match="kind must be one of"):
        named.annotations_to_url_list(src, tmp_path / "urls.parquet", kind="coco")


# ----------------------------------------------- fast: placing from a fake "files" output


def _fake_output(root: Path, shard_id: int, rows: list[tuple[str, str, str | None]], columns=None):
    """An img2dataset "files" output folder with one shard: rows of (key, status, name)."""
    shard = f"{shard_id:05d}"
    (root / shard).mkdir(parents=True, exist_ok=True)
    data = {"key": [r[0] for r in rows], "status": [r[1] for r in rows],
            "name": [r[2] for r in rows]}  # fmt: skip
    for col in columns or []:
        data.pop(col)
    pq.write_table(pa.table(data), root / f"{shard}.parquet")
    (root / f"{shard}_stats.json").write_text(json.dumps({"count": len(rows)}))
    for key, status, name in rows:
        if status == "success":
            (root / shard / f"{key}.jpg").write_bytes(f"image {key} {name}".encode())
            (root / shard / f"{key}.json").write_text(json.dumps({"key": key, "name": name}))
    return root


@pytest.mark.parametrize("mode", ["symlink", "hardlink", "copy"])
def test_place_by_name_modes_and_duplicates(tmp_path, mode):
    a = _fake_output(tmp_path / "a", 0, [("0000000", "success", "x.jpg"),
                                         ("0000001", "failed_to_download", "y.jpg"),
                                         ("0000002", "success", "z.jpg")])  # fmt: skip
    b = _fake_output(tmp_path / "b", 1, [("0000100", "success", "y.jpg"),
                                         ("0000101", "success", "x.jpg")])  # fmt: skip
    (a / "00007_stats.json").write_text("{}")  # a placeholder without a shard folder
    dest = tmp_path / "layout" / "images"
    report = named.place_by_name([b, a], dest, link_mode=mode)  # order of folders: irrelevant
    assert report | {"duplicate_examples": None} == {
        "shards": 2, "succeeded": 4, "placed": 3, "duplicates": 1, "undecodable": 0,
        "duplicate_examples": None, "undecodable_examples": [],
    }  # fmt: skip
    assert report["duplicate_examples"] == ["x.jpg"]
    assert sorted(os.listdir(dest)) == ["x.jpg", "y.jpg", "z.jpg"]
    assert (dest / "x.jpg").read_bytes() == b"image 0000000 x.jpg"  # the first one wins
    assert (dest / "y.jpg").read_bytes() == b"image 0000100 y.jpg"
    assert (dest / "x.jpg").is_symlink() == (mode == "symlink")
    if mode == "symlink":
        assert not os.readlink(dest / "x.jpg").startswith("/")
    assert [p.name for p in dest.parent.iterdir()] == ["images"]  # nothing staged left


def test_place_by_name_refuses_bad_inputs(tmp_path):
    no_col = _fake_output(tmp_path / "nocol", 0, [("0000000", "success", "a.jpg")], ["name"])
    with pytest.raises(ConversionError, match=r'save_additional_columns=\["name"\]'):
        named.place_by_name([no_col], tmp_path / "d1")
    evil = _fake_output(tmp_path / "evil", 0, [("0000000", "success", "../../etc/x")])
    with pytest.raises(ConversionError, match="is not a plain file name"):
        named.place_by_name([evil], tmp_path / "d2")
    lost = _fake_output(tmp_path / "lost", 0, [("0000000", "success", "a.jpg")])
    (lost / "00000" / "0000000.jpg").unlink()
    with pytest.raises(VlprepError, match="succeeded but its image is missing"):
        named.place_by_name([lost], tmp_path / "d3")
    again = _fake_output(tmp_path / "again", 0, [("0000000", "success", "b.jpg")])
    with pytest.raises(VlprepError, match="shard 00000 is in both"):
        named.place_by_name([evil, again], tmp_path / "d4")
    failed = _fake_output(tmp_path / "failed", 0, [("0000000", "failed_to_download", "a.jpg")])
    with pytest.raises(VlprepError, match="no image to place"):
        named.place_by_name([failed], tmp_path / "d5")
    with pytest.raises(VlprepError, match="link_mode"):
        named.place_by_name([failed], tmp_path / "d6", link_mode="move")
    assert not any((tmp_path / f"d{i}").exists() for i in range(1, 7))


# ------------------------------------------------ slow: the real img2dataset, by name


def _rel(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _part_jobs(tmp: Path, url_list: Path, rows: int, args: dict, name: str) -> list[tuple]:
    """The run_part calls over `url_list` in parts of PER_PART rows: (list, out, offset, args)."""
    jobs = []
    for k in range(-(-rows // PER_PART)):
        start, stop, offset = i2d.part_bounds(k, PER_PART, PER_SHARD)
        part_list = tmp / "lists" / name / f"{k:05d}.parquet"
        i2d.slice_rows(url_list, "parquet", start, stop, part_list)
        jobs.append((part_list, tmp / "i2d" / name / f"{k:05d}", offset, args, tmp / "logs"))
    return jobs


def _run(job: tuple) -> Path:
    part_list, out, offset, args, logs = job
    i2d.run_part(part_list, out, shard_offset=offset, i2d_args=args, processes=1, threads=16,
                 log_file=logs / f"{out.parent.name}-{out.name}.log")  # fmt: skip
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("named")
    host = ImageHost(seed=11, mix=MIX).start()
    try:
        sbu_json = make_sbu_json(tmp / "sbu.json", SBU_ROWS, host.url, duplicate_every=10)
        sbu_list = tmp / "sbu.parquet"
        named.annotations_to_url_list(sbu_json, sbu_list, kind="sbu")
        nocaps = make_nocaps_jsons(tmp / "nocaps", n_val=30, n_test=20, url_host=host.url)
        val_list, test_list = tmp / "nocaps_val.parquet", tmp / "nocaps_test.parquet"
        named.annotations_to_url_list(nocaps[NOCAPS_FILES["val"]], val_list, kind="nocaps")
        named.annotations_to_url_list(nocaps[NOCAPS_FILES["test"]], test_list, kind="nocaps")
        # the NoCaps test download uses disable_all_reencoding: nothing decoded, junk "succeeds"
        raw_args = {k: v for k, v in NOCAPS_ARGS.items() if k != "skip_reencode"}
        jobs = {
            "sbu_parts": _part_jobs(tmp, sbu_list, SBU_ROWS, SBU_ARGS, "sbu"),
            "val_parts": _part_jobs(tmp, val_list, 30, NOCAPS_ARGS, "val"),
            "test_parts": _part_jobs(tmp, test_list, 20,
                                     raw_args | {"disable_all_reencoding": True}, "test"),
        }  # fmt: skip
        with ThreadPoolExecutor(3) as pool:  # img2dataset runs in child processes
            futures = {name: [pool.submit(_run, job) for job in js] for name, js in jobs.items()}
            parts = {name: [f.result() for f in fs] for name, fs in futures.items()}
        yield {
            "host": host,
            "tmp": tmp,
            "sbu": json.loads(sbu_json.read_text()),
            "val": json.loads(nocaps[NOCAPS_FILES["val"]].read_text())["images"],
            "test": json.loads(nocaps[NOCAPS_FILES["test"]].read_text())["images"],
            **parts,
        }
    finally:
        host.stop()


def _ok(host: ImageHost, url: str) -> bool:
    return host.behaviour(url) not in FAILING


@pytest.mark.slow
def test_sbu_flat_folder_by_name(world):
    host, records = world["host"], world["sbu"]
    expected: dict[str, str] = {}
    duplicates = 0
    for r in records:
        if _ok(host, r["url"]):
            if r["image"] in expected:
                duplicates += 1
            expected.setdefault(r["image"], r["url"])
    assert 0 < len(expected) < SBU_ROWS and duplicates > 0  # the mix bites, names collide
    dest = world["tmp"] / "cache_root" / "sbu_captions" / "images"
    report = named.place_by_name(world["sbu_parts"], dest)
    assert report["placed"] == len(expected) and report["duplicates"] == duplicates
    assert report["succeeded"] == len(expected) + duplicates and report["shards"] == 3
    assert sorted(os.listdir(dest)) == sorted(expected)
    for name, url in expected.items():
        # skip_reencode keeps the original JPEG bytes of the first successful URL of the name
        assert (dest / name).read_bytes() == host.state.image(_rel(url)), name
        assert (dest / name).is_symlink()


@pytest.mark.slow
def test_sbu_webdataset_for_nxtp(world):
    host, records = world["host"], world["sbu"]
    ok_rows = [i for i, r in enumerate(records) if _ok(host, r["url"])]
    out, again = world["tmp"] / "g3m" / "sbu" / "sbu", world["tmp"] / "again"
    report = named.pack_webdataset(world["sbu_parts"], out, samples_per_tar=7)
    assert report["samples"] == len(ok_rows) and report["tars"] == -(-len(ok_rows) // 7)
    tars = sorted(out.iterdir())
    assert [t.name for t in tars] == [f"{k:05d}.tar" for k in range(report["tars"])]
    seen = []
    for tar in tars:
        with tarfile.open(tar) as tf:
            names = tf.getnames()
            assert names == sorted(names) and all(m.mtime == 0 for m in tf.getmembers())
        for sample in wds.WebDataset(str(tar), shardshuffle=False):
            meta = json.loads(sample["json"])
            assert sample["txt"].decode() == meta["caption"] and meta["status"] == "success"
            Image.open(io.BytesIO(sample["jpg"])).load()
            seen.append((sample["__key__"], sample["txt"].decode(), meta["url"], meta["name"]))
    # every successful row, in list order (the key is shard id * 100 + row in shard)
    assert [s[2] for s in seen] == [records[i]["url"] for i in ok_rows]
    assert [s[1] for s in seen] == [records[i]["caption"] for i in ok_rows]
    assert [s[0] for s in seen] == [f"{i // PER_SHARD:05d}{i % PER_SHARD:02d}" for i in ok_rows]
    named.pack_webdataset(world["sbu_parts"], again, samples_per_tar=7)
    assert [hashlib.sha256(t.read_bytes()).digest() for t in tars] == [
        hashlib.sha256(t.read_bytes()).digest() for t in sorted(again.iterdir())
    ]
    lean = named.pack_webdataset(world["sbu_parts"], world["tmp"] / "lean", samples_per_tar=100,
                                 include_json=False)  # fmt: skip
    with tarfile.open(world["tmp"] / "lean" / "00000.tar") as tf:
        assert {n.rsplit(".", 1)[1] for n in tf.getnames()} == {"jpg", "txt"}
    assert lean["tars"] == 1


@pytest.mark.slow
def test_nocaps_images_by_file_name_keep_original_bytes(world):
    host, images = world["host"], world["val"]
    expected = {im["file_name"]: im["coco_url"] for im in images if _ok(host, im["coco_url"])}
    dest = world["tmp"] / "cache_root" / "nocaps" / "images" / "val"
    report = named.place_by_name(world["val_parts"], dest, link_mode="hardlink")
    assert report["placed"] == len(expected) and report["duplicates"] == 0
    assert sorted(os.listdir(dest)) == sorted(expected)
    for name, url in expected.items():
        assert (dest / name).read_bytes() == host.state.image(_rel(url))


@pytest.mark.slow
def test_disable_all_reencoding_lets_junk_through_unless_checked(world):
    host, images = world["host"], world["test"]
    kinds = {im["file_name"]: host.behaviour(im["coco_url"]) for im in images}
    corrupt = {n for n, k in kinds.items() if k == "corrupt"}
    good = {n for n, k in kinds.items() if k not in FAILING}
    assert corrupt and good
    unchecked = named.place_by_name(world["test_parts"], world["tmp"] / "unchecked")
    assert set(os.listdir(world["tmp"] / "unchecked")) == good | corrupt  # junk "succeeded"
    dest = world["tmp"] / "cache_root" / "nocaps" / "images" / "test"
    report = named.place_by_name(world["test_parts"], dest, check_decode=True)
    assert set(os.listdir(dest)) == good
    assert report["undecodable"] == len(corrupt) == unchecked["placed"] - report["placed"]
