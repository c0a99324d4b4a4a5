"""Stand-in sources of GLaMM's data, tiny and format-faithful.

- `test_caption.json` (Drive) and `train.json` (by hand; GRiT's host is gone): COCO-style
  region-caption files as GLaMM's VisualGenomeRegDataset loads them with pycocotools
  (RefCOCO_VG_Region_ds.py:47-61, 268-281): `images` of {id, file_name, width, height},
  `annotations` of {id, image_id, bbox, area, caption}, `file_name` a flat VG `<id>.jpg`
  [inference: GRiT's VG file names the flat ids, research/cosmos-glamm.md finding 10]. They name
  undamaged images of the world's VG stand-in (images.zip, VG_100K/), with their real sizes.
- The hub's `liuhaotian/LLaVA-Instruct-150K`: `llava_instruct_150k.json`, a list of {id, image:
  "<12-digit id>.jpg", conversations}, naming images of the world's COCO train2017 stand-in, as
  the real file names COCO train2017 images.
"""

import io
import json
import random
import zipfile
from pathlib import Path

from PIL import Image

from standin.coco import MAX_IMAGE_ID as COCO_MAX_IMAGE_ID
from standin.hub import _repo_dir, _write

LLAVA_REPO = "liuhaotian/LLaVA-Instruct-150K"
# The world's COCO train2017 stand-in has 40 images (standin.world build_world n_train); the
# LLaVA stand-in names this many of them.
LLAVA_IMAGES = 6


def coco_train2017_names(count: int = LLAVA_IMAGES, seed: int = 0) -> list[str]:
    """The first `count` train2017 names standin.coco.make_coco2017 writes (any n_train >=
    count): it draws train ids first, with random.sample, whose leading draws do not depend on
    how many are drawn for a population this large (set-based selection)."""
    rng = random.Random(f"coco2017:{seed}")
    return [f"{i:012d}.jpg" for i in rng.sample(range(1, COCO_MAX_IMAGE_ID + 1), count)]


def make_llava_repo(root: str | Path, *, seed: int = 0) -> Path:
    """The stand-in of the hub repository (only the file GLaMM reads, and a README)."""
    repo = _repo_dir(root, LLAVA_REPO)
    rng = random.Random(f"llava:{seed}")
    questions = ["What is in the image?", "What is the man doing?", "Describe the scene."]
    records = []
    for index, name in enumerate(coco_train2017_names()):
        records.append(
            {
                "id": name.removesuffix(".jpg"),
                "image": name,
                "conversations": [
                    {"from": "human", "value": f"<image>\n{rng.choice(questions)}"},
                    {"from": "gpt", "value": f"A stand-in answer number {index}."},
                ],
            }
        )
    _write(repo / "llava_instruct_150k.json", json.dumps(records).encode())
    readme = "---\nlicense: cc-by-4.0\n---\n# LLaVA-Instruct-150K (stand-in)\n"
    _write(repo / "README.md", readme.encode())
    _write(repo / ".gitattributes", b"*.json filter=lfs diff=lfs merge=lfs -text\n")
    return repo


GRAND_REPO = "MBZUAI/GranD"


def make_grand_repo(root: str | Path) -> Path:
    """The stand-in of GranD's hub repository: its part_N/part_N_M.tar.gz layout, each a tiny
    tar of one-JSON-per-image annotations (what GLaMM's prepare_annotations scripts read)."""
    import gzip
    import tarfile

    repo = _repo_dir(root, GRAND_REPO)
    for part in (1, 2):
        (repo / f"part_{part}").mkdir(parents=True, exist_ok=True)
        for shard in (1, 2):
            buf = io.BytesIO()
            # mtime=0 in the gzip header: the same bytes every time the world is generated
            with (
                gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz,
                tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar,
            ):
                for k in range(2):
                    name = f"sa_{part}{shard}{k:04d}.jpg"
                    data = json.dumps({name: {"objects": [], "captions": []}}).encode()
                    info = tarfile.TarInfo(f"part_{part}_{shard}/{name[:-4]}.json")
                    info.size, info.mtime = len(data), 1_700_000_000
                    tar.addfile(info, io.BytesIO(data))
            _write(repo / f"part_{part}" / f"part_{part}_{shard}.tar.gz", buf.getvalue())
    _write(repo / "README.md", b"---\nlicense: other\n---\n# GranD (stand-in)\n")
    _write(repo / ".gitattributes", b"*.tar.gz filter=lfs diff=lfs merge=lfs -text\n")
    return repo


def _vg_images(vg_zip: Path) -> list[tuple[str, int, int]]:
    """(flat name, width, height) of every image of a VG stand-in zip that opens."""
    found = []
    with zipfile.ZipFile(vg_zip) as zf:
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            if info.is_dir():
                continue
            try:
                with Image.open(io.BytesIO(zf.read(info))) as img:
                    img.load()
                    width, height = img.size
            except Exception:  # noqa: BLE001 - damaged on purpose: GLaMM's files skip them
                continue
            found.append((info.filename.rsplit("/", 1)[-1], width, height))
    return found


def _region_file(images: list[tuple[str, int, int]], rng: random.Random) -> dict:
    records, annotations = [], []
    for image_id, (name, width, height) in enumerate(images, 1):
        records.append({"id": image_id, "file_name": name, "width": width, "height": height})
        for _ in range(2):
            w, h = rng.randint(4, width // 2), rng.randint(4, height // 2)
            x, y = rng.randint(0, width - w), rng.randint(0, height - h)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "caption": rng.choice(["a red car", "a dog on grass", "a window "]),
                }
            )
    return {"images": records, "annotations": annotations}


def make_glamm(out: Path, vg_zip: Path | None = None) -> dict[str, Path]:
    """Write the stand-in files into `out`; return {catalog file name or entry id: path}.

    `vg_zip`: the VG stand-in whose images the region files name (default: the world's, made
    before this in `out`'s parent, vg/images.zip)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    images = _vg_images(vg_zip or out.parent / "vg" / "images.zip")
    # GLaMM drops images under 32 px a side (RefCOCO_VG_Region_ds.py:63-64): keep some of both
    rng = random.Random("glamm-vg:0")
    made = {}
    for entry, chosen in (
        ("glamm_vg_test_caption", images[:6]),
        ("glamm_vg_train", images[6:14]),
    ):
        path = out / entry / ("test_caption.json" if entry.endswith("caption") else "train.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_region_file(chosen, rng)))
        made[entry] = path
    return made
