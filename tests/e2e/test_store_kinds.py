"""Through Snakemake, against the stand-ins: a hub file that is an archive (with archives
inside, as Caltech101's zip), and a store folder merged from several downloads."""

import hashlib
import os
import tarfile

import pytest
import yaml

from standin.hub import CALTECH101_REPO, HubStandin, make_caltech101_repo
from standin.server import StandinServer
from standin.world import write_config
from tests.e2e.conftest import REPO, run_snakemake, tree_snapshot

pytestmark = pytest.mark.e2e

NOTHING_TO_DO = "Nothing to be done"
COMMON = {"license": "test", "citation": "test"}


@pytest.fixture(scope="module")
def caltech_hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    make_caltech101_repo(root)
    with HubStandin(root) as hub:
        yield hub


def hub_catalog(tmp_path, hub, **changes):
    entry = {
        "description": "Caltech101: caltech-101.zip, two archives inside",
        "kind": "hf",
        "repo": CALTECH101_REPO,
        "revision": hub.sha(CALTECH101_REPO),
        "include": ["caltech-101.zip"],
        "files": 1,
        "archive": "zip",
        "archive_file": "caltech-101.zip",
        "nested": [
            {"member": "caltech-101/101_ObjectCategories.tar.gz", "archive": "tar.gz"},
            {"member": "caltech-101/Annotations.tar", "archive": "tar"},
        ],
        **COMMON,
        **changes,
    }
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump({"caltech101": entry}))
    return path


def config_for(tmp_path, catalog, *, base_url="http://127.0.0.1:9/", hub=None):
    return write_config(
        tmp_path / "config.yaml",
        data_root=tmp_path / "data",
        catalog=catalog,
        base_url=base_url,
        hub_url=hub.url if hub else None,
    )


def test_a_hub_zip_with_archives_inside_is_extracted_and_stays_done(tmp_path, caltech_hub):
    caltech_hub.reset_stats()
    config = config_for(tmp_path, hub_catalog(tmp_path, caltech_hub), hub=caltech_hub)
    tree = tmp_path / "data" / "extracted" / "caltech101"
    result = run_snakemake(config, str(tree))
    assert result.returncode == 0, result.stderr[-3000:]
    root = tree / "caltech-101"
    assert sorted(p.name for p in root.iterdir()) == [
        "101_ObjectCategories",
        "Annotations",
        "show_annotation.m",
    ]
    # What torchvision's Caltech101 opens: <category>/image_0001.jpg and the annotations.
    categories = sorted(p.name for p in (root / "101_ObjectCategories").iterdir())
    assert categories == ["Faces_easy", "accordion", "airplanes", "anchor", "ant"]
    image = root / "101_ObjectCategories" / "accordion" / "image_0001.jpg"
    assert image.read_bytes()[:2] == b"\xff\xd8"
    assert (root / "Annotations" / "Faces_3" / "annotation_0001.mat").is_file()
    # The download is the hub's file, verified, kept apart from the unpacked tree.
    download = tmp_path / "data" / "downloads" / "caltech101" / "caltech-101.zip"
    served = caltech_hub.state.root / "datasets" / CALTECH101_REPO / "caltech-101.zip"
    assert hashlib.sha256(download.read_bytes()).digest() == (
        hashlib.sha256(served.read_bytes()).digest()
    )
    assert any("/resolve/" in path for path in caltech_hub.stats())

    before = tree_snapshot(tree)
    again = run_snakemake(config, str(tree))
    assert again.returncode == 0, again.stderr[-3000:]
    assert NOTHING_TO_DO in again.stdout + again.stderr
    assert tree_snapshot(tree) == before


def test_include_patterns_that_miss_the_archive_stop_the_run_before_any_download(
    tmp_path, caltech_hub
):
    caltech_hub.reset_stats()
    catalog = hub_catalog(tmp_path, caltech_hub, include=["*.parquet"])
    config = config_for(tmp_path, catalog, hub=caltech_hub)
    result = run_snakemake(config, str(tmp_path / "data" / "extracted" / "caltech101"))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "archive_file caltech-101.zip is not among the files" in output
    assert caltech_hub.stats() == {}
    assert not (tmp_path / "data" / "downloads").exists()


# -- merged store folders -------------------------------------------------------------------

