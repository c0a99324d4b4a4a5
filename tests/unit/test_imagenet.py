"""ImageNet val's wnid tree (vlprep.imagenet), the route choice and gated-repo access
(vlprep.access), and the consumer check (vlprep.consumers) on trees broken every way that
would mislead torchvision's ImageFolder."""

import hashlib
import io
import os
import tarfile
from collections import Counter
from pathlib import Path

import pytest
import scipy.io

from standin import imagenet as gen
from standin.hub import HubStandin
from vlprep.access import choose_route, gated_problem
from vlprep.consumers import _check_cosmos_imagenet, check_cosmos
from vlprep.errors import VlprepError
from vlprep.imagenet import build_val_images, hub_wnid, leaf_wnids, shape_problem
from vlprep.products.imagenet import ROUTES

SHAPE = gen.SHAPE
CATALOG = {"imagenet_val_hub": {**SHAPE}}


def torchvision_idx_to_wnid(devkit: Path, tmp: Path) -> dict[int, str]:
    """torchvision 0.29.1 datasets/imagenet.py:120-127 (parse_meta_mat), restated: positions
    0, 1 and 4 of each synset record; leaves are those with num_children == 0."""
    with tarfile.open(devkit) as tar:
        tar.extractall(tmp, filter="data")
    meta = scipy.io.loadmat(tmp / gen_devkit_meta(), squeeze_me=True)["synsets"]
    nums_children = list(zip(*meta, strict=True))[4]
    meta = [meta[idx] for idx, num_children in enumerate(nums_children) if num_children == 0]
    idcs, wnids = list(zip(*meta, strict=True))[:2]
    return {int(idx): str(wnid) for idx, wnid in zip(idcs, wnids, strict=True)}


def gen_devkit_meta() -> str:
    return "ILSVRC2012_devkit_t12/data/meta.mat"


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    """The stand-in's official files and the hub archive, each unpacked as the store has it."""
    tmp = tmp_path_factory.mktemp("imagenet")
    files = gen.make_imagenet(tmp / "manual")
    repo = gen.make_imagenet_repo(tmp / "hub")
    stores = {}
    for name, archive in (
        ("manual", files["ILSVRC2012_img_val.tar"]),
        ("hub", repo / "data" / "val_images.tar.gz"),
    ):
        with tarfile.open(archive) as tar:
            tar.extractall(tmp / "store" / name, filter="data")
        stores[name] = tmp / "store" / name
    return {"devkit": files["ILSVRC2012_devkit_t12.tar.gz"], **stores}


def build(route, sources, dst, **kw):
    args = {
        "store": sources[route],
        "devkit": sources["devkit"] if route == "manual" else None,
        "images": SHAPE["images"],
        "classes": SHAPE["classes"],
        "link_mode": "symlink",
        "source": "archive",
    }
    return build_val_images(route, dst, **{**args, **kw})


def classes_of(tree: Path) -> dict[str, set[str]]:
    return {
        d.name: {hashlib.sha256(f.read_bytes()).hexdigest() for f in d.iterdir()}
        for d in tree.iterdir()
        if d.is_dir()
    }


# ---- the devkit ----------------------------------------------------------------------------


def test_meta_mat_leaves_are_read_as_torchvision_reads_them(sources, tmp_path):
    ours = leaf_wnids(sources["devkit"])
    assert ours == torchvision_idx_to_wnid(sources["devkit"], tmp_path)
    assert ours == {i + 1: w for i, w in enumerate(gen.WNIDS)}  # IDs in the table's order
    assert not {w for w, _ in gen.INTERNAL} & set(ours.values())  # internal synsets left out


def test_hub_names_are_grouped_as_imagenet_organize_does():
    assert hub_wnid("ILSVRC2012_val_00000001_n01751748.JPEG") == "n01751748"


# ---- the tree ------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["hub", "manual"])
def test_both_routes_build_the_same_classes_as_links(route, sources, tmp_path):
    dst = tmp_path / "val_images"
    assert build(route, sources, dst) == SHAPE
    assert sorted(os.listdir(dst)) == sorted(gen.WNIDS)
    for folder in dst.iterdir():
        for link in folder.iterdir():
            assert link.is_symlink()
            assert os.path.realpath(link).startswith(str(sources[route]))
    other = build("manual" if route == "hub" else "hub", sources, tmp_path / "other")
    assert other == SHAPE and classes_of(dst) == classes_of(tmp_path / "other")


def test_copy_mode_leaves_the_store_untouched(sources, tmp_path):
    before = sorted(os.listdir(sources["hub"]))
    build("hub", sources, tmp_path / "val", link_mode="copy")
    assert sorted(os.listdir(sources["hub"])) == before  # nothing moved out of the store
    assert not any(f.is_symlink() for d in (tmp_path / "val").iterdir() for f in d.iterdir())


