"""LICENSES.md at each layout root (vlprep.licenses), written from real manifests
(vlprep.manifest.write_manifest) of small products over a store."""

import json
import multiprocessing
import os
from pathlib import Path

from vlprep.licenses import FILENAME, headers_under, render, write_licenses
from vlprep.manifest import write_manifest

BIBTEX = "@inproceedings{lin2014coco,\n  title={Microsoft COCO},\n  year={2014}\n}"
CATALOG = {
    "coco_val": {
        "kind": "http",
        "url": "http://images.cocodataset.org/zips/val2017.zip",
        "sha256": "a" * 64,
        "license": "COCO terms of use",
        "citation": "Lin et al., COCO, ECCV 2014",
        "bibtex": BIBTEX,
    },
    "captions": {
        "kind": "http",
        "url": "https://example.org/captions.json",
        "license": "BSD-3-Clause",
        "citation": "Li et al., BLIP, ICML 2022",
    },
    "gated_repo": {
        "kind": "hf",
        "repo": "ILSVRC/imagenet-1k",
        "repo_type": "dataset",
        "revision": "main",
        "gated": True,
        "license": "ImageNet terms of access",
        "citation": "Russakovsky et al., ILSVRC, IJCV 2015",
    },
    "by_hand": {
        "kind": "manual",
        "filename": "gtFine.zip",
        "md5": "b" * 32,
        "instructions": "Register at\n  https://www.cityscapes-dataset.com and download gtFine.zip",
        "license": "Cityscapes terms (non-commercial)",
        "citation": "Cordts et al., Cityscapes, CVPR 2016",
    },
    "drive_file": {
        "kind": "gdrive",
        "drive_id": "1nJXhoEcy3KTExr17I7BXqY5Y9Lx_-n-9",
        "filename": "align.zip",
        "license": "BSD-3-Clause",
        "citation": "Li et al., BLIP, ICML 2022",
    },
}
HUB_SHA = "c" * 40
RECORDED_SHA256 = "d" * 64


def roots_of(data: Path) -> dict[str, str]:
    names = ("g3m", "lavis", "cosmos", "downloads", "extracted", "reports")
    return {"data_root": str(data), **{name: str(data / name) for name in names}}


def build(data: Path, products: dict[str, tuple[list[str], list[str]]]) -> dict[str, dict]:
    """Each product's files (a one-byte file per path) and download records, then its
    manifest; returns the headers."""
    downloads = data / "downloads"
    (downloads / "gated_repo").mkdir(parents=True, exist_ok=True)
    (downloads / "gated_repo" / ".vlprep-hub.json").write_text(
        json.dumps({"revision": "main", "sha": HUB_SHA, "endpoint": "http://127.0.0.1:1"})
    )
    (downloads / "captions").mkdir(exist_ok=True)
    (downloads / "captions" / ".vlprep-fetch.json").write_text(
        json.dumps({"entry": "captions", "sha256": RECORDED_SHA256, "fetched": "now"})
    )
    headers = {}
    for product, (paths, entries) in products.items():
        for template in paths:
            root, rest = template[1:].split("}/", 1)
            path = data / root / rest
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(product.encode())
        headers[product] = write_manifest(
            product, paths, roots_of(data), data / "manifests", entries=entries, catalog=CATALOG
        )
    return headers


PRODUCTS = {
    "sbu": (["{g3m}/sbu/0.tar.txt", "{lavis}/sbu/sbu.json"], ["captions", "drive_file"]),
    "coco": (["{lavis}/coco/val.json"], ["coco_val", "captions"]),
    "imagenet": (["{cosmos}/imagenet/val.txt"], ["gated_repo", "by_hand"]),
}


def test_each_root_lists_the_products_under_it_with_licence_citation_sources(tmp_path):
    data = tmp_path / "data"
    headers = build(data, PRODUCTS)
    changed = write_licenses(data / "manifests", headers["sbu"], CATALOG)
    assert sorted(changed) == [data / "g3m" / FILENAME, data / "lavis" / FILENAME]
    g3m = (data / "g3m" / FILENAME).read_text()
    lavis = (data / "lavis" / FILENAME).read_text()
    # sbu lives under both roots; coco (built earlier) only under lavis
    assert "Products: sbu\n" in g3m and "## coco" not in g3m
    assert "Products: coco, sbu\n" in lavis
    assert lavis.index("## coco") < lavis.index("## sbu")
    assert "Licence: COCO terms of use\nCite: Lin et al., COCO, ECCV 2014" in lavis
    assert f"```bibtex\n{BIBTEX}\n```" in lavis
    assert f"- `coco_val`: http://images.cocodataset.org/zips/val2017.zip, sha256 `{'a' * 64}`" in (
        lavis
    )
    # no checksum in the catalog: the one its download recorded
    assert (
        f"https://example.org/captions.json, sha256 `{RECORDED_SHA256}` (recorded at first download)"
    ) in g3m
    assert "https://drive.google.com/file/d/1nJXhoEcy3KTExr17I7BXqY5Y9Lx_-n-9/view" in g3m
    # two sources of one licence and citation are listed under it once
    assert g3m.count("Licence: BSD-3-Clause") == 1
    assert not (data / "cosmos" / FILENAME).exists()  # nothing of this product there