# A test group, added to vlprep.store.MERGED in-process before the real rule files are read:
# the table ships empty, and a real group must not be invented to test the machinery.
MERGE_SNAKEFILE = """\
from vlprep.store import MERGED, Merge, MergePart

MERGED["oxford_pet_test"] = Merge(
    (
        MergePart("pet_images"),
        MergePart("pet_annotations"),
        MergePart("pet_labels", name="annotations/labels.mat"),
        MergePart("pet_readme"),
    )
)


include: "rules/common.smk"
include: "rules/fetch.smk"
"""
PET_FILES = {
    "pet_images": ("images.tar.gz", {f"images/Abyssinian_{i}.jpg": i for i in range(1, 4)}),
    "pet_annotations": ("annotations.tar.gz", {"annotations/list.txt": 0, "annotations/x.txt": 1}),
    "pet_labels": ("labels.mat", None),
    "pet_readme": ("README.txt", None),
}


def merge_workflow(tmp_path):
    """A workflow folder whose Snakefile adds a group and includes the real rules/ (linked)."""
    workflow = tmp_path / "workflow"
    workflow.mkdir()
    for name in ("rules", "scripts", "config", "envs"):
        os.symlink(REPO / name, workflow / name)
    (workflow / "Snakefile").write_text(MERGE_SNAKEFILE)
    return workflow / "Snakefile"


def pet_world(tmp_path):
    """The downloads, served by the stand-in host under example.org, and their catalog."""
    www = tmp_path / "www" / "example.org" / "pets"
    www.mkdir(parents=True)
    catalog = {}
    for entry, (name, members) in PET_FILES.items():
        path = www / name
        if members is None:
            path.write_bytes(f"{entry} bytes\n".encode() * 20)
        else:
            with tarfile.open(path, "w:gz") as tar:
                for member, seed in members.items():
                    data = tmp_path / "member"
                    data.write_bytes(bytes([seed]) * 500)
                    tar.add(data, member)
        catalog[entry] = {
            "description": name,
            "kind": "http",
            "url": f"https://example.org/pets/{name}",
            "size": path.stat().st_size,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            **({"archive": "tar.gz"} if members else {}),
            **COMMON,
        }
    catalog_path = tmp_path / "catalog.yaml"
    catalog_path.write_text(yaml.safe_dump(catalog))
    return tmp_path / "www", catalog_path


def test_a_merged_group_is_built_by_the_real_rule_and_stays_done(tmp_path):
    snakefile = merge_workflow(tmp_path)
    www, catalog = pet_world(tmp_path)
    tree = tmp_path / "data" / "extracted" / "oxford_pet_test"
    with StandinServer(www) as server:
        config = config_for(tmp_path, catalog, base_url=server.url)
        result = run_snakemake(config, "--snakefile", str(snakefile), str(tree))
        assert result.returncode == 0, result.stderr[-3000:]
        assert "merge_store" in result.stderr
        assert sorted(str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file()) == [
            ".snakemake_timestamp",
            "README.txt",
            "annotations/labels.mat",
            "annotations/list.txt",
            "annotations/x.txt",
            "images/Abyssinian_1.jpg",
            "images/Abyssinian_2.jpg",
            "images/Abyssinian_3.jpg",
        ]
        assert (tree / "images" / "Abyssinian_2.jpg").read_bytes() == bytes([2]) * 500
        readme = tmp_path / "data" / "downloads" / "pet_readme" / "README.txt"
        assert (tree / "README.txt").stat().st_ino == readme.stat().st_ino  # stored once
        before = tree_snapshot(tree)
        again = run_snakemake(config, "--snakefile", str(snakefile), str(tree))
        assert again.returncode == 0, again.stderr[-3000:]
        assert NOTHING_TO_DO in again.stdout + again.stderr
        assert tree_snapshot(tree) == before


def test_the_merge_rule_is_absent_while_the_table_is_empty(tmp_path):
    """With no group, extracted/<name> of a non-entry is no target (the constraint is ^$)."""
    _, catalog = pet_world(tmp_path)
    config = config_for(tmp_path, catalog)
    result = run_snakemake(config, "-n", str(tmp_path / "data" / "extracted" / "oxford_pet_test"))
    assert result.returncode != 0
    assert "merge_store" not in result.stdout
