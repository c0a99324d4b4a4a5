"""Stand-ins for Visual Genome's two image zips (research/datasets.md D06), deterministic.

The real `images.zip` holds `VG_100K/<id>.jpg` and `images2.zip` holds `VG_100K_2/<id>.jpg`:
about 64k and 44k images, ids unique across both and interleaved (VG_100K_2 has 51.jpg as
well as 2416776.jpg). VG_100K_2 also holds about 170 damaged files (haotian-liu/LLaVA issue
#601: "170 empty images"; others report files PIL cannot identify). The stand-ins keep that
shape: one directory entry then the JPEGs sorted by name, ids drawn from the real range and
split about 60/40, and a few damaged files in the second zip, of three kinds: empty, cut
short (no end-of-image marker) and not a JPEG at all (an HTML error page saved as .jpg).

Whether the real zips store or deflate their JPEGs is not verified; Info-ZIP's `zip` deflates
them unless told otherwise, so the default is deflated and `compress` can store them instead.
"""

import random
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from standin.coco import _jpeg, _write_zip

# Real ids run from 1 to about 2.42 million (2416776.jpg is one of the empty ones).
MAX_IMAGE_ID = 2_417_997
# Reported counts: 64,346 files in VG_100K, 43,903 in VG_100K_2 (not verified here).
FIRST_ZIP_SHARE = 64_346 / (64_346 + 43_903)
ZIP_TIME = (2016, 7, 12, 10, 30, 0)
# Which zip holds which top directory, in the order the catalog lists them.
TOP_DIRS = {"images.zip": "VG_100K", "images2.zip": "VG_100K_2"}
DAMAGE = ("empty", "truncated", "not_jpeg")
ERROR_PAGE = b"<html><head><title>404 Not Found</title></head><body>Not Found</body></html>\n"


@dataclass(frozen=True)
class VgZips:
    """What `make_vg_zips` wrote."""

    files: dict[str, Path]  # "images.zip" / "images2.zip" -> path
    corrupt: dict[str, str]  # base name of each damaged file (all in images2.zip) -> damage


def _damaged(rng: random.Random, damage: str) -> bytes:
    """A file with one of the defects found in the real VG_100K_2."""
    if damage == "empty":
        return b""
    if damage == "truncated":
        whole = _jpeg(rng, 64, 48, None)
        return whole[: len(whole) * 2 // 3]
    return ERROR_PAGE


def _members(
    rng: random.Random, ids: list[int], corrupt: dict[str, str]
) -> Iterator[tuple[str, bytes]]:
    """(base name, bytes) in name order: small JPEGs (24-64 px a side, about 1 KB)."""
    for name in sorted(f"{image_id}.jpg" for image_id in ids):
        if name in corrupt:
            yield name, _damaged(rng, corrupt[name])
        else:
            yield name, _jpeg(rng, rng.randrange(24, 65), rng.randrange(24, 65), None)


def make_vg_zips(
    out_dir: Path,
    n_images: int = 60,
    seed: int = 0,
    *,
    corrupt: int = 5,
    compress: int = zipfile.ZIP_DEFLATED,
) -> VgZips:
    """Write images.zip (VG_100K/) and images2.zip (VG_100K_2/) with `n_images` between them.

    `corrupt` files of images2.zip are damaged, cycling through empty, truncated, not_jpeg.
    The bytes depend only on the arguments; 100,000 images take about half a minute.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"vg:{seed}")
    ids = rng.sample(range(1, MAX_IMAGE_ID + 1), n_images)
    first = round(n_images * FIRST_ZIP_SHARE)
    split = {"images.zip": ids[:first], "images2.zip": ids[first:]}
    if corrupt > len(split["images2.zip"]):
        raise ValueError(f"{corrupt} damaged files asked for, but images2.zip gets fewer images")
    victims = rng.sample(split["images2.zip"], corrupt)
    damaged = {f"{image_id}.jpg": DAMAGE[i % len(DAMAGE)] for i, image_id in enumerate(victims)}
    files = {}
    for zip_name, top in TOP_DIRS.items():
        broken = damaged if zip_name == "images2.zip" else {}
        files[zip_name] = _write_zip(
            out_dir / zip_name,
            top,
            _members(rng, split[zip_name], broken),
            date_time=ZIP_TIME,
            compress=compress,
        )
    return VgZips(files, damaged)
