"""Stand-in sources of COSMOS's ten classification sets, tiny and format-faithful.

Each file is shaped like the real download torchvision 0.29.1 gets (research/cosmos-glamm.md
§3): the same archive kind and top folder, the same inner names, and the fields torchvision
reads, with a few classes and a few images per class, generated deterministically (fixed
seeds, tar and gzip times, zip dates):

- CIFAR-10/100: `cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}` and
  `cifar-100-python/{train,test,meta}`, pickles of dicts with `data` (N x 3072 uint8),
  `labels` / `fine_labels` + `coarse_labels`, and the meta keys `label_names` /
  `fine_label_names` + `coarse_label_names`.
- Food-101: `food-101/{images/<class>/<id>.jpg, meta/{train,test}.json, meta/*.txt}`.
- SUN397: `SUN397/{ClassName.txt, README.txt, <letter>/<class>[/<sub>]/sun_<16 letters>.jpg}`,
  one class two levels deep as `/a/apartment_building/outdoor` is.
- StanfordCars (manual files): `car_devkit.tgz` (`devkit/cars_meta.mat` with `class_names`,
  `cars_{train,test}_annos.mat`), `cars_test.tgz` (`cars_test/%05d.jpg`) and
  `cars_test_annos_withlabels.mat` (`annotations`: bbox_x1..y2, class, fname).
- FGVC-Aircraft: `fgvc-aircraft-2013b/data/{images/<7 digits>.jpg, variants.txt,
  families.txt, manufacturers.txt, images_<level>_<split>.txt}`, with variant names holding a
  space and a slash, as real ones do ("Cessna 172", "F-16A/B").
- DTD: `dtd/{images/<class>/<class>_%04d.jpg, labels/{train,val,test}<1..10>.txt}`.
- Oxford-IIIT Pet: `images.tar.gz` (`images/<Breed>_<n>.jpg`) and `annotations.tar.gz`
  (`annotations/{list,trainval,test}.txt, trimaps/<id>.png, xmls/<id>.xml}`).
- Caltech101: `caltech-101.zip` holding `caltech-101/{101_ObjectCategories.tar.gz,
  Annotations.tar, show_annotation.m}` (and macOS `__MACOSX/` leftovers, which the real zip is
  said to have: unverified); the tar.gz has `101_ObjectCategories/<class>/image_%04d.jpg` with
  `BACKGROUND_Google/`, the tar `Annotations/<class>/annotation_%04d.mat` (`box_coord`,
  `obj_contour`) under the annotation folder names torchvision maps to (`Faces_2`,
  `Airplanes_Side_2`).
- Flowers102: `102flowers.tgz` (`jpg/image_%05d.jpg`), `imagelabels.mat` (`labels`),
  `setid.mat` (`trnid`, `valid`, `tstid`).

`IMAGES` is what the world writes into its catalog's `images:` for the entries whose count
COSMOS's random_split fixes (the real catalog has 8,677 and 108,754).
"""

import gzip
import io
import json
import pickle
import random
import tarfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from standin.coco import _jpeg, _zipinfo

TAR_MTIME = 1_262_304_000  # 2010-01-01
ZIP_DATE = (2022, 4, 5, 10, 0, 0)
MAT_HEADER = b"MATLAB 5.0 MAT-file, written by vlprep's stand-in world".ljust(116)

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]  # fmt: skip
CIFAR100_FINE = ["apple", "aquarium_fish", "baby", "bear", "beaver"]
CIFAR100_COARSE = ["aquatic_mammals", "fish", "flowers"]
FOOD_CLASSES = ["apple_pie", "baby_back_ribs", "baklava"]
SUN_CLASSES = ["/a/abbey", "/a/apartment_building/outdoor", "/b/ballroom"]
CARS_CLASSES = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Acura TL Sedan 2012"]
# variant, family, manufacturer
AIRCRAFT = [("707-320", "Boeing 707", "Boeing"), ("Cessna 172", "Cessna 172", "Cessna"),
            ("F-16A/B", "F-16", "Lockheed Martin")]  # fmt: skip
