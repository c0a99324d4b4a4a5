"""COSMOS's classification checks (vlprep.classification, through vlprep.consumers.check_cosmos):
each passes on a tree unpacked from the stand-in sources the way torchvision's own download()
lays them out (not by the workflow), and each fails on a tree broken the way the loader (or
COSMOS's random_split) would crash on. The real catalog's expectations are held to COSMOS's and
torchvision's constants."""

import hashlib
import os
import pickle
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from standin import classification as gen
from vlprep.catalog import load_catalog
from vlprep.classification import (
    CIFAR,
    COSMOS_SPLITS,
    FLOWERS_MD5,
    expected_images,
    sun397_fingerprint,
    sun397_images,
)
from vlprep.consumers import CATALOG_CHECKS, COSMOS_CHECKS, check_cosmos, main
from vlprep.products import PRODUCTS
from vlprep.products.classification import FOLDERS

REPO = Path(__file__).resolve().parents[2]
CATALOG = load_catalog(REPO / "config" / "catalog.yaml")
PRODUCT_NAMES = [
    "cosmos_cifar10", "cosmos_cifar100", "cosmos_food101", "cosmos_sun397",
    "cosmos_stanford_cars", "cosmos_fgvc_aircraft", "cosmos_dtd", "cosmos_oxford_pets",
    "cosmos_caltech101", "cosmos_flowers102",
]  # fmt: skip


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _untar(archive: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tf:
        tf.extractall(dest, filter="data")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> tuple[Path, dict]:
    """(a cosmos root whose classification/ is laid out as torchvision's download() lays it
    out, the stand-in catalog's expectations: its counts and digests)."""
    out = tmp_path_factory.mktemp("sources")
    files = gen.make_classification(out)
    root = tmp_path_factory.mktemp("cosmos")
    c = root / "classification"
    for entry in ("cifar10", "cifar100", "food101", "sun397", "fgvc_aircraft"):
        _untar(files[entry], c)  # download_and_extract_archive(url, root)
    _untar(files["dtd"], c / "dtd")  # dtd.py:105: into <root>/dtd
    for entry in ("stanford_cars_devkit", "stanford_cars_test"):
        _untar(files[entry], c / "stanford_cars")
    shutil.copy(files["stanford_cars_test_annos"], c / "stanford_cars")
    for entry in ("oxford_pets_images", "oxford_pets_annotations"):
        _untar(files[entry], c / "oxford-iiit-pet")  # oxford_iiit_pet.py:134-135
    _untar(files["flowers102_images"], c / "flowers-102")  # flowers102.py:113-120
    for entry in ("flowers102_labels", "flowers102_setid"):
        shutil.copy(files[entry], c / "flowers-102")
    with zipfile.ZipFile(files["caltech101"]) as zf:  # caltech.py:136-145, both inner archives
        zf.extractall(out / "caltech")
    for inner in ("101_ObjectCategories.tar.gz", "Annotations.tar"):
        _untar(out / "caltech" / "caltech-101" / inner, c / "caltech101")
    catalog = {entry: {"md5": _md5(path)} for entry, path in files.items()}
    for entry, count in gen.IMAGES.items():
        catalog[entry]["images"] = count
    return root, catalog


@pytest.fixture
def tree(pristine, tmp_path) -> tuple[Path, dict]:
    """A copy to break."""
    root, catalog = pristine
    shutil.copytree(root, tmp_path / "cosmos")
    return tmp_path / "cosmos", catalog


def test_the_pristine_tree_passes_every_check(pristine):
    root, catalog = pristine
    assert check_cosmos(root, PRODUCT_NAMES, catalog=catalog) == []


def test_every_product_has_a_check_that_takes_the_catalog():
    assert [p for p in PRODUCTS if p in FOLDERS_PRODUCTS()] == PRODUCT_NAMES
    for name in PRODUCT_NAMES:
        assert name in COSMOS_CHECKS and name in CATALOG_CHECKS, name
        assert PRODUCTS[name].bundles == ("cosmos",) and PRODUCTS[name].checks == ("cosmos",)
        assert not PRODUCTS[name].in_all and PRODUCTS[name].demo


def FOLDERS_PRODUCTS() -> set[str]:  # noqa: N802 - reads as the table it derives
    return {folder.product for folder in FOLDERS.values()}


def test_the_real_catalog_holds_cosmos_and_torchvision_numbers():
    """The catalog's `images:` are the sums of COSMOS's split lengths, its md5s torchvision's."""
    assert CATALOG["caltech101"]["images"] == sum(COSMOS_SPLITS["caltech101"]) == 8677
    assert CATALOG["sun397"]["images"] == sum(COSMOS_SPLITS["sun397"]) == 108754
    for entry, spec in CIFAR.items():
        assert CATALOG[entry]["md5"] == spec["archive_md5"], entry
    for entry, (name, md5) in FLOWERS_MD5.items():
        assert CATALOG[entry]["md5"] == md5 and CATALOG[entry]["url"].endswith(name), entry
    assert CATALOG["fgvc_aircraft"].keys().isdisjoint({"md5", "sha1", "sha256"})
    manual = [
        e for e, v in CATALOG.items() if e.startswith("stanford_cars") and v["kind"] == "manual"
    ]
    assert sorted(CATALOG[e]["filename"] for e in manual) == [
        "car_devkit.tgz", "cars_test.tgz", "cars_test_annos_withlabels.mat",
    ]  # fmt: skip


def test_without_a_catalog_count_the_check_holds_cosmos_sums():
    assert expected_images({}, "caltech101") == 8677
    assert expected_images({"sun397": {"url": "x"}}, "sun397") == 108754
    assert expected_images({"sun397": {"images": 9}}, "sun397") == 9


def test_the_stand_in_tree_fails_against_the_real_catalog(pristine):
    """Nothing is weakened for real data: the default catalog is the real one."""
    root, _ = pristine
    problems = "\n".join(check_cosmos(root, PRODUCT_NAMES))
    for needle in ("needs exactly 8,677", "needs exactly 108,754", "torchvision's md5"):
        assert needle in problems


def test_main_takes_the_catalog(pristine, tmp_path, capsys):
    root, catalog = pristine
    import yaml

    path = tmp_path / "catalog.yaml"
    raw = yaml.safe_load((REPO / "config" / "catalog.yaml").read_text())
    full = {e: {**raw[e], **v} for e, v in catalog.items()}
    path.write_text(yaml.safe_dump(full))
    assert main(["cosmos", str(root), *PRODUCT_NAMES, "--catalog", str(path)]) == 0
    assert main(["cosmos", str(root), "cosmos_caltech101"]) == 1
    assert "8,677" in capsys.readouterr().out


def _rm(path: Path) -> None:
    shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def _first(folder: Path, pattern: str) -> Path:
    return sorted(folder.rglob(pattern))[0]


def _append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def _test_id(c: Path) -> str:
    """The first image of FGVC-Aircraft's test list."""
    listing = c / "fgvc-aircraft-2013b/data/images_variant_test.txt"
    return listing.read_text().split()[0]


def _pickle(path: Path, obj) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


# (product, how the tree is broken, a phrase of the problem)
BREAKS = [
    ("cosmos_cifar10", lambda c: _rm(c / "cifar-10-batches-py/data_batch_2"), "missing"),
    ("cosmos_cifar10", lambda c: (c / "cifar-10-batches-py/test_batch").write_bytes(b"x"), "unreadable"),
    ("cosmos_cifar10", lambda c: _pickle(c / "cifar-10-batches-py/test_batch", {"data": [], "labels": []}), "unreadable"),
    ("cosmos_cifar100", lambda c: _pickle(c / "cifar-100-python/meta", {"label_names": []}), "'fine_label_names'"),
    ("cosmos_food101", lambda c: _rm(_first(c / "food-101/images", "*.jpg")), "not files"),
    ("cosmos_food101", lambda c: _rm(c / "food-101/images"), "must be folders"),
    ("cosmos_sun397", lambda c: shutil.copy(_first(c / "SUN397", "sun_*.jpg"), c / "SUN397/a/abbey/sun_extra.jpg"), "needs exactly"),
    ("cosmos_sun397", lambda c: shutil.copytree(c / "SUN397/b/ballroom", c / "SUN397/b/bar"), "no class of ClassName.txt"),
    ("cosmos_sun397", lambda c: _rm(c / "SUN397/ClassName.txt"), "missing"),
    ("cosmos_stanford_cars", lambda c: _rm(c / "stanford_cars/cars_test/00003.jpg"), "not files"),
    ("cosmos_stanford_cars", lambda c: shutil.move(c / "stanford_cars/cars_test_annos_withlabels.mat", c / "stanford_cars/devkit"), "cars_test_annos_withlabels.mat"),
    ("cosmos_stanford_cars", lambda c: _rm(c / "stanford_cars/devkit/cars_meta.mat"), "unreadable"),
    ("cosmos_fgvc_aircraft", lambda c: _rm(c / "fgvc-aircraft-2013b/data/images" / f"{_test_id(c)}.jpg"), "not files"),
    ("cosmos_fgvc_aircraft", lambda c: _append(c / "fgvc-aircraft-2013b/data/images_variant_test.txt", "1234567 Concorde\n"), "variants.txt"),
    ("cosmos_dtd", lambda c: (shutil.move(c / "dtd", c / "tmp"), shutil.move(c / "tmp/dtd", c / "dtd")), "dtd/dtd"),
    ("cosmos_dtd", lambda c: _append(c / "dtd/dtd/labels/test1.txt", "\n"), "ValueError"),
    ("cosmos_dtd", lambda c: _rm(_first(c / "dtd/dtd/images", "*.jpg")), "not files"),
    ("cosmos_oxford_pets", lambda c: _rm(c / "oxford-iiit-pet/annotations"), "must be folders"),
    ("cosmos_oxford_pets", lambda c: _rm(c / "oxford-iiit-pet/images/Abyssinian_3.jpg"), "not files"),
    ("cosmos_caltech101", lambda c: _rm(c / "caltech101/101_ObjectCategories/BACKGROUND_Google"), "BACKGROUND_Google"),
    ("cosmos_caltech101", lambda c: (c / "caltech101/101_ObjectCategories/Faces/.DS_Store").write_bytes(b""), "sequence"),
    ("cosmos_caltech101", lambda c: _rm(c / "caltech101/101_ObjectCategories/Faces/image_0002.jpg"), "needs exactly"),
    ("cosmos_caltech101", lambda c: _rm(c / "caltech101/101_ObjectCategories"), "missing"),
    ("cosmos_flowers102", lambda c: _append(c / "flowers-102/imagelabels.mat", "x"), "md5"),
    ("cosmos_flowers102", lambda c: _rm(c / "flowers-102/jpg/image_00003.jpg"), "not files"),
]  # fmt: skip


@pytest.mark.parametrize(("product", "breaks", "phrase"), BREAKS)
def test_each_check_fails_on_a_broken_tree(tree, product, breaks, phrase):
    root, catalog = tree
    breaks(root / "classification")
    problems = check_cosmos(root, [product], catalog=catalog)
    assert problems and phrase in "\n".join(problems), problems
    # the other sets are untouched: their checks still pass
    others = [p for p in PRODUCT_NAMES if p != product]
    assert check_cosmos(root, others, catalog=catalog) == []


def test_every_set_has_a_breakage():
    assert {product for product, _, _ in BREAKS} == set(PRODUCT_NAMES)


def test_cifar_inner_md5s_are_checked_when_the_archive_is_torchvision_s(pristine):
    root, catalog = pristine
    real = {**catalog, "cifar10": {"md5": CIFAR["cifar10"]["archive_md5"]}}
    problems = check_cosmos(root, ["cosmos_cifar10"], catalog=real)
    assert len(problems) == 1 and "do not have torchvision's md5" in problems[0]


def test_sun397_listing_is_rglob_and_the_fingerprint_ignores_order(tmp_path):
    """The walk lists what Path.rglob("sun_*.jpg") lists (no symlinked folder followed), and
    the fingerprint is the same for the same files created in another order."""
    from pathlib import Path as P

    def make(base: Path, names: list[str]) -> Path:
        for name in names:
            (base / name).parent.mkdir(parents=True, exist_ok=True)
            (base / name).write_bytes(b"")
        return base

    names = ["a/abbey/sun_b.jpg", "a/abbey/sun_a.jpg", "b/bar/x/sun_c.jpg", "a/abbey/other.jpg"]
    one = make(tmp_path / "one", names)
    two = make(tmp_path / "two", list(reversed(names)))
    os.symlink(tmp_path / "two" / "b", one / "linked")  # rglob in 3.11 does not follow it
    assert sorted(sun397_images(one)) == sorted(P(one).rglob("sun_*.jpg"))
    assert sun397_fingerprint(one) == sun397_fingerprint(two) == (3, sun397_fingerprint(two)[1])
    make(two, ["b/bar/sun_d.jpg"])
    assert sun397_fingerprint(two)[1] != sun397_fingerprint(one)[1]


def test_sun397_check_says_the_order_is_not_reproducible(pristine, caplog):
    root, catalog = pristine
    with caplog.at_level("WARNING", logger="vlprep.classification"):
        assert check_cosmos(root, ["cosmos_sun397"], catalog=catalog) == []
    said = caplog.text
    assert "directory order" in said and "PYTHONHASHSEED" in said and "fingerprint" in said