def _copy_store(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


@pytest.mark.parametrize(
    "route, damage, says",
    [
        ("hub", lambda s: next(s.iterdir()).unlink(), "29 images in 10 classes, the catalog says 30"),
        ("hub", lambda s: (s / "README.txt").write_text("x"), "not an image named"),
        ("hub", lambda s: (s / "ILSVRC2012_val_00000099_n0.JPEG").write_bytes(b"x"), "wnid"),
        ("manual", lambda s: (s / "ILSVRC2012_val_00000007.JPEG").unlink(), "has no ILSVRC2012_val_00000007"),
        ("manual", lambda s: (s / "ILSVRC2012_val_00000031.JPEG").write_bytes(b"x"), "does not label"),
    ],
)  # fmt: skip
def test_a_wrong_archive_leaves_no_tree(route, damage, says, sources, tmp_path):
    store = _copy_store(sources[route], tmp_path / "store")
    damage(store)
    dst = tmp_path / "val_images"
    with pytest.raises(VlprepError, match=says):
        build(route, {**sources, route: store}, dst)
    assert not dst.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".val_images")]


def _devkit(tmp: Path, truth: bytes, meta: bytes | None = None) -> Path:
    path = tmp / "ILSVRC2012_devkit_t12.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        members = {"ILSVRC2012_devkit_t12/data/ILSVRC2012_validation_ground_truth.txt": truth}
        members["ILSVRC2012_devkit_t12/data/meta.mat"] = (
            meta if meta is not None else gen.meta_mat()
        )
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize(
    "truth, meta, says",
    [
        (b"".join(b"%d\n" % i for i in gen.labels()[:-1]) + b"11\n", None, "line 30 is '11'"),
        (b"".join(b"%d\n" % i for i in gen.labels()[:-1]), None, "does not label"),
        (b"".join(b"%d\n" % i for i in gen.labels()), b"not a mat file", "not the devkit's synset"),
    ],
)
def test_a_wrong_devkit_is_named(truth, meta, says, sources, tmp_path):
    devkit = _devkit(tmp_path, truth, meta)
    with pytest.raises(VlprepError, match=says):
        build("manual", {**sources, "devkit": devkit}, tmp_path / "val_images")
    assert not (tmp_path / "val_images").exists()


def test_not_a_devkit_at_all(sources, tmp_path):
    bogus = tmp_path / "ILSVRC2012_devkit_t12.tar.gz"
    bogus.write_bytes(b"<html>login</html>")
    with pytest.raises(VlprepError, match="not a readable tar.gz"):
        build("manual", {**sources, "devkit": bogus}, tmp_path / "val_images")


def test_uneven_classes_are_a_shape_problem():
    assert shape_problem(Counter({"n1": 3, "n2": 3}), 6, 2) is None
    assert "uneven classes: n1: 2" in shape_problem(Counter({"n1": 2, "n2": 4}), 6, 2)


# ---- routes and access ---------------------------------------------------------------------

ROUTE_CATALOG = {
    "imagenet_val_hub": {"kind": "hf"},
    "imagenet_val_tar": {"kind": "manual", "filename": "ILSVRC2012_img_val.tar"},
    "imagenet_devkit": {"kind": "manual", "filename": "ILSVRC2012_devkit_t12.tar.gz"},
}


def test_auto_takes_the_manual_route_only_with_both_files(tmp_path):
    def route(choice="auto"):
        return choose_route("p", "imagenet_source", choice, ROUTES, ROUTE_CATALOG, tmp_path)

    assert route() == "hub"
    (tmp_path / "ILSVRC2012_img_val.tar").write_bytes(b"")
    assert route() == "hub"
    (tmp_path / "ILSVRC2012_devkit_t12.tar.gz").write_bytes(b"")
    assert route() == "manual"
    assert route("hub") == "hub"
    with pytest.raises(VlprepError, match="not one of auto, manual, hub"):
        route("torrent")


@pytest.fixture(scope="module")
def gated_hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    gen.make_imagenet_repo(root)
    with HubStandin(root) as hub:
        yield hub


def _entry(hub, **extra):
    return {
        "id": "imagenet_val_hub",
        "kind": "hf",
        "repo": gen.IMAGENET_REPO,
        "repo_type": "dataset",
        "revision": hub.sha(gen.IMAGENET_REPO),
        "archive_file": "data/val_images.tar.gz",
        "gated": True,
        **extra,
    }