DTD_CLASSES = ["banded", "blotchy", "braided"]
# image prefix, CLASS-ID, SPECIES (1 cat, 2 dog), BREED ID (annotations/list.txt)
PETS = [("Abyssinian", 1, 1, 1), ("american_bulldog", 2, 2, 1),
        ("american_pit_bull_terrier", 3, 2, 2)]  # fmt: skip
# image folder -> annotation folder (torchvision caltech.py:67-72 maps these four names)
CALTECH_CLASSES = {"Faces": "Faces_2", "accordion": "accordion", "airplanes": "Airplanes_Side_2"}
CALTECH_PER_CLASS = {"Faces": 3, "accordion": 2, "airplanes": 4}
CALTECH_BACKGROUND = 2
SUN_PER_CLASS = 3
FLOWERS_IMAGES = 12

IMAGES = {
    "caltech101": sum(CALTECH_PER_CLASS.values()),
    "sun397": SUN_PER_CLASS * len(SUN_CLASSES),
}


def _jpg(rng: random.Random) -> bytes:
    width, height = rng.choice([(40, 30), (30, 40), (36, 36)])
    return _jpeg(rng, width, height, None)


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    """An uncompressed tar of `files` ({path: bytes}) with a directory entry before the files
    of each folder, as `tar czf` of a folder writes them."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        made: set[str] = set()
        for name in sorted(files):
            parts = name.split("/")
            for depth in range(1, len(parts)):
                folder = "/".join(parts[:depth])
                if folder not in made:
                    made.add(folder)
                    info = tarfile.TarInfo(folder + "/")
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, TAR_MTIME
                    tf.addfile(info)
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(files[name]), 0o644, TAR_MTIME
            tf.addfile(info, io.BytesIO(files[name]))
    return buf.getvalue()


def _gzip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _targz(path: Path, files: dict[str, bytes]) -> Path:
    return _write(path, _gzip(_tar_bytes(files)))


def _mat(fields: dict) -> bytes:
    """A MATLAB 5 .mat of `fields`, as scipy.io.loadmat (torchvision's reader) reads it."""
    buf = io.BytesIO()
    scipy.io.savemat(buf, fields, do_compression=False, oned_as="row")
    # The 116-byte text header holds the time of writing: a fixed one keeps the bytes stable.
    return MAT_HEADER + buf.getvalue()[len(MAT_HEADER) :]


def _cells(strings: Iterable[str]) -> np.ndarray:
    """A 1 x N MATLAB cell array of strings."""
    values = list(strings)
    cells = np.empty((1, len(values)), dtype=object)
    for index, value in enumerate(values):
        cells[0, index] = value
    return cells


def _pickle(obj: dict) -> bytes:
    return pickle.dumps(obj, protocol=2)


def _pixels(rng: random.Random, rows: int) -> np.ndarray:
    return np.frombuffer(rng.randbytes(rows * 3072), dtype=np.uint8).reshape(rows, 3072)


def _cifar10(out: Path) -> Path:
    rng = random.Random("standin:cifar10")
    top = "cifar-10-batches-py"
    files = {}
    batches = [(f"data_batch_{i}", f"training batch {i} of 5", 3) for i in range(1, 6)]
    for name, label, rows in [*batches, ("test_batch", "testing batch 1 of 1", 8)]:
        files[f"{top}/{name}"] = _pickle(
            {
                "batch_label": label,
                "labels": [rng.randrange(10) for _ in range(rows)],
                "data": _pixels(rng, rows),
                "filenames": [f"standin_{name}_{i}.png" for i in range(rows)],
            }
        )
    meta = {"num_cases_per_batch": 3, "label_names": CIFAR10_CLASSES, "num_vis": 3072}
    files[f"{top}/batches.meta"] = _pickle(meta)
    files[f"{top}/readme.html"] = b"<meta HTTP-EQUIV='REFRESH'>\n"
    return _targz(out / "cifar-10-python.tar.gz", files)


def _cifar100(out: Path) -> Path:
    rng = random.Random("standin:cifar100")
    top = "cifar-100-python"
    files = {}
    for name, rows in (("train", 10), ("test", 7)):
        files[f"{top}/{name}"] = _pickle(
            {
                "filenames": [f"standin_{name}_{i}.png" for i in range(rows)],
                "batch_label": f"{name}ing batch 1 of 1",
                "fine_labels": [rng.randrange(len(CIFAR100_FINE)) for _ in range(rows)],
                "coarse_labels": [rng.randrange(len(CIFAR100_COARSE)) for _ in range(rows)],
                "data": _pixels(rng, rows),
            }
        )
    meta = {"fine_label_names": CIFAR100_FINE, "coarse_label_names": CIFAR100_COARSE}
    files[f"{top}/meta"] = _pickle(meta)
    return _targz(out / "cifar-100-python.tar.gz", files)


def _food101(out: Path) -> Path:
    rng = random.Random("standin:food101")
    top = "food-101"
    files: dict[str, bytes] = {}
    splits: dict[str, dict[str, list[str]]] = {"train": {}, "test": {}}
    for cls in FOOD_CLASSES:
        ids = sorted(rng.sample(range(100_000, 4_000_000), 5))
        for index, image_id in enumerate(ids):
            files[f"{top}/images/{cls}/{image_id}.jpg"] = _jpg(rng)
            split = "test" if index < 2 else "train"
            splits[split].setdefault(cls, []).append(f"{cls}/{image_id}")
    for split, table in splits.items():
        files[f"{top}/meta/{split}.json"] = json.dumps(table).encode()
        lines = [path for cls in FOOD_CLASSES for path in table[cls]]
        files[f"{top}/meta/{split}.txt"] = "\n".join(lines).encode() + b"\n"
    files[f"{top}/meta/classes.txt"] = "\n".join(FOOD_CLASSES).encode() + b"\n"
    labels = [cls.replace("_", " ").capitalize() for cls in FOOD_CLASSES]
    files[f"{top}/meta/labels.txt"] = "\n".join(labels).encode() + b"\n"
    files[f"{top}/README.txt"] = b"Food-101 (stand-in)\n"
    files[f"{top}/license_agreement.txt"] = b"stand-in\n"
    return _targz(out / "food-101.tar.gz", files)


def _sun_name(rng: random.Random) -> str:
    return "sun_" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(16))


