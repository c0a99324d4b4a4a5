"""What COSMOS's classification evaluation opens under its `dataset_root`, checked on a built tree.

COSMOS c80348f builds each set with torchvision's own class in `get_loader_test`
(src/dataloaders/<set>.py, the only loader src/training/data.py:936 calls), with `root` =
`dataset_root` (src/dataloaders/utils.py:17; vlprep's is `<cosmos>/classification`). Each check
below restates the path joins and the checks of the torchvision 0.29.1 class (file:line of
torchvision/datasets/) for the split COSMOS asks for, independently of the workflow's tables,
and reports what would make the class raise, or make COSMOS raise after it:

- a folder or file the class tests for (`_check_exists` / `_check_integrity`) or opens;
- a listed image that is not a file (the loader would crash on that sample);
- a label the class cannot map (KeyError), a line it cannot split (ValueError);
- CIFAR's and Flowers102's md5 checks, which run even with download=False;
- the exact counts COSMOS's `random_split` needs (Caltech101 [3000, 5677], SUN397
  [19850, 19850, 69054]: any other total raises in COSMOS).

Images are not decoded (every archive but FGVC-Aircraft's is md5-verified on download; what
they hold is upstream's): the checks test that each path the class builds is a file, and read
only the lists and label files. Memory stays bounded: lists are streamed, folders walked.

Expected counts and checksums come from the catalog the tree was built from: the entry's
`images:` (the real catalog: 8,677 and 108,754, the sums of COSMOS's split sizes, which
tests/unit/test_classification_checks.py holds it to) and `md5`. The stand-in world writes its own
counts and digests into its catalog, as it does for URL lists' `rows:`, so a stand-in tree is
checked exactly as strictly, against its own numbers. An entry without `images:` (a custom
catalog) is held to COSMOS's sums.
"""

import fnmatch
import hashlib
import logging
import os
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path

import ijson

from vlprep.transfer import hash_file

log = logging.getLogger(__name__)

Catalog = Mapping[str, dict]
Check = Callable[[Path, Catalog], list[str]]

# COSMOS's random_split lengths (src/dataloaders/caltech101.py:9-10,18-22;
# src/dataloaders/sun397.py:8-10,32-37): the dataset must have exactly their sum.
COSMOS_SPLITS = {"caltech101": (3000, 5677), "sun397": (19850, 19850, 69054)}

# torchvision 0.29.1 cifar.py:34-50 (CIFAR10) and 155-167 (CIFAR100): the archive's md5 and
# the md5 of every inner file, which _check_integrity (:129-134, called at :68 whatever the
# split) and _load_meta (:97) check even with download=False.
CIFAR = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "archive_md5": "c58f30108f718f92721af3b95e74349a",
        "files": {
            "data_batch_1": "c99cafc152244af753f735de768cd75f",
            "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
            "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
            "data_batch_4": "634d18415352ddfa80567beed471001a",
            "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
            "test_batch": "40351d587109b95175f43aff81a1287e",
        },
        "test": "test_batch",
        "meta": ("batches.meta", "label_names", "5ff9c542aee3614f3951f8cda6e48888"),
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "archive_md5": "eb9058c3a382ffc7106e4002c42a8d85",
        "files": {
            "train": "16019d7e3df5f24257cddd939b257f8d",
            "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
        },
        "test": "test",
        "meta": ("meta", "fine_label_names", "7973b15100ade9c7d40fb424638fde48"),
    },
}
# torchvision 0.29.1 flowers102.py:41-42: checked by _check_integrity (:100-108) on every load.
FLOWERS_MD5 = {
    "flowers102_labels": ("imagelabels.mat", "e0620be6f572b9609742df49c70aed4d"),
    "flowers102_setid": ("setid.mat", "a5357ecc9cb78c4bef273ce3793fc85c"),
}


def expected_images(catalog: Catalog, entry: str) -> int:
    """How many images COSMOS's random_split needs of `entry`: the catalog's `images:`, else
    the sum of COSMOS's split lengths."""
    return (catalog.get(entry) or {}).get("images") or sum(COSMOS_SPLITS[entry])


def _missing_files(paths, what: str, limit: int = 3) -> list[str]:
    """One problem naming how many of `paths` are not files (and the first few)."""
    seen, missing, first = 0, 0, []
    for path in paths:
        seen += 1
        if not os.path.isfile(path):
            missing += 1
            if len(first) < limit:
                first.append(str(path))
    if missing:
        return [f"{what}: {missing} of {seen} listed images are not files (first: {first})"]
    return []


