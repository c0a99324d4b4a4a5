"""Stand-in annotation files of the by-name URL lists: LAVIS `sbu.json` and the nocaps files.

Same structure as the real files, deterministic, with image URLs under `url_host` (the world
uses http://images.standin.invalid, reached through the image stand-in as HTTP proxy; tests may
pass an ImageHost's own URL).

- `sbu.json` (LAVIS, D03/D07): a JSON list of {"image", "caption", "url"}; `image` is the
  basename of the Flickr-style URL `<host>/sbu/<farm>/<photo id>_<secret>.jpg`, which is what
  VPGTrans opens (basename of `image`). `duplicate_every=k` makes every k-th record reuse the
  previous record's image name with another URL, as a name collision to be handled.
- nocaps (D04; format of nocaps.org/download): `nocaps_val_4500_captions.json` =
  {"licenses", "info", "images", "annotations"} with images {"id", "open_images_id", "height",
  "width", "coco_url", "file_name", "license", "date_captured", "domain"} and 10 annotations
  {"image_id", "id", "caption"} per image; `nocaps_test_image_info.json` has no
  "annotations". `coco_url` = `<host>/nocaps/{val,test}/<open_images_id>.jpg` and
  `file_name` = `<open_images_id>.jpg`, as in the real files.
"""

import hashlib
import json
from pathlib import Path

from standin.imagehost import caption_for

NOCAPS_FILES = {"val": "nocaps_val_4500_captions.json", "test": "nocaps_test_image_info.json"}
DOMAINS = ("in-domain", "near-domain", "out-domain")
CAPTIONS_PER_IMAGE = 10


def _hex(text: str, digits: int) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()[:digits]


def _base(url_host: str) -> str:
    return url_host.rstrip("/")


def _write_json(path: Path, data) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return path


def sbu_record(i: int, url_host: str) -> dict[str, str]:
    farm = 1000 + int(_hex(f"sbu-farm:{i}", 4), 16) % 9000
    photo = 1_000_000_000 + int(_hex(f"sbu-id:{i}", 8), 16) % 9_000_000_000
    name = f"{photo}_{_hex(f'sbu-secret:{i}', 10)}.jpg"
    return {"image": name, "caption": caption_for(i), "url": f"{_base(url_host)}/sbu/{farm}/{name}"}


def make_sbu_json(
    path: str | Path, rows: int, url_host: str, *, duplicate_every: int | None = None
) -> Path:
    """Write a LAVIS-style `sbu.json` of `rows` records at `path`; return the path."""
    records = []
    for i in range(rows):
        record = sbu_record(i, url_host)
        if duplicate_every and i % duplicate_every == duplicate_every - 1 and records:
            record["image"] = records[-1]["image"]  # same name, another URL
        records.append(record)
    return _write_json(path, records)


def nocaps_image(split: str, i: int, url_host: str) -> dict:
    oid = _hex(f"nocaps:{split}:{i}", 16)
    digest = bytes.fromhex(_hex(f"nocaps-size:{split}:{i}", 8))
    return {
        "id": i,
        "open_images_id": oid,
        "height": 500 + digest[0] * 2,
        "width": 500 + digest[1] * 2,
        "coco_url": f"{_base(url_host)}/nocaps/{split}/{oid}.jpg",
        "file_name": f"{oid}.jpg",
        "license": 0,
        "date_captured": "2018-11-06 11:04:33",
        "domain": DOMAINS[digest[2] % len(DOMAINS)],
    }


def make_nocaps_jsons(
    out_dir: str | Path, n_val: int, n_test: int, url_host: str
) -> dict[str, Path]:
    """Write the two nocaps annotation files into `out_dir`; return {file name: path}."""
    out_dir = Path(out_dir)
    written = {}
    for split, n in (("val", n_val), ("test", n_test)):
        data: dict = {
            "licenses": [],
            "info": {
                "url": "http://nocaps.org",
                "date_created": "2018/11/06",
                "version": "0.1",
                "description": f"nocaps {'validation' if split == 'val' else 'test'} dataset",
                "contributor": "nocaps team",
                "year": 2018,
            },
            "images": [nocaps_image(split, i, url_host) for i in range(n)],
        }
        if split == "val":
            data["annotations"] = [
                {"image_id": i, "id": i * CAPTIONS_PER_IMAGE + j,
                 "caption": f"a photo of thing {i}, caption {j}."}
                for i in range(n) for j in range(CAPTIONS_PER_IMAGE)
            ]  # fmt: skip
        name = NOCAPS_FILES[split]
        written[name] = _write_json(out_dir / name, data)
    return written