def test_gated_and_manual_sources_say_where_their_terms_are_accepted(tmp_path):
    data = tmp_path / "data"
    headers = build(data, PRODUCTS)
    write_licenses(data / "manifests", headers["imagenet"], CATALOG)
    text = (data / "cosmos" / FILENAME).read_text()
    assert (
        "Terms: Gated: accept the terms at https://huggingface.co/datasets/ILSVRC/imagenet-1k"
        in (text)
    )
    assert "HF_TOKEN" in text
    assert (
        f"- `gated_repo`: https://huggingface.co/datasets/ILSVRC/imagenet-1k, revision `{HUB_SHA}`"
        in (text)
    )
    assert (
        "Terms: Registration or download by hand: Register at "
        "https://www.cityscapes-dataset.com and download gtFine.zip"
    ) in text
    assert f"`gtFine.zip`, downloaded by hand, md5 `{'b' * 32}` (the catalog's)" in text


def test_two_builds_in_two_places_write_the_same_bytes_and_no_path(tmp_path):
    texts = []
    for place in ("one", "two/deeper"):
        data = tmp_path / place / "data"
        headers = build(data, PRODUCTS)
        write_licenses(data / "manifests", headers["coco"], CATALOG)
        texts.append((data / "lavis" / FILENAME).read_bytes())
        assert str(tmp_path).encode() not in texts[-1]
        assert b"127.0.0.1" not in texts[-1]
    assert texts[0] == texts[1]


def test_an_unchanged_file_is_left_alone(tmp_path):
    data = tmp_path / "data"
    headers = build(data, PRODUCTS)
    write_licenses(data / "manifests", headers["coco"], CATALOG)
    path = data / "lavis" / FILENAME
    os.utime(path, (1, 1))
    assert write_licenses(data / "manifests", headers["sbu"], CATALOG) == [data / "g3m" / FILENAME]
    assert path.stat().st_mtime == 1
    assert not [p for p in path.parent.iterdir() if ".vlprep-tmp-" in p.name]


def test_only_headers_of_this_root_count(tmp_path):
    """A product built while the layout was elsewhere, a Croissant export and a stray JSON file
    in the manifests folder are not listed."""
    data = tmp_path / "data"
    build(data, PRODUCTS)
    manifests = data / "manifests"
    moved = json.loads((manifests / "coco.json").read_text())
    moved["product"], moved["roots"]["lavis"] = "old_coco", str(tmp_path / "elsewhere")
    (manifests / "old_coco.json").write_text(json.dumps(moved))
    (manifests / "stray.json").write_text("[1, 2]")
    (manifests / "broken.json").write_text("{")
    names = [h["product"] for h in headers_under(manifests, "lavis", data / "lavis")]
    assert names == ["coco", "sbu"]


def test_a_product_without_sources_is_still_listed():
    text = render([{"product": "bare", "sources": {}}], {})
    assert "Products: bare" in text and "## bare\n\nNo catalog source recorded" in text


def _build_and_write(data: str, product: str) -> None:
    paths, entries = [f"{{lavis}}/{product}/a.json"], ["coco_val"]
    header = build(Path(data), {product: (paths, entries)})[product]
    write_licenses(Path(data) / "manifests", header, CATALOG)


def test_concurrent_manifest_jobs_leave_a_file_listing_every_product(tmp_path):
    """Eight jobs write their manifests and the shared file at once: the lock makes the last
    writer see every header written before it."""
    data = tmp_path / "data"
    names = [f"p{i}" for i in range(8)]
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.starmap(_build_and_write, [(str(data), name) for name in names])
    text = (data / "lavis" / FILENAME).read_text()
    assert f"Products: {', '.join(names)}\n" in text