def _sun397(out: Path) -> Path:
    rng = random.Random("standin:sun397")
    files = {"SUN397/ClassName.txt": "".join(f"{c}\n" for c in SUN_CLASSES).encode()}
    files["SUN397/README.txt"] = b"SUN397 (stand-in)\n"
    for cls in SUN_CLASSES:
        for _ in range(SUN_PER_CLASS):
            files[f"SUN397{cls}/{_sun_name(rng)}.jpg"] = _jpg(rng)
    return _targz(out / "SUN397.tar.gz", files)


def _annotations(rows: list[tuple], with_class: bool) -> np.ndarray:
    """A 1 x N struct array like the devkit's `annotations` (bbox_x1, ..., class, fname)."""
    fields = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2"] + (["class"] if with_class else [])
    dtype = [(name, "O") for name in [*fields, "fname"]]
    table = np.zeros((1, len(rows)), dtype=dtype)
    for index, (fname, cls) in enumerate(rows):
        values = [np.array([[1]]), np.array([[2]]), np.array([[30]]), np.array([[20]])]
        values += [np.array([[cls]], dtype=np.uint8)] if with_class else []
        table[0, index] = (*values, np.array([fname]))
    return table


def _stanford_cars(out: Path) -> dict[str, Path]:
    rng = random.Random("standin:stanford_cars")
    test = [(f"{i:05d}.jpg", 1 + (i - 1) % len(CARS_CLASSES)) for i in range(1, 8)]
    train = [(f"{i:05d}.jpg", 1 + i % len(CARS_CLASSES)) for i in range(1, 5)]
    devkit = {
        "devkit/cars_meta.mat": _mat({"class_names": _cells(CARS_CLASSES)}),
        "devkit/cars_train_annos.mat": _mat({"annotations": _annotations(train, True)}),
        "devkit/cars_test_annos.mat": _mat({"annotations": _annotations(test, False)}),
        "devkit/README.txt": b"Stanford Cars devkit (stand-in)\n",
        "devkit/train_perfect_preds.txt": "".join(f"{c}\n" for _, c in train).encode(),
        "devkit/eval_train.m": b"% stand-in\n",
    }
    images = {f"cars_test/{fname}": _jpg(rng) for fname, _ in test}
    labels = _write(
        out / "cars_test_annos_withlabels.mat", _mat({"annotations": _annotations(test, True)})
    )
    return {
        "stanford_cars_devkit": _targz(out / "car_devkit.tgz", devkit),
        "stanford_cars_test": _targz(out / "cars_test.tgz", images),
        "stanford_cars_test_annos": labels,
    }