def _lines(path: Path):
    """Every line, blank ones too: the classes split each line they iterate over, so a blank
    line raises there as well."""
    with open(path, encoding="utf-8") as f:
        yield from f


# ---- CIFAR-10 / CIFAR-100: CIFAR10(root, train=False) (src/dataloaders/cifar10.py:23,
# cifar100.py:23) ----


def _check_cifar(entry: str) -> Check:
    spec = CIFAR[entry]

    def check(root: Path, catalog: Catalog) -> list[str]:
        base = root / "classification" / spec["folder"]  # cifar.py:81, 96, 131
        meta_name, meta_key, meta_md5 = spec["meta"]
        files = {**spec["files"], meta_name: meta_md5}
        missing = [name for name in files if not (base / name).is_file()]
        if missing:
            return [
                f"{base}: {missing} missing: torchvision's {entry.upper()} checks every batch "
                "file whatever the split (cifar.py:68, 129-134) and raises 'Dataset not found "
                "or corrupted'"
            ]
        problems = []
        # The inner md5s are torchvision's only inside torchvision's archive: checked when
        # the catalog's download is that archive (a stand-in's inner files are its own).
        if (catalog.get(entry) or {}).get("md5") == spec["archive_md5"]:
            wrong = [
                name for name, md5 in files.items() if hash_file(base / name, hashlib.md5()) != md5
            ]
            if wrong:
                problems.append(
                    f"{base}: {wrong} do not have torchvision's md5 (cifar.py:35-50, 152-167): "
                    "it raises 'Dataset not found or corrupted'; delete the folder's store "
                    f"(extracted/{entry}) and rebuild"
                )
        problems += _check_cifar_pickles(base, spec["test"], meta_name, meta_key)
        return problems

    return check


def _check_cifar_pickles(base: Path, test: str, meta: str, key: str) -> list[str]:
    """What CIFAR10.__init__ reads of the test split: `data` (reshaped to N x 3 x 32 x 32) and
    `labels` or `fine_labels` (cifar.py:80-90), and the meta file's key (:99-101)."""
    problems = []
    try:
        with open(base / test, "rb") as f:
            batch = pickle.load(f, encoding="latin1")
        data = batch["data"]
        labels = batch["labels"] if "labels" in batch else batch["fine_labels"]
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != data.shape[0]:
            problems.append(
                f"{base / test}: data {data.shape} and {len(labels)} labels: torchvision "
                "reshapes data to (-1, 3, 32, 32) with one label per row (cifar.py:90)"
            )
    except Exception as err:  # noqa: BLE001 - whatever pickle or a missing key raises
        problems.append(f"{base / test}: unreadable as torchvision reads it: {err!r}")
    try:
        with open(base / meta, "rb") as f:
            if key not in pickle.load(f, encoding="latin1"):
                problems.append(f"{base / meta}: no {key!r} (cifar.py:101 reads it)")
    except Exception as err:  # noqa: BLE001
        problems.append(f"{base / meta}: unreadable as torchvision reads it: {err!r}")
    return problems


# ---- Food-101: Food101(root, split='test') (src/dataloaders/food101.py:23) ----


def _check_food101(root: Path, catalog: Catalog) -> list[str]:
    base = root / "classification" / "food-101"  # food101.py:49-51
    meta, images = base / "meta", base / "images"
    if not (meta.is_dir() and images.is_dir()):  # _check_exists, :56-57, 92-93
        return [f"{base}: meta/ and images/ must be folders (food101.py:92-93)"]
    test = meta / "test.json"  # :61-62
    if not test.is_file():
        return [f"{test}: missing (food101.py:61 opens it)"]
    with open(test, "rb") as f:
        paths = (
            images.joinpath(*f"{rel}.jpg".split("/"))  # :67-71
            for _, rels in ijson.kvitems(f, "")
            for rel in rels
        )
        return _missing_files(paths, f"{test} (food101.py:70)")


# ---- SUN397: SUN397(root) (src/dataloaders/sun397.py:31), then random_split ----