def test_gated_access_is_asked_of_the_hub(gated_hub):
    entry = _entry(gated_hub, instructions="put the official files into manual_dir")
    url = gated_hub.url
    none = gated_problem("imagenet_val_hub", entry, url, env={})
    assert "HF_TOKEN is not set (the hub answered 401" in none
    assert "accept its terms at https://huggingface.co/datasets/ILSVRC/imagenet-1k" in none
    assert "or: put the official files into manual_dir" in none
    wrong = gated_problem(
        "imagenet_val_hub", entry, url, env={"HF_TOKEN": "hf_wrongAAAAAAAAAAAAAAAA"}
    )
    assert "has no access (the hub answered 403" in wrong and "hf_wrong" not in wrong
    assert (
        gated_problem("imagenet_val_hub", entry, url, env={"HF_TOKEN": gen.STANDIN_TOKEN}) is None
    )
    assert gated_problem("x", {**entry, "gated": False}, url, env={}) is None


def test_an_unreachable_hub_is_taken_at_the_catalogs_word(gated_hub):
    entry = _entry(gated_hub)
    dead = "http://127.0.0.1:9"
    assert "HF_TOKEN is not set" in gated_problem("imagenet_val_hub", entry, dead, env={})
    assert gated_problem("imagenet_val_hub", entry, dead, env={"HF_TOKEN": "hf_x"}) is None


# ---- the consumer check --------------------------------------------------------------------


@pytest.fixture
def tree(sources, tmp_path) -> Path:
    """A good layout root: cosmos/ with imagenet/data/val_images from the hub route, copied."""
    root = tmp_path / "cosmos"
    build("hub", sources, root / "imagenet/data/val_images", link_mode="copy")
    (root / "imagenet/data/val_images/.snakemake_timestamp").write_text("")
    return root


def test_the_check_passes_a_good_tree_and_holds_a_real_one_to_1000x50(tree):
    assert _check_cosmos_imagenet(tree, CATALOG) == []
    real = check_cosmos(tree, ["cosmos_imagenet"])  # the real catalog: 50,000 in 1,000
    assert any("10 class folders, ImageNet val has 1000" in p for p in real)
    assert any("30 images, ImageNet val has 50000" in p for p in real)


def _first_image(tree: Path) -> Path:
    folder = tree / "imagenet/data/val_images"
    first_class = sorted(d for d in folder.iterdir() if d.is_dir())[0]
    return sorted(first_class.iterdir())[0]


@pytest.mark.parametrize(
    "damage, says",
    [
        (lambda t: _first_image(t).rename(_first_image(t).parents[1] / "stray.JPEG"), "beside the class folders"),
        (lambda t: _first_image(t).parent.rename(_first_image(t).parents[1] / "kit_fox"), "not named as a wnid"),
        (lambda t: _first_image(t).rename(_first_image(t).with_suffix(".txt")), "without an image extension"),
        (lambda t: _first_image(t).write_bytes(b"\xff\xd8 not a jpeg"), "do not open"),
        (lambda t: (_first_image(t).parent / "sub").mkdir(), "class folders hold folders"),
        (lambda t: _first_image(t).unlink(), "without 3 images"),
    ],
)  # fmt: skip
def test_the_check_fails_a_broken_tree(damage, says, tree):
    damage(tree)
    problems = _check_cosmos_imagenet(tree, CATALOG)
    assert any(says in p for p in problems), problems


def test_the_check_fails_a_missing_tree(tmp_path):
    assert "missing (cosmos_imagenet)" in _check_cosmos_imagenet(tmp_path, CATALOG)[0]


@pytest.mark.slow
@pytest.mark.parametrize("route", ["auto-nothing", "auto-both", "manual", "hub-with-files"])
def test_a_dry_run_plans_exactly_the_chosen_routes_downloads(route, tmp_path):
    """What preflight counts (rules/common.smk product_entries) is what the DAG fetches."""
    import re
    import subprocess
    import sys

    from tests.unit.test_registry import FETCH_JOB, REPO

    manual = tmp_path / "data" / "manual"
    manual.mkdir(parents=True)
    if route != "auto-nothing":
        for name in ("ILSVRC2012_img_val.tar", "ILSVRC2012_devkit_t12.tar.gz"):
            (manual / name).touch()
    choice = route.split("-")[0]
    config = [f"data_root={tmp_path / 'data'}", f"imagenet_source={choice}"]
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "cosmos_imagenet", "--config", *config],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if k != "HF_TOKEN"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    planned, in_fetch = set(), False
    for line in result.stdout.splitlines():
        if FETCH_JOB.match(line):
            in_fetch = True
        elif in_fetch and (match := re.match(r"\s+wildcards: entry=(\w+)", line)):
            planned.add(match.group(1))
            in_fetch = False
    expected = "hub" if route in ("auto-nothing", "hub-with-files") else "manual"
    assert planned == set(ROUTES[expected])
