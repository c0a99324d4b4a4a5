"""ImageNet-1k val as torchvision's ImageFolder opens it: `val_images/<wnid>/<file>.JPEG`.

COSMOS (ExplainableML/cosmos c80348f) passes `--imagenet-val` to
`torchvision.datasets.ImageFolder(path)` (src/training/data.py:156): classes are the sorted
names of the sub-folders, samples every file with an image extension below them. The images
are the store's, one link each (vlprep.layout.assemble): nothing is moved or copied (unless
link_mode says copy), so the store stays as it was unpacked.

Which wnid each image belongs to:

- hub route (ILSVRC/imagenet-1k, data/val_images.tar.gz): the name says it,
  `ILSVRC2012_val_00000001_n01751748.JPEG`; grouped exactly as COSMOS's
  datasets/imagenet_organize.py:19 does, `name.split('_')[-1].split('.')[0]`.
- manual route (ILSVRC2012_img_val.tar + ILSVRC2012_devkit_t12.tar.gz): line n of the devkit's
  data/ILSVRC2012_validation_ground_truth.txt is the ILSVRC2012_ID of ILSVRC2012_val_<n:08d>.JPEG,
  and data/meta.mat's `synsets` maps the IDs of the 1,000 leaf synsets (num_children == 0) to
  their WNID, as torchvision 0.29.1 datasets/imagenet.py:120-135 reads them (scipy's loadmat;
  torch is not needed). torchvision pairs the labels with the sorted file names
  (imagenet.py:216-222); here each file is named by its number, which is the same order.

Both stream: the ground truth is read line by line while the links are made, the hub tree is
walked folder by folder; what is kept is one count per class. The tree is checked against the
catalog's `images` and `classes` (50,000 and 1,000, each class the same share) before it is
renamed into place, so a short archive or a wrong devkit never leaves a tree at the final path.
"""

import io
import logging
import os
import re
import tarfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vlprep.errors import VlprepError
from vlprep.layout import assemble

log = logging.getLogger(__name__)

WNID = re.compile(r"n\d{8}")
MANUAL_NAME = re.compile(r"ILSVRC2012_val_(\d{8})\.JPEG")
DEVKIT_DIR = "ILSVRC2012_devkit_t12"
META_MAT = f"{DEVKIT_DIR}/data/meta.mat"
GROUND_TRUTH = f"{DEVKIT_DIR}/data/ILSVRC2012_validation_ground_truth.txt"
# torchvision's folder.py:257: the extensions ImageFolder keeps (compared lower-cased).
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
SKIPPED = {".snakemake_timestamp"}


def hub_wnid(name: str) -> str:
    """The wnid of a hub file name, as imagenet_organize.py:19 takes it."""
    return name.split("_")[-1].split(".")[0]


def _store_files(store: Path) -> Iterator[Path]:
    """Every file under `store` (sorted per folder, hidden ones and markers left out)."""
    for dirpath, dirnames, filenames in os.walk(store):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name not in SKIPPED and not name.startswith("."):
                yield Path(dirpath, name)


def hub_members(store: str | Path, archive: str) -> Iterator[tuple[str, Path]]:
    """(`<wnid>/<name>`, store file) for every image of the unpacked hub archive."""
    store = Path(store)
    for path in _store_files(store):
        wnid = hub_wnid(path.name)
        if not WNID.fullmatch(wnid) or not path.name.lower().endswith(IMG_EXTENSIONS):
            raise VlprepError(
                f"{path}: in {archive}, not an image named ILSVRC2012_val_<n>_<wnid>.JPEG (its "
                f"wnid part is {wnid!r}): this is not the hub's ImageNet val archive; check "
                "the imagenet_val_hub entry's repo, revision and archive_file in the catalog"
            )
        yield f"{wnid}/{path.name}", path


# ---- manual route: the devkit ------------------------------------------------------------------


@contextmanager
def _devkit_member(devkit: Path, name: str) -> Iterator[io.BufferedReader]:
    """One member of the devkit archive, open for reading."""
    fix = "replace ILSVRC2012_devkit_t12.tar.gz in manual_dir with the one from image-net.org"
    try:
        tar = tarfile.open(devkit, "r:*")  # noqa: SIM115 - closed by the `with tar` below
    except (tarfile.TarError, OSError, EOFError) as err:
        raise VlprepError(f"{devkit}: not a readable tar.gz ({err}); {fix}") from None
    with tar:
        try:
            handle = tar.extractfile(tar.getmember(name))
        except KeyError:
            raise VlprepError(f"{devkit}: has no {name}, so it is not the devkit; {fix}") from None
        except (tarfile.TarError, OSError, EOFError) as err:
            raise VlprepError(f"{devkit}: cannot read {name} ({err}); {fix}") from None
        if handle is None:
            raise VlprepError(f"{devkit}: {name} is not a regular file; {fix}")
        with handle:
            yield handle


