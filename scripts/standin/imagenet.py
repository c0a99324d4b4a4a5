"""ImageNet-1k val as COSMOS's two sources give it, tiny and format-faithful.

- The gated hub repo `ILSVRC/imagenet-1k` (`make_imagenet_repo`): `data/val_images.tar.gz`
  holding flat `ILSVRC2012_val_<8 digits>_<wnid>.JPEG` (the wnid in the name, as
  datasets/imagenet_organize.py:19 of COSMOS reads it), beside files vlprep must never fetch:
  train and test archives, the loading script, the README. `.standin.json` gates it: only
  `STANDIN_TOKEN` may download (401 without a token, 403 with another).
- The official files (`make_imagenet`), which a registered user downloads by hand:
  `ILSVRC2012_img_val.tar` (flat `ILSVRC2012_val_<8 digits>.JPEG`, no label anywhere in it) and
  `ILSVRC2012_devkit_t12.tar.gz` with `ILSVRC2012_devkit_t12/data/meta.mat` (MATLAB struct array
  `synsets`, 1860x1 in the real file, fields ILSVRC2012_ID, WNID, words, gloss, num_children,
  children, wordnet_height, num_train_images: written with scipy.io.savemat) and
  `data/ILSVRC2012_validation_ground_truth.txt` (line n: the ILSVRC2012_ID of val image n).

As in the real devkit, ILSVRC2012_IDs are not in wnid order (ID 1 is n02119789, kit fox) and
internal synsets (num_children > 0) sit in the same table: only leaves are classes. Both sources
hold the same images (same bytes, val image n has the same wnid).
"""

import gzip
import io
import json
import random
import tarfile
from pathlib import Path

from standin.coco import _jpeg
from standin.hub import _repo_dir, _write

IMAGENET_REPO = "ILSVRC/imagenet-1k"
# The token the stand-in hub lets through (the demo's and the tests' HF_TOKEN); the Hub's token
# format, so the scrubbing of logs is exercised.
STANDIN_TOKEN = "hf_standinImagenetToken0123456789"
# Leaf synsets (classes): real ImageNet wnids, listed here in ILSVRC2012_ID order (not sorted).
WNIDS = (
    "n02119789", "n02100735", "n02110185", "n02096294", "n02102040",
    "n02066245", "n02509815", "n02124075", "n02417914", "n02123394",
)  # fmt: skip
# Internal synsets of the same table (num_children > 0): never classes.
INTERNAL = (("n00001740", "entity"), ("n02084071", "dog, domestic dog"))
PER_CLASS = 3
SHAPE = {"images": len(WNIDS) * PER_CLASS, "classes": len(WNIDS)}
MTIME = 1_335_916_800  # 2012-05-02, when the ILSVRC2012 files were published
# Files of the hub repo a val-only download must never request.
NOT_FETCHED = ("data/train_images_0.tar.gz", "data/test_images.tar.gz")


def labels(seed: int = 0) -> list[int]:
    """The ILSVRC2012_ID (1-based) of val images 1..N, shuffled, PER_CLASS of each."""
    ids = [i + 1 for i in range(len(WNIDS)) for _ in range(PER_CLASS)]
    random.Random(f"imagenet-val:{seed}").shuffle(ids)
    return ids


def _images(seed: int = 0) -> list[bytes]:
    rng = random.Random(f"imagenet-images:{seed}")
    return [_jpeg(rng, *rng.choice([(64, 48), (48, 64), (50, 50)]), None) for _ in labels(seed)]


def _tar(members: list[tuple[str, bytes]], *, gz: bool) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.mtime, info.mode, info.uname, info.gname = MTIME, 0o644, "root", "root"
            if name.endswith("/"):
                info.type, info.mode, info.name = tarfile.DIRTYPE, 0o755, name.rstrip("/")
                tar.addfile(info)
                continue
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    if not gz:
        return raw.getvalue()
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as zipped:
        zipped.write(raw.getvalue())
    return out.getvalue()