def _fgvc_aircraft(out: Path) -> Path:
    rng = random.Random("standin:fgvc_aircraft")
    data = "fgvc-aircraft-2013b/data"
    files: dict[str, bytes] = {}
    rows: dict[str, list[tuple[str, int]]] = {"train": [], "val": [], "test": []}
    ids = sorted(rng.sample(range(1_000_000, 2_300_000), 4 * len(AIRCRAFT)))
    for index, image_id in enumerate(ids):
        name = f"{image_id:07d}"
        files[f"{data}/images/{name}.jpg"] = _jpg(rng)
        rows[("train", "val", "test", "test")[index % 4]].append((name, index % len(AIRCRAFT)))
    rows["trainval"] = sorted(rows["train"] + rows["val"])
    for level, column in (("variant", 0), ("family", 1), ("manufacturer", 2)):
        names = sorted({a[column] for a in AIRCRAFT})
        listing = {"variant": "variants", "family": "families", "manufacturer": "manufacturers"}
        files[f"{data}/{listing[level]}.txt"] = "".join(f"{n}\n" for n in names).encode()
        for split, members in rows.items():
            lines = "".join(f"{name} {AIRCRAFT[cls][column]}\n" for name, cls in members)
            files[f"{data}/images_{level}_{split}.txt"] = lines.encode()
    for split, members in rows.items():
        files[f"{data}/images_{split}.txt"] = "".join(f"{n}\n" for n, _ in members).encode()
    files["fgvc-aircraft-2013b/README.html"] = b"<html>FGVC-Aircraft (stand-in)</html>\n"
    return _targz(out / "fgvc-aircraft-2013b.tar.gz", files)


def _dtd(out: Path) -> Path:
    rng = random.Random("standin:dtd")
    files: dict[str, bytes] = {}
    names = {cls: [f"{cls}_{n:04d}.jpg" for n in sorted(rng.sample(range(1, 200), 3))]
             for cls in DTD_CLASSES}  # fmt: skip
    for cls, images in names.items():
        for name in images:
            files[f"dtd/images/{cls}/{name}"] = _jpg(rng)
    for partition in range(1, 11):
        for offset, split in enumerate(("train", "val", "test")):
            lines = [f"{cls}/{names[cls][(partition + offset) % 3]}" for cls in DTD_CLASSES]
            files[f"dtd/labels/{split}{partition}.txt"] = "\n".join(lines).encode() + b"\n"
    return _targz(out / "dtd-r1.0.1.tar.gz", files)


def _png(size: tuple[int, int], rng: random.Random) -> bytes:
    buf = io.BytesIO()
    data = bytes(rng.choice((1, 2, 3)) for _ in range(size[0] * size[1]))
    Image.frombytes("L", size, data).save(buf, "PNG")
    return buf.getvalue()