def sun397_images(base: Path):
    """Every path SUN397 lists, as `base.rglob("sun_*.jpg")` does in Python 3.11 (sun397.py:53):
    files at any depth, through no symlinked folder below `base`, in directory order."""
    for dirpath, _, filenames in os.walk(base):
        for name in filenames:
            if fnmatch.fnmatchcase(name, "sun_*.jpg"):
                yield Path(dirpath, name)


class SetFingerprint:
    """A digest of a set of relative paths that does not depend on the order they come in (the
    sum of their sha256s modulo 2**256), so it needs no sorted list in memory."""

    def __init__(self) -> None:
        self.count, self.total = 0, 0

    def add(self, rel: str) -> None:
        digest = int.from_bytes(hashlib.sha256(rel.encode()).digest(), "big")
        self.total = (self.total + digest) % 2**256
        self.count += 1

    def hexdigest(self) -> str:
        return f"{self.total:064x}"


def sun397_fingerprint(base: Path) -> tuple[int, str]:
    """(how many images SUN397 lists under `base`, the fingerprint of their relative paths)."""
    fingerprint = SetFingerprint()
    for path in sun397_images(base):
        fingerprint.add(path.relative_to(base).as_posix())
    return fingerprint.count, fingerprint.hexdigest()


def _check_sun397(root: Path, catalog: Catalog) -> list[str]:
    base = root / "classification" / "SUN397"  # sun397.py:41
    if not base.is_dir():  # _check_exists, :75-76
        return [f"{base}: missing (sun397.py:46-47 raises 'Dataset not found')"]
    names = base / "ClassName.txt"
    if not names.is_file():
        return [f"{names}: missing (sun397.py:49 opens it)"]
    classes = {line[3:].strip() for line in _lines(names)}  # :49-50
    problems, fingerprint, unknown = [], SetFingerprint(), []
    for path in sun397_images(base):
        rel = path.relative_to(base)
        fingerprint.add(rel.as_posix())
        label = "/".join(rel.parts[1:-1])  # :55-57
        if label not in classes and len(unknown) < 3:
            unknown.append(str(path))
    if unknown:
        problems.append(
            f"{base}: images whose folder is no class of ClassName.txt (KeyError at "
            f"sun397.py:56): {unknown}"
        )
    count, expected = fingerprint.count, expected_images(catalog, "sun397")
    if count != expected:
        problems.append(
            f"{base}: {count:,} sun_*.jpg files, but COSMOS's random_split("
            f"{list(COSMOS_SPLITS['sun397'])}) (src/dataloaders/sun397.py:32-37) needs exactly "
            f"{expected:,}: it raises; the tree is incomplete or holds extra files (set "
            f"fingerprint {fingerprint.hexdigest()})"
        )
    if not problems:
        log.warning(
            "%s: %d images, set fingerprint %s. torchvision lists them in directory order "
            "(sun397.py:53, an unsorted rglob) and COSMOS seeds its split with seed + "
            "hash('sun397') %% 2048 (salted per process unless PYTHONHASHSEED is set): COSMOS's "
            "SUN397 test subset differs between file systems, machines and runs. Compare "
            "fingerprints to know two trees hold the same images.",
            base,
            count,
            fingerprint.hexdigest(),
        )
    return problems


# ---- StanfordCars: StanfordCars(root, split='test') (src/dataloaders/stanford_car.py:24-25) ---


def _loadmat(path: Path) -> dict:
    import scipy.io  # torchvision's reader; only these checks need it

    return scipy.io.loadmat(path, squeeze_me=True)


def _check_stanford_cars(root: Path, catalog: Catalog) -> list[str]:
    base = root / "classification" / "stanford_cars"  # stanford_cars.py:56-57
    annos, images = base / "cars_test_annos_withlabels.mat", base / "cars_test"  # :62-64
    meta = base / "devkit" / "cars_meta.mat"  # :80
    if not ((base / "devkit").is_dir() and annos.is_file() and images.is_dir()):
        return [
            f"{base}: needs devkit/, cars_test_annos_withlabels.mat and cars_test/ "
            "(_check_exists, stanford_cars.py:98-102, raises 'Dataset not found.')"
        ]
    try:
        classes = len(_loadmat(meta)["class_names"])
        rows = [(str(a["fname"]), int(a["class"])) for a in _loadmat(annos)["annotations"]]
    except Exception as err:  # noqa: BLE001 - a missing file, field or a broken .mat
        return [f"{base}: devkit/cars_meta.mat or {annos.name} unreadable as torchvision reads "
                f"them (stanford_cars.py:72-80): {err!r}"]  # fmt: skip
    problems = _missing_files((images / f for f, _ in rows), f"{annos} (stanford_cars.py:74)")
    bad = [f for f, c in rows if not 1 <= c <= classes]
    if bad:
        problems.append(f"{annos}: classes outside 1..{classes} for {bad[:3]}")
    return problems