def meta_mat() -> bytes:
    """The devkit's data/meta.mat: the `synsets` struct array, leaves and internal nodes."""
    import numpy as np
    import scipy.io

    fields = ("ILSVRC2012_ID", "WNID", "words", "gloss", "num_children", "children",
              "wordnet_height", "num_train_images")  # fmt: skip
    leaf_ids = list(range(1, len(WNIDS) + 1))
    rows = [
        (len(WNIDS) + 1, INTERNAL[0][0], INTERNAL[0][1], "that which is perceived", 1,
         np.array([len(WNIDS) + 2], dtype=np.uint16), 18, 0),
    ]  # fmt: skip
    for ident, wnid in zip(leaf_ids, WNIDS, strict=True):
        rows.append((ident, wnid, f"class {wnid}", f"a stand-in synset {wnid}", 0,
                     np.zeros(0, dtype=np.uint16), 0, 1300))  # fmt: skip
    rows.append((len(WNIDS) + 2, INTERNAL[1][0], INTERNAL[1][1], "a domesticated canid",
                 len(WNIDS), np.array(leaf_ids, dtype=np.uint16), 1, 0))  # fmt: skip
    table = np.empty((len(rows), 1), dtype=[(f, object) for f in fields])
    for index, row in enumerate(rows):
        table[index, 0] = row
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"synsets": table})
    return buf.getvalue()


def make_imagenet(out: Path, seed: int = 0) -> dict[str, Path]:
    """Write the official val tar and devkit into `out`; return {catalog file name: path}."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    images = _images(seed)
    val = out / "ILSVRC2012_img_val.tar"
    members = [(f"ILSVRC2012_val_{n:08d}.JPEG", data) for n, data in enumerate(images, 1)]
    val.write_bytes(_tar(members, gz=False))
    top = "ILSVRC2012_devkit_t12"
    truth = "".join(f"{label}\n" for label in labels(seed)).encode()
    devkit = out / "ILSVRC2012_devkit_t12.tar.gz"
    devkit.write_bytes(
        _tar(
            [
                (f"{top}/", b""),
                (f"{top}/COPYING", b"The ImageNet terms of access (stand-in).\n"),
                (f"{top}/readme.txt", b"ILSVRC2012 development kit (stand-in)\n"),
                (f"{top}/data/", b""),
                (f"{top}/data/ILSVRC2012_validation_ground_truth.txt", truth),
                (f"{top}/data/meta.mat", meta_mat()),
            ],
            gz=True,
        )
    )
    return {val.name: val, devkit.name: devkit}


def make_imagenet_repo(root: str | Path, *, seed: int = 0) -> Path:
    """Write the gated stand-in of the hub repository under `root`; return its folder."""
    repo = _repo_dir(root, IMAGENET_REPO)
    (repo / "data").mkdir(exist_ok=True)
    images = _images(seed)
    named = [
        (f"ILSVRC2012_val_{n:08d}_{WNIDS[label - 1]}.JPEG", data)
        for n, (label, data) in enumerate(zip(labels(seed), images, strict=True), 1)
    ]
    _write(repo / "data" / "val_images.tar.gz", _tar(named, gz=True))
    rng = random.Random(f"imagenet-train:{seed}")
    train = [(f"{WNIDS[i]}_{k}_{WNIDS[i]}.JPEG", _jpeg(rng, 40, 40, None))
             for i in range(len(WNIDS)) for k in range(2)]  # fmt: skip
    _write(repo / NOT_FETCHED[0], _tar(train, gz=True))
    test = [(f"ILSVRC2012_test_{n:08d}.JPEG", _jpeg(rng, 40, 40, None)) for n in range(1, 5)]
    _write(repo / NOT_FETCHED[1], _tar(test, gz=True))
    _write(repo / "classes.py", b"IMAGENET2012_CLASSES = {}  # stand-in\n")
    _write(repo / "imagenet-1k.py", b"# the hub's loading script (stand-in)\n")
    readme = (
        "---\nlicense: other\ntask_categories:\n- image-classification\nextra_gated_prompt: "
        "By clicking on Access repository you agree to the ImageNet terms of access\n---\n"
        "# ImageNet-1k (stand-in)\n\nGated like ILSVRC/imagenet-1k. Generated by vlprep.\n"
    )
    _write(repo / "README.md", readme.encode())
    _write(repo / ".gitattributes", b"*.tar.gz filter=lfs diff=lfs merge=lfs -text\n")
    _write(repo / ".standin.json", json.dumps({"gated": True, "tokens": [STANDIN_TOKEN]}).encode())
    return repo