def _oxford_pets(out: Path) -> dict[str, Path]:
    rng = random.Random("standin:oxford_pets")
    images, annotations = {}, {}
    listed, trainval, test = [], [], []
    for breed, class_id, species, breed_id in PETS:
        for n in range(1, 5):
            image_id = f"{breed}_{n}"
            images[f"images/{image_id}.jpg"] = _jpg(rng)
            annotations[f"annotations/trimaps/{image_id}.png"] = _png((12, 9), rng)
            row = f"{image_id} {class_id} {species} {breed_id}"
            listed.append(row)
            if n <= 2:
                trainval.append(row)
                annotations[f"annotations/xmls/{image_id}.xml"] = (
                    f"<annotation><filename>{image_id}.jpg</filename></annotation>\n".encode()
                )
            else:
                test.append(row)
    header = "#Image CLASS-ID SPECIES BREED ID\n#ID: 1:37 Class ids\n#SPECIES: 1:Cat 2:Dog\n"
    annotations["annotations/list.txt"] = (header + "\n".join(listed) + "\n").encode()
    annotations["annotations/trainval.txt"] = ("\n".join(trainval) + "\n").encode()
    annotations["annotations/test.txt"] = ("\n".join(test) + "\n").encode()
    annotations["annotations/README"] = b"Oxford-IIIT Pet annotations (stand-in)\n"
    return {
        "oxford_pets_images": _targz(out / "pets" / "images.tar.gz", images),
        "oxford_pets_annotations": _targz(out / "pets" / "annotations.tar.gz", annotations),
    }


def _caltech101(out: Path) -> Path:
    rng = random.Random("standin:caltech101")
    categories = {}
    for cls, count in [("BACKGROUND_Google", CALTECH_BACKGROUND), *CALTECH_PER_CLASS.items()]:
        for n in range(1, count + 1):
            categories[f"101_ObjectCategories/{cls}/image_{n:04d}.jpg"] = _jpg(rng)
    annotations = {}
    for cls, folder in CALTECH_CLASSES.items():
        for n in range(1, CALTECH_PER_CLASS[cls] + 1):
            contour = np.array([[1.0, 20.0, 20.0, 1.0], [1.0, 1.0, 15.0, 15.0]])
            fields = {"box_coord": np.array([[2, 28, 3, 38]]), "obj_contour": contour}
            annotations[f"Annotations/{folder}/annotation_{n:04d}.mat"] = _mat(fields)
    members = [
        ("caltech-101/", b""),
        ("caltech-101/101_ObjectCategories.tar.gz", _gzip(_tar_bytes(categories))),
        ("caltech-101/Annotations.tar", _tar_bytes(annotations)),
        ("caltech-101/show_annotation.m", b"% stand-in\n"),
        ("__MACOSX/", b""),
        ("__MACOSX/caltech-101/", b""),
        ("__MACOSX/caltech-101/._101_ObjectCategories.tar.gz", b"\x00\x05\x16\x07"),
    ]
    path = out / "caltech-101.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members:
            zf.writestr(_zipinfo(name, ZIP_DATE, zipfile.ZIP_STORED), data)
    return path


def _flowers102(out: Path) -> dict[str, Path]:
    rng = random.Random("standin:flowers102")
    images = {f"jpg/image_{n:05d}.jpg": _jpg(rng) for n in range(1, FLOWERS_IMAGES + 1)}
    labels = np.array([[1 + n % 3 for n in range(FLOWERS_IMAGES)]], dtype=np.uint8)
    ids = list(range(1, FLOWERS_IMAGES + 1))
    splits = {"trnid": ids[0::3], "valid": ids[1::3], "tstid": ids[2::3]}
    return {
        "flowers102_images": _targz(out / "flowers" / "102flowers.tgz", images),
        "flowers102_labels": _write(out / "flowers" / "imagelabels.mat", _mat({"labels": labels})),
        "flowers102_setid": _write(
            out / "flowers" / "setid.mat",
            _mat({k: np.array([v], dtype=np.uint16) for k, v in splits.items()}),
        ),
    }


def make_classification(out: Path) -> dict[str, Path]:
    """Write the stand-in files into `out`; return {catalog entry id: path}."""
    out = Path(out)
    return {
        "cifar10": _cifar10(out),
        "cifar100": _cifar100(out),
        "food101": _food101(out),
        "sun397": _sun397(out),
        **_stanford_cars(out / "stanford_cars"),
        "fgvc_aircraft": _fgvc_aircraft(out),
        "dtd": _dtd(out),
        **_oxford_pets(out),
        "caltech101": _caltech101(out),
        **_flowers102(out),
    }