# ---- FGVC-Aircraft: FGVCAircraft(root, annotation_level='variant', split='test')
# (src/dataloaders/fgvc_aircraft.py:24) ----


def _check_fgvc_aircraft(root: Path, catalog: Catalog) -> list[str]:
    data = root / "classification" / "fgvc-aircraft-2013b" / "data"  # fgvc_aircraft.py:62, 69-84
    variants, listing = data / "variants.txt", data / "images_variant_test.txt"
    if not (variants.is_file() and listing.is_file()):
        return [f"{data}: variants.txt and images_variant_test.txt must exist (:69-89 open them)"]
    with open(variants, encoding="utf-8") as f:
        classes = {line.strip() for line in f}  # :78-79
    problems, unknown = [], []

    def paths():
        for line in _lines(listing):
            name, space, label = line.strip().partition(" ")  # :91, ValueError if no space
            if (not space or label not in classes) and len(unknown) < 3:  # :93, KeyError
                unknown.append(line.strip())
            yield data / "images" / f"{name}.jpg"  # :83, 92

    problems += _missing_files(paths(), f"{listing} (fgvc_aircraft.py:92)")
    if unknown:
        problems.append(f"{listing}: lines without a variant of variants.txt (:91-93): {unknown}")
    return problems


# ---- DTD: DTD(root, split='test') (partition 1; src/dataloaders/dtd.py:42) ----


def _check_dtd(root: Path, catalog: Catalog) -> list[str]:
    data = root / "classification" / "dtd" / "dtd"  # dtd.py:57-60: <root>/dtd/dtd
    listing = data / "labels" / "test1.txt"  # :70
    if not data.is_dir():  # _check_exists, :99-100
        return [f"{data}: missing: torchvision's DTD opens <root>/dtd/dtd (dtd.py:57-58)"]
    if not listing.is_file():
        return [f"{listing}: missing (dtd.py:70 opens it)"]
    bad = []

    def paths():
        for line in _lines(listing):
            parts = line.strip().split("/")  # :72, ValueError unless exactly two parts
            if len(parts) != 2:
                bad.append(line.strip())
                continue
            yield data / "images" / parts[0] / parts[1]  # :73

    problems = _missing_files(paths(), f"{listing} (dtd.py:73)")
    if bad:
        problems.append(f"{listing}: lines not '<class>/<file>' (ValueError, :72): {bad[:3]}")
    return problems


# ---- Oxford-IIIT Pet: OxfordIIITPet(root, split='test') (src/dataloaders/oxford_pets.py:24) ---


def _check_oxford_pets(root: Path, catalog: Catalog) -> list[str]:
    base = root / "classification" / "oxford-iiit-pet"  # oxford_iiit_pet.py:61-63
    images, annotations = base / "images", base / "annotations"
    if not (images.is_dir() and annotations.is_dir()):  # _check_exists, :123-128
        return [f"{base}: images/ and annotations/ must be folders (oxford_iiit_pet.py:123-128)"]
    listing = annotations / "test.txt"  # :75
    if not listing.is_file():
        return [f"{listing}: missing (oxford_iiit_pet.py:75 opens it)"]
    bad = []

    def paths():
        for line in _lines(listing):
            fields = line.split()  # :77, four fields, the second and third integers
            if len(fields) != 4 or not (fields[1].isdigit() and fields[2].isdigit()):
                bad.append(line.strip())
                continue
            yield images / f"{fields[0]}.jpg"  # :93

    problems = _missing_files(paths(), f"{listing} (oxford_iiit_pet.py:93)")
    if bad:
        problems.append(f"{listing}: lines not '<id> <class> <species> <breed>': {bad[:3]}")
    return problems


# ---- Caltech101: Caltech101(root) (src/dataloaders/caltech101.py:29), then random_split ----


