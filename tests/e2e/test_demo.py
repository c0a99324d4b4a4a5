"""`make demo` builds every layout, lavis/ and g3m/ included, and what it builds is what the
consumers open: every path check of vlprep.consumers runs on its output, and the nxtp tars
are compared with counts derived independently from the generated inputs."""

import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from standin.demo import DEMO_PRODUCTS
from vlprep.consumers import G3M_WDS, LAVIS_DIRS, LAVIS_FILES, check_g3m, check_lavis

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def run_demo(workdir: Path, timeout: float) -> subprocess.CompletedProcess:
    """The demo exactly as `make demo` runs it, in `workdir`."""
    env = {**os.environ, "VLPREP_PROGRESS": "0", "NO_ALBUMENTATIONS_UPDATE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "standin.demo", "--workdir", str(workdir), "--cores", "2"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """One demo run in a fresh work directory, and what it printed."""
    workdir = tmp_path_factory.mktemp("demo")
    proc = run_demo(workdir, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "consumer path checks (vlprep.consumers): 0 problem(s)" in proc.stdout
    return workdir, proc


@pytest.fixture(scope="module")
def demo(demo_run) -> Path:
    return demo_run[0]


def test_every_consumer_path_exists(demo):
    lavis, g3m = demo / "data" / "lavis", demo / "data" / "g3m"
    for product in DEMO_PRODUCTS:
        for rel in LAVIS_FILES.get(product, []):
            assert (lavis / rel).is_file(), rel
        for rel in LAVIS_DIRS.get(product, []):
            assert (lavis / rel).is_dir(), rel
        for rel in G3M_WDS.get(product, []):
            assert list((g3m / rel).glob("*.tar")), rel
    assert check_lavis(lavis, list(DEMO_PRODUCTS)) == []
    assert check_g3m(g3m, list(DEMO_PRODUCTS)) == []


def opens_in_vpgtrans(path: Path) -> bool:
    """VPGTrans's own call, with the setting its coco_caption_datasets module makes global."""
    from PIL import Image, ImageFile

    before, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, True
    try:
        Image.open(path).convert("RGB")
        return True
    except Exception:  # noqa: BLE001 - FileNotFoundError, UnidentifiedImageError, OSError...
        return False
    finally:  # the setting is process-wide: later tests in this process decode strictly
        ImageFile.LOAD_TRUNCATED_IMAGES = before


# annotation file, its image folder, how its dataset class joins the two, its stored source
DROPPING = [
    ("sbu_captions/annotations/sbu.json", "sbu_captions/images", "basename", "sbu_json"),
    ("nocaps/annotations/nocaps_val.json", "nocaps/images", "join", "lavis_nocaps_val"),
    ("nocaps/annotations/nocaps_test.json", "nocaps/images", "join", "lavis_nocaps_test"),
    ("vg/annotations/vg_caption.json", "vg/images", "basename", "lavis_vg_caption"),
]


@pytest.mark.parametrize("rel, images, how, entry", DROPPING)
def test_annotations_keep_exactly_the_records_whose_image_opens(demo, rel, images, how, entry):
    """Counted from the stored upstream file with VPGTrans's own join and decode: the layout
    file holds every record that opens, in order, and nothing else; the report says how many
    were dropped."""
    lavis = demo / "data" / "lavis"
    upstream = json.loads(
        next((demo / "data" / "downloads" / entry).glob("[!.]*.json")).read_text()
    )
    folder = lavis / images

    def image(record):
        name = os.path.basename(record["image"]) if how == "basename" else record["image"]
        return folder / name

    expected = [r for r in upstream if opens_in_vpgtrans(image(r))]
    written = json.loads((lavis / rel).read_text())
    assert written == expected
    assert 0 < len(expected) < len(upstream)  # the demo's world loses some: a real test
    report = json.loads((demo / "data" / "reports" / "lavis" / rel).read_text())
    assert (report["records"], report["kept"]) == (len(upstream), len(expected))
    assert sum(report["dropped"].values()) == len(upstream) - len(expected)


def test_vg_qa_paths_open_as_vgvqadataset_joins_them(demo):
    lavis = demo / "data" / "lavis"
    records = json.loads((lavis / "vg" / "annotations" / "vg_qa.json").read_text())
    assert records and all(not os.path.isabs(r["image"]) for r in records)
    assert all(opens_in_vpgtrans(lavis / "vg" / "images" / r["image"]) for r in records)
    report = json.loads(
        (demo / "data" / "reports" / "lavis" / "vg/annotations/vg_qa.json").read_text()
    )
    assert "base name" in report["rewritten"]


def test_the_run_ends_saying_what_was_dropped(demo_run):
    _, proc = demo_run
    said = proc.stderr
    assert "vlprep: records whose image does not open were left out" in said
    for rel, *_ in DROPPING:
        assert f"lavis/{rel}: dropped" in said, rel
    assert said.count("EVALUATION SET SHRANK") == 2  # nocaps val and test


def test_vg_images_are_flat_and_damaged_ones_reported(demo):
    images = demo / "data" / "lavis" / "vg" / "images"
    assert all(p.is_file() for p in images.iterdir())
    report = json.loads((demo / "data" / "reports" / "vg_images.json").read_text())
    assert report["files"] == 60  # the world's two zips hold 60 images between them
    assert len(report["suspect_images"]) == 5  # and 5 of them are damaged


def test_cc_sbu_align_is_the_list_vpgtrans_reads(demo):
    records = json.loads((demo / "data" / "lavis" / "cc_sbu_align" / "filter_cap.json").read_text())
    assert isinstance(records, list) and records
    assert {"image_id", "caption"} <= records[0].keys()


def _tar_sizes(folder: Path) -> list[int]:
    sizes = []
    for tar in sorted(folder.glob("*.tar")):
        with tarfile.open(tar) as tf:
            sizes.append(len({m.name.rsplit(".", 1)[0] for m in tf if m.isfile()}))
    return sizes


def test_openimages_tars_match_the_narratives(demo):
    """Per folder of the seed's counter (2998, then 2999 lines), one sample per distinct
    image id: the seed overwrites a repeated id inside a folder, keeps it across folders."""
    jsonl = next((demo / "data" / "downloads" / "openimages_val_narratives").glob("*.jsonl"))
    folders: dict[int, set[str]] = {}
    with open(jsonl, encoding="utf-8") as f:
        for i, line in enumerate(f):
            folders.setdefault((i + 1) // 2999, set()).add(json.loads(line)["image_id"])
    expected = [len(folders[k]) for k in sorted(folders)]
    folder = demo / "data" / "g3m" / "openimages_v7" / "openimages_v7_valid"
    assert _tar_sizes(folder) == expected
    assert len(expected) >= 3


def test_coco_tars_follow_the_seed_grouping(demo):
    val = demo / "data" / "g3m" / "coco" / "val2017"
    images = len(list(val.glob("*.jpg")))
    sizes = _tar_sizes(demo / "data" / "g3m" / "coco" / "coco_valid")
    assert sizes[0] == 2998 and sum(sizes) == images


def test_demo_again_has_nothing_to_do(demo):
    proc = run_demo(demo, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Nothing to be done" in proc.stdout + proc.stderr


# ---- manifests, verify and compare (vlprep.manifest, vlprep.verify) ----------------------


def _manifest_lines(data: Path) -> Iterator[tuple[dict, dict]]:
    """Every (header, line) of every manifest under data/manifests."""
    from vlprep.manifest import read_header, read_lines

    for header in sorted((data / "manifests").glob("*.json")):
        if not header.name.endswith(".croissant.json"):
            for line in read_lines(header):
                yield read_header(header), line


def test_every_product_has_a_manifest(demo):
    from vlprep.manifest import read_header

    for product in DEMO_PRODUCTS:
        header = read_header(demo / "data" / "manifests" / f"{product}.json")
        assert header["product"] == product and header["totals"]["files"] > 0, product


def test_each_built_root_has_licenses_naming_each_product_with_its_licence(demo):
    """LICENSES.md (vlprep.licenses) at every layout root the demo built: each product whose
    paths use that root, with the licence of each of its sources."""
    from vlprep.manifest import read_header
    from vlprep.products.base import LAYOUTS

    roots = set()
    for product in DEMO_PRODUCTS:
        header = read_header(demo / "data" / "manifests" / f"{product}.json")
        for layout in set(header["roots"]) & set(LAYOUTS):
            roots.add(layout)
            text = (demo / "data" / layout / "LICENSES.md").read_text()
            assert f"\n## {product}\n" in text, (layout, product)
            section = text.split(f"\n## {product}\n", 1)[1].split("\n## ", 1)[0]
            for source in header["sources"].values():
                assert f"Licence: {' '.join(source['license'].split())}" in section, product
    assert roots == set(LAYOUTS)


def test_every_product_exports_croissant_that_mlcroissant_validates_and_reads(demo):
    """Each product's Croissant file validates, and the first records of each record set are
    the samples read from the product's own files (tests/unit/test_croissant.py)."""
    from tests.unit.test_croissant import check_demo_croissant

    assert check_demo_croissant(demo / "data" / "manifests", records=2, workers=2) == []


def test_verify_names_exactly_the_28_drifts_of_a_copied_tree(demo, tmp_path):
    """A copy of the demo's data root (links are relative: they stay inside it) verifies clean
    at its new place; then 25 files get one byte flipped, one is deleted, one added and one
    link broken, and the full verify names those 28 places and nothing else."""
    import random
    import shutil

    from vlprep.manifest import resolve
    from vlprep.verify import resolve_roots, verify

    copy = tmp_path / "data"
    shutil.copytree(demo / "data", copy, symlinks=True)
    manifests = copy / "manifests"
    assert verify(manifests, full=True, data_root=copy)[1] == []

    files: dict[str, int] = {}  # real path of every file the manifests show -> lines showing it
    file_links, folders = [], set()
    for header, line in _manifest_lines(copy):
        real = resolve(line["path"], resolve_roots(header, copy, {}))
        if "size" in line:
            target = os.path.realpath(real)
            files[target] = files.get(target, 0) + 1
            if line["type"] == "link":
                file_links.append(real)
        elif line["type"] == "dir":
            folders.add(Path(os.path.realpath(real)))
    rng = random.Random(28)
    # any file may be flipped (a store file several products show is still one drift); the
    # deleted one is shown once, or it would be missing in one place and a broken link in another
    flipped = rng.sample(sorted(p for p in files if Path(p).stat().st_size), 25)
    link = rng.choice([p for p in file_links if os.path.realpath(p) not in flipped])
    # the deleted file is none of those, and not what the broken link showed
    once = sorted(
        p
        for p, seen in files.items()
        if seen == 1 and p not in flipped and p != os.path.realpath(link)
    )
    deleted = Path(rng.choice(once))
    for path in flipped:
        with open(path, "r+b") as f:
            offset = rng.randrange(Path(path).stat().st_size)
            f.seek(offset)
            byte = f.read(1)[0]
            f.seek(offset)
            f.write(bytes([byte ^ 0xFF]))
    link.unlink()
    os.symlink("gone-by-accident.jpg", link)
    deleted.unlink()
    added = sorted(folders)[rng.randrange(len(folders))] / "added-by-hand.txt"
    added.write_text("not built by vlprep\n")

    _, drifts = verify(manifests, full=True, data_root=copy)
    where = lambda p: str(Path(os.path.realpath(Path(p).parent), Path(p).name))  # noqa: E731
    expected = {(os.path.realpath(p), "changed") for p in flipped}
    expected |= {(where(link), "broken"), (where(added), "extra")}
    found = {(d.where, d.kind) for d in drifts}
    deleted_seen = [d for d in drifts if d.where == where(deleted)]
    assert len(deleted_seen) == 1 and deleted_seen[0].kind in ("missing", "broken")
    found.discard((where(deleted), deleted_seen[0].kind))
    assert found == expected
    assert len(drifts) == 28


def test_two_demo_builds_compare_equal_until_a_sample_changes(demo, tmp_path):
    """A second demo in another directory holds the same data: `verify --compare` says equal
    (tars and img2dataset's shards compared by content, not by member times or row order);
    after one image changes and its product's manifest is written again, it names that file."""
    from vlprep.manifest import read_header, write_manifest
    from vlprep.verify import main

    second = tmp_path / "second"
    proc = run_demo(second, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    a, b = demo / "data" / "manifests", second / "data" / "manifests"
    command = [sys.executable, "-m", "vlprep.verify", "--compare", str(a), str(b)]
    same = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert same.returncode == 0, same.stdout[-3000:]
    assert same.stdout.strip().endswith("equal")

    header = read_header(b / "cosmos_imagenet.json")
    images = sorted(
        (second / "data" / "cosmos" / "imagenet" / "data" / "val_images").rglob("*.JPEG")
    )
    changed = images[len(images) // 2]
    real = Path(os.path.realpath(changed))
    real.write_bytes(real.read_bytes()[:-1] + b"\0")
    write_manifest("cosmos_imagenet", header["paths"], header["roots"], b)
    assert main(["--compare", str(a), str(b)]) == 1
    differs = subprocess.run(command, capture_output=True, text=True, cwd=REPO).stdout
    rel = changed.relative_to(second / "data" / "cosmos")
    assert f"cosmos_imagenet: differs    {{cosmos}}/{rel} (sha256)" in differs
    assert "1 difference(s)" in differs