def leaf_wnids(devkit: str | Path) -> dict[int, str]:
    """ILSVRC2012_ID -> WNID of the leaf synsets in the devkit's data/meta.mat (the 1,000
    classes), as torchvision's parse_meta_mat (imagenet.py:120-129)."""
    import scipy.io

    devkit = Path(devkit)
    with _devkit_member(devkit, META_MAT) as handle:
        data = handle.read()
    try:
        synsets = scipy.io.loadmat(io.BytesIO(data), squeeze_me=True)["synsets"]
        ids, wnids, children = (
            synsets["ILSVRC2012_ID"], synsets["WNID"], synsets["num_children"],
        )  # fmt: skip
    except Exception as err:  # noqa: BLE001 - any unreadable meta.mat is the same problem
        raise VlprepError(
            f"{devkit}: {META_MAT} is not the devkit's synset table ({type(err).__name__}: "
            f"{err}); replace the devkit in manual_dir with the one from image-net.org"
        ) from None
    leaves = {int(i): str(w) for i, w, n in zip(ids, wnids, children, strict=True) if int(n) == 0}
    bad = [w for w in leaves.values() if not WNID.fullmatch(w)]
    if bad or len(set(leaves.values())) != len(leaves):
        raise VlprepError(f"{devkit}: {META_MAT}: leaf WNIDs malformed or repeated ({bad[:3]})")
    return leaves


def manual_members(
    images: str | Path, devkit: str | Path, tar_name: str
) -> Iterator[tuple[str, Path]]:
    """(`<wnid>/ILSVRC2012_val_<n>.JPEG`, store file) for line n of the devkit's ground truth;
    afterwards, every file of the unpacked val tar must have been named once."""
    images, devkit = Path(images), Path(devkit)
    wnids = leaf_wnids(devkit)
    count = 0
    with _devkit_member(devkit, GROUND_TRUTH) as handle:
        for count, line in enumerate(
            io.TextIOWrapper(handle, encoding="ascii", errors="replace"), start=1
        ):
            try:
                wnid = wnids[int(line)]
            except (ValueError, KeyError):
                raise VlprepError(
                    f"{devkit}: {GROUND_TRUTH} line {count} is {line.strip()!r}, not the ID of "
                    f"one of meta.mat's {len(wnids)} leaf synsets; replace the devkit"
                ) from None
            name = f"ILSVRC2012_val_{count:08d}.JPEG"
            path = images / name
            if not path.is_file():
                raise VlprepError(
                    f"{tar_name} has no {name}, which line {count} of the devkit's ground truth "
                    f"labels: the val tar is incomplete or not ILSVRC2012_img_val.tar; replace it "
                    "in manual_dir with the one from image-net.org"
                )
            yield f"{wnid}/{name}", path
    if count == 0:
        raise VlprepError(f"{devkit}: {GROUND_TRUTH} is empty; replace the devkit")
    unlabelled = 0
    first = None
    for path in _store_files(images):
        match = MANUAL_NAME.fullmatch(path.name)
        if match is None or not 1 <= int(match.group(1)) <= count or path.parent != images:
            unlabelled += 1
            first = first or path
    if unlabelled:
        raise VlprepError(
            f"{tar_name}: {unlabelled} file(s) the devkit's ground truth ({count} lines) does not "
            f"label (first: {first}); the val tar and the devkit do not belong together"
        )


# ---- the tree ----------------------------------------------------------------------------------


def _counted(
    members: Iterator[tuple[str, Path]], counts: Counter, images: int, classes: int, what: str
) -> Iterator[tuple[str, Path]]:
    """The members, counted per class; at the end, the counts must be the catalog's."""
    for rel, path in members:
        counts[rel.split("/", 1)[0]] += 1
        yield rel, path
    problem = shape_problem(counts, images, classes)
    if problem:
        raise VlprepError(f"{what}: {problem}")


def shape_problem(counts: Counter, images: int, classes: int) -> str | None:
    """Why per-class `counts` are not `classes` classes of images/classes each, or None."""
    total = sum(counts.values())
    per_class = images // classes
    uneven = {wnid: n for wnid, n in sorted(counts.items()) if n != per_class}
    if total == images and len(counts) == classes and not uneven:
        return None
    sample = ", ".join(f"{w}: {n}" for w, n in list(uneven.items())[:3])
    return (
        f"{total} images in {len(counts)} classes, the catalog says {images} in {classes} "
        f"({per_class} each)" + (f"; uneven classes: {sample}" if uneven else "")
    )


def build_val_images(
    route: str,
    dst: str | Path,
    *,
    store: str | Path,
    devkit: str | Path | None,
    images: int,
    classes: int,
    link_mode: str,
    source: str,
) -> dict[str, int]:
    """Build `dst` (val_images/) from the unpacked archive `store` of `route`; return counts.

    `source` names the archive in messages. `images`/`classes` are the catalog's counts the
    tree must have. `dst` appears only complete and checked.
    """
    if classes < 1 or images % classes:
        raise VlprepError(
            f"{source}: catalog images {images} is not a multiple of classes {classes}"
        )
    if route == "hub":
        members = hub_members(store, source)
    elif route == "manual":
        if devkit is None:
            raise VlprepError("the manual route needs the devkit")
        members = manual_members(store, devkit, source)
    else:
        raise VlprepError(f"imagenet_source route {route!r} is not hub or manual")
    counts: Counter = Counter()
    result = assemble(dst, _counted(members, counts, images, classes, source), mode=link_mode)
    log.info(
        "%s: %d images in %d wnid folders (%s route, %s)",
        dst,
        result["members"],
        len(counts),
        route,
        link_mode,
    )
    return {"images": result["members"], "classes": len(counts)}