def _check_caltech101(root: Path, catalog: Catalog) -> list[str]:
    base = root / "classification" / "caltech101" / "101_ObjectCategories"  # caltech.py:49, 61
    if not base.exists():  # _check_integrity, :125-127
        return [f"{base}: missing (caltech.py:58-59 raises 'Dataset not found or corrupted')"]
    categories = sorted(os.listdir(base))  # :61
    if "BACKGROUND_Google" not in categories:  # :62, list.remove raises ValueError
        return [
            f"{base}: no BACKGROUND_Google/: torchvision removes it from the classes "
            "(caltech.py:62) and raises ValueError without it"
        ]
    categories.remove("BACKGROUND_Google")
    problems, total = [], 0
    for category in categories:
        folder = base / category
        if not folder.is_dir():
            problems.append(f"{folder}: not a folder, but listed as a class (caltech.py:61, 78)")
            continue
        names = os.listdir(folder)  # :78 counts every entry; :92-98 opens image_%04d.jpg
        expected = {f"image_{n:04d}.jpg" for n in range(1, len(names) + 1)}
        odd = sorted(set(names) - expected)
        if odd:
            problems.append(
                f"{folder}: {odd[:3]} break the image_0001.jpg..image_{len(names):04d}.jpg "
                "sequence torchvision indexes by count (caltech.py:78, 97): those samples "
                "would fail to open"
            )
        total += len(names)
    expected = expected_images(catalog, "caltech101")
    if total != expected:
        problems.append(
            f"{base}: {total:,} images outside BACKGROUND_Google, but COSMOS's random_split("
            f"{list(COSMOS_SPLITS['caltech101'])}) (src/dataloaders/caltech101.py:30-34) needs "
            f"exactly {expected:,}: it raises"
        )
    return problems


# ---- Flowers102: Flowers102(root, split='test') (src/dataloaders/flowers102.py:43) ----


def _check_flowers102(root: Path, catalog: Catalog) -> list[str]:
    base = root / "classification" / "flowers-102"  # flowers102.py:57-58
    if not (base / "jpg").is_dir():  # _check_integrity, :100-102
        return [f"{base / 'jpg'}: missing (flowers102.py:101 raises 'Dataset not found')"]
    problems = []
    for entry, (name, torchvision_md5) in FLOWERS_MD5.items():
        path = base / name
        # torchvision's md5 (:104-107), as the catalog has it; a stand-in's catalog its own
        expected = (catalog.get(entry) or {}).get("md5") or torchvision_md5
        if not path.is_file():
            problems.append(f"{path}: missing (flowers102.py:104-107)")
        elif hash_file(path, hashlib.md5()) != expected:
            problems.append(
                f"{path}: md5 is not {expected}: torchvision checks it on every load "
                "(flowers102.py:104-107) and raises 'Dataset not found or corrupted'"
            )
    if problems:
        return problems
    try:
        ids = _loadmat(base / "setid.mat")["tstid"].tolist()  # :68-69
        labels = _loadmat(base / "imagelabels.mat")["labels"]  # :71-72
    except Exception as err:  # noqa: BLE001
        return [
            f"{base}: setid.mat / imagelabels.mat unreadable as torchvision reads them: {err!r}"
        ]
    ids = ids if isinstance(ids, list) else [ids]
    beyond = [i for i in ids if not 1 <= i <= len(labels)]
    if beyond:
        problems.append(f"{base}/setid.mat: test ids without a label (KeyError, :77): {beyond[:3]}")
    paths = (base / "jpg" / f"image_{i:05d}.jpg" for i in ids)  # :78
    return problems + _missing_files(paths, f"{base}/setid.mat tstid (flowers102.py:78)")


# Registered in vlprep.consumers.COSMOS_CHECKS by product (vlprep.products.classification).
CLASSIFICATION_CHECKS: dict[str, Check] = {
    "cosmos_cifar10": _check_cifar("cifar10"),
    "cosmos_cifar100": _check_cifar("cifar100"),
    "cosmos_food101": _check_food101,
    "cosmos_sun397": _check_sun397,
    "cosmos_stanford_cars": _check_stanford_cars,
    "cosmos_fgvc_aircraft": _check_fgvc_aircraft,
    "cosmos_dtd": _check_dtd,
    "cosmos_oxford_pets": _check_oxford_pets,
    "cosmos_caltech101": _check_caltech101,
    "cosmos_flowers102": _check_flowers102,
}
