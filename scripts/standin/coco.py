"""Stand-ins for the COCO 2014/2017 archives: small, format-faithful, byte-for-byte deterministic.

The workflow must not be able to tell them from the real zips by anything but size: the same
member paths (one top directory, a directory entry first, 12-digit ids), JPEGs stored
uncompressed, annotation JSON deflated, and the real JSON schema with the quirks the real data
has: captions not grouped by image, images not sorted by id, sparse ids, 5-7 captions per
image, stray whitespace and non-ASCII text. `make_bad_archives` builds the hostile and broken
archives the extractor must refuse.
"""

import io
import json
import random
import shutil
import struct
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from PIL import Image

from vlprep.atomic import staged

ZIP_TIME_2014 = (2014, 8, 1, 12, 0, 0)
ZIP_TIME_2017 = (2017, 9, 1, 12, 0, 0)
# 2017's train+val are 2014's train+val re-split; ids stay below the real maximum.
MAX_IMAGE_ID = 581_929

LICENSES = [
    (1, "Attribution-NonCommercial-ShareAlike License", "by-nc-sa/2.0/"),
    (2, "Attribution-NonCommercial License", "by-nc/2.0/"),
    (3, "Attribution-NonCommercial-NoDerivs License", "by-nc-nd/2.0/"),
    (4, "Attribution License", "by/2.0/"),
    (5, "Attribution-ShareAlike License", "by-sa/2.0/"),
    (6, "Attribution-NoDerivs License", "by-nd/2.0/"),
]
# The 80 COCO categories, "supercategory:id name,id name,..." (ids are sparse, 1..90).
CATEGORIES = """
person:1 person
vehicle:2 bicycle,3 car,4 motorcycle,5 airplane,6 bus,7 train,8 truck,9 boat
outdoor:10 traffic light,11 fire hydrant,13 stop sign,14 parking meter,15 bench
animal:16 bird,17 cat,18 dog,19 horse,20 sheep,21 cow,22 elephant,23 bear,24 zebra,25 giraffe
accessory:27 backpack,28 umbrella,31 handbag,32 tie,33 suitcase
sports:34 frisbee,35 skis,36 snowboard,37 sports ball,38 kite,39 baseball bat,40 baseball glove,\
41 skateboard,42 surfboard,43 tennis racket
kitchen:44 bottle,46 wine glass,47 cup,48 fork,49 knife,50 spoon,51 bowl
food:52 banana,53 apple,54 sandwich,55 orange,56 broccoli,57 carrot,58 hot dog,59 pizza,60 donut,\
61 cake
furniture:62 chair,63 couch,64 potted plant,65 bed,67 dining table,70 toilet
electronic:72 tv,73 laptop,74 mouse,75 remote,76 keyboard,77 cell phone
appliance:78 microwave,79 oven,80 toaster,81 sink,82 refrigerator
indoor:84 book,85 clock,86 vase,87 scissors,88 teddy bear,89 hair drier,90 toothbrush
"""
KEYPOINTS = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder"]
KEYPOINTS += ["right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist"]
KEYPOINTS += ["left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]
SKELETON = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8]]
SKELETON += [[7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]

SUBJECTS = ["A man", "A woman", "Two dogs", "A cat", "A group of people", "A red bus"]
SUBJECTS += ["A plate of food", "A young boy", "A giraffe", "A naïve painting of a horse"]
VERBS = ["sitting on", "standing next to", "walking along", "parked near", "lying on"]
VERBS += ["looking at", "resting beside"]
PLACES = ["a wooden bench", "a busy street", "the kitchen counter", "a grassy field"]
PLACES += ["a small café", "the beach", "a snowy hill", 'a sign that says "STOP"']


def _categories() -> list[dict]:
    """The instances files' category list, in the real order."""
    found = []
    for line in CATEGORIES.strip().splitlines():
        supercategory, members = line.split(":")
        for member in members.split(","):
            number, name = member.split(" ", 1)
            found.append({"supercategory": supercategory, "id": int(number), "name": name})
    return found


def _header(year: int) -> dict:
    """`info` and `licenses`, as at the top of every real annotation file."""
    info = {
        "description": f"COCO {year} Dataset",
        "url": "http://cocodataset.org",
        "version": "1.0",
        "year": year,
        "contributor": "COCO Consortium",
        "date_created": f"{year}/09/01",
    }
    licenses = [
        {"url": f"http://creativecommons.org/licenses/{path}", "id": number, "name": name}
        for number, name, path in LICENSES
    ]
    return {"info": info, "licenses": licenses}


def _jpeg(rng: random.Random, width: int, height: int, pad_to: int | None) -> bytes:
    """A small, valid JPEG whose pixels (hence bytes) differ per call.

    Smooth noise (a tiny random image scaled up) encodes to a few KB like a photo thumbnail.
    `pad_to` grows it with COM segments after APP0, which decoders skip: big files for
    benchmarks without the cost of encoding big images.
    """
    seed = Image.frombytes("RGB", (8, 6), rng.randbytes(8 * 6 * 3))
    buf = io.BytesIO()
    seed.resize((width, height), Image.Resampling.BILINEAR).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    if pad_to is None or len(data) >= pad_to:
        return data
    app0_end = 4 + struct.unpack(">H", data[4:6])[0]  # SOI, then APP0 (JFIF) and its length
    padding = bytearray()
    missing = pad_to - len(data)
    while missing > 4:
        chunk = min(missing - 4, 65_533)
        padding += b"\xff\xfe" + struct.pack(">H", chunk + 2) + rng.randbytes(chunk)
        missing -= chunk + 4
    return data[:app0_end] + bytes(padding) + data[app0_end:]


def _zipinfo(name: str, date_time: tuple, compress: int) -> zipfile.ZipInfo:
    """Fixed metadata, as a Unix zip tool writes it, so the bytes depend only on the content."""
    info = zipfile.ZipInfo(name, date_time)
    info.create_system = 3
    info.compress_type = compress
    if name.endswith("/"):
        info.external_attr = (0o40755 << 16) | 0x10
    else:
        info.external_attr = 0o100644 << 16
    return info


def _write_zip(
    path: Path, top: str, members: Iterator[tuple[str, bytes]], *, date_time: tuple, compress: int
) -> Path:
    """Write `top/` then each (name, data) under it, in the order given (callers sort)."""
    with staged(path) as tmp, zipfile.ZipFile(tmp, "w") as zf:
        zf.writestr(_zipinfo(f"{top}/", date_time, zipfile.ZIP_STORED), b"")
        for name, data in members:
            zf.writestr(_zipinfo(f"{top}/{name}", date_time, compress), data, compresslevel=6)
    return path


def _image_records(
    rng: random.Random, ids: list[int], split: str, file_name: Callable[[int], str]
) -> list[dict]:
    """`images` entries with the real fields; width/height are those of the generated JPEG."""
    records = []
    for image_id in ids:
        name = file_name(image_id)
        day, second = rng.randrange(1, 28), rng.randrange(86_400)
        records.append(
            {
                "license": rng.randrange(1, len(LICENSES) + 1),
                "file_name": name,
                "coco_url": f"http://images.cocodataset.org/{split}/{name}",
                "height": rng.randrange(48, 129),
                "width": rng.randrange(64, 161),
                "date_captured": f"2013-11-{day:02d} {second // 3600:02d}:"
                f"{second // 60 % 60:02d}:{second % 60:02d}",
                "flickr_url": f"http://farm{rng.randrange(1, 10)}.staticflickr.com/"
                f"{rng.randrange(1000, 9999)}/{rng.randrange(10**9, 10**10)}_"
                f"{rng.randbytes(5).hex()}_z.jpg",
                "id": image_id,
            }
        )
    return records


def _image_zip(
    path: Path,
    top: str,
    records: list[dict],
    rng: random.Random,
    *,
    date_time: tuple,
    pad_to: int | None,
) -> Path:
    """The images zip: one stored JPEG per record, sorted by name like the real zips."""
    ordered = sorted(records, key=lambda r: r["file_name"])
    members = ((r["file_name"], _jpeg(rng, r["width"], r["height"], pad_to)) for r in ordered)
    return _write_zip(path, top, members, date_time=date_time, compress=zipfile.ZIP_STORED)


def _sparse_ids(rng: random.Random) -> Iterator[int]:
    """Increasing ids with random gaps: unique and sparse, as in the real files."""
    current = 0
    while True:
        current += rng.randrange(1, 40)
        yield current


def _caption(rng: random.Random, serial: int) -> str:
    """A caption; a few carry the stray spaces and newlines the real captions have."""
    text = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(PLACES)}."
    if serial % 11 == 0:
        text = " " + text
    if serial % 13 == 0:
        text += " "
    if serial % 17 == 0:
        text += "\n"
    return text


def _captions(rng: random.Random, records: list[dict], ids: Iterator[int]) -> list[dict]:
    """5 captions per image, 6 or 7 for a few; shuffled so no image's captions are adjacent."""
    annotations = []
    for index, record in enumerate(sorted(records, key=lambda r: r["id"])):
        count = 7 if index % 97 == 3 else 6 if index % 23 == 5 else 5
        for _ in range(count):
            caption = _caption(rng, len(annotations))
            annotations.append({"image_id": record["id"], "id": next(ids), "caption": caption})
    rng.shuffle(annotations)
    return annotations


def _instance(rng: random.Random, record: dict, category: int, ann_id: int) -> dict:
    """One object: a box and its polygon; every 50th is a crowd region with an RLE mask."""
    width, height = record["width"], record["height"]
    w, h = rng.uniform(4, width / 2), rng.uniform(4, height / 2)
    x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
    box = [round(v, 2) for v in (x, y, w, h)]
    crowd = ann_id % 50 == 0
    if crowd:
        area = width * height // 3
        segmentation = {"counts": [area, width * height - area], "size": [height, width]}
    else:
        x0, y0, x1, y1 = box[0], box[1], round(x + w, 2), round(y + h, 2)
        segmentation = [[x0, y0, x1, y0, x1, y1, x0, y1]]
        area = box[2] * box[3]
    return {
        "segmentation": segmentation,
        "area": area,
        "iscrowd": int(crowd),
        "image_id": record["id"],
        "bbox": box,
        "category_id": category,
        "id": ann_id,
    }


def _instances(rng: random.Random, records: list[dict], ids: Iterator[int]) -> list[dict]:
    """1-3 objects per image, about a third of them people; shuffled like the real files."""
    category_ids = [c["id"] for c in _categories()]
    annotations = []
    for record in sorted(records, key=lambda r: r["id"]):
        for _ in range(rng.randrange(1, 4)):
            category = 1 if rng.random() < 0.35 else rng.choice(category_ids)
            annotations.append(_instance(rng, record, category, next(ids)))
    rng.shuffle(annotations)
    return annotations


def _keypoints(rng: random.Random, instances: list[dict]) -> list[dict]:
    """The person instances again, with 17 (x, y, visibility) keypoints each."""
    people = []
    for ann in instances:
        if ann["category_id"] != 1:
            continue
        x, y, w, h = ann["bbox"]
        points = []
        for _ in KEYPOINTS:
            seen = rng.choice((0, 1, 2, 2))
            px, py = (
                (round(x + rng.uniform(0, w)), round(y + rng.uniform(0, h))) if seen else (0, 0)
            )
            points += [px, py, seen]
        people.append(
            {**ann, "num_keypoints": sum(1 for v in points[2::3] if v), "keypoints": points}
        )
    return people


def _json(obj: dict) -> bytes:
    """Compact, ASCII-escaped JSON like the real files (so "café" appears as caf\\u00e9)."""
    return json.dumps(obj, separators=(",", ":")).encode("ascii")


def _annotation_files(
    rng: random.Random, splits: dict[str, list[dict]]
) -> Iterator[tuple[str, bytes]]:
    """captions_/instances_/person_keypoints_<split>.json for each split, sorted by name."""
    header = _header(2017)
    ids = _sparse_ids(rng)
    person = {**_categories()[0], "keypoints": KEYPOINTS, "skeleton": SKELETON}
    files = {}
    for split, records in splits.items():
        instances = _instances(rng, records, ids)
        files[f"captions_{split}.json"] = {
            **header,
            "images": records,
            "annotations": _captions(rng, records, ids),
        }
        files[f"instances_{split}.json"] = {
            **header,
            "images": records,
            "annotations": instances,
            "categories": _categories(),
        }
        files[f"person_keypoints_{split}.json"] = {
            **header,
            "images": records,
            "annotations": _keypoints(rng, instances),
            "categories": [person],
        }
    for name in sorted(files):
        yield name, _json(files[name])


def make_coco2017(
    out_dir: Path,
    *,
    n_train: int = 40,
    n_val: int = 3010,
    seed: int = 0,
    jpeg_bytes: int | None = None,
) -> dict[str, Path]:
    """Write val2017.zip, train2017.zip and annotations_trainval2017.zip into `out_dir`.

    `jpeg_bytes` pads every JPEG to about that size (benchmarks); the default keeps them at
    a few KB so the whole set takes seconds.
    """
    out_dir = Path(out_dir)
    rng = random.Random(f"coco2017:{seed}")
    ids = rng.sample(range(1, MAX_IMAGE_ID + 1), n_train + n_val)
    splits = {}
    for split, split_ids in (("train2017", ids[:n_train]), ("val2017", ids[n_train:])):
        records = _image_records(rng, split_ids, split, lambda i: f"{i:012d}.jpg")
        rng.shuffle(records)
        splits[split] = records
    made = {}
    for split in ("val2017", "train2017"):
        made[f"{split}.zip"] = _image_zip(
            out_dir / f"{split}.zip",
            split,
            splits[split],
            rng,
            date_time=ZIP_TIME_2017,
            pad_to=jpeg_bytes,
        )
    made["annotations_trainval2017.zip"] = _write_zip(
        out_dir / "annotations_trainval2017.zip",
        "annotations",
        _annotation_files(rng, splits),
        date_time=ZIP_TIME_2017,
        compress=zipfile.ZIP_DEFLATED,
    )
    return made


def make_coco2014(
    out_dir: Path, *, n_train: int = 20, n_val: int = 20, n_test: int = 5, seed: int = 0
) -> dict[str, Path]:
    """Write train2014.zip, val2014.zip, test2014.zip and test2015.zip into `out_dir`."""
    out_dir = Path(out_dir)
    rng = random.Random(f"coco2014:{seed}")
    trainval = rng.sample(range(1, MAX_IMAGE_ID + 1), n_train + n_val)
    split_ids = {
        "train2014": trainval[:n_train],
        "val2014": trainval[n_train:],
        "test2014": rng.sample(range(1, MAX_IMAGE_ID + 1), n_test),
        "test2015": rng.sample(range(1, MAX_IMAGE_ID + 1), n_test),
    }
    made = {}
    for split, ids in split_ids.items():
        records = _image_records(rng, ids, split, lambda i, s=split: f"COCO_{s}_{i:012d}.jpg")
        made[f"{split}.zip"] = _image_zip(
            out_dir / f"{split}.zip", split, records, rng, date_time=ZIP_TIME_2014, pad_to=None
        )
    return made


# ---- hostile and broken archives, for the extractor's tests --------------------------------

BOMB_BYTES = 64 << 20
TAR_MTIME = 1_500_000_000


class _Zeros(io.RawIOBase):
    """`size` zero bytes as a stream, so bombs are built without holding them in memory."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = min(len(buf), self.left)
        buf[:n] = bytes(n)
        self.left -= n
        return n


def _zip(path: Path, members: list[tuple[str, bytes, int]]) -> Path:
    """A zip of (name, data, unix mode) members; the mode's type bits mark links and devices."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data, mode in members:
            info = _zipinfo(name, ZIP_TIME_2017, zipfile.ZIP_STORED)
            info.external_attr = mode << 16
            zf.writestr(info, data)
    return path


def _tar(path: Path, members: list[tuple[str, bytes, dict]], mode: str = "w") -> Path:
    """A tar of (name, data, TarInfo attributes) members."""
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as tf:
        for name, data, attrs in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), TAR_MTIME, 0o644
            for key, value in attrs.items():
                setattr(info, key, value)
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def _truncate(source: Path, path: Path, keep: int) -> Path:
    path.write_bytes(source.read_bytes()[:keep])
    return path


def _zip_bomb(path: Path) -> Path:
    """64 MiB of zeros deflated to about 64 KB, with honest headers."""
    with zipfile.ZipFile(path, "w") as zf:
        info = _zipinfo("zeros.bin", ZIP_TIME_2017, zipfile.ZIP_DEFLATED)
        with zf.open(info, "w") as dst:
            shutil.copyfileobj(_Zeros(BOMB_BYTES), dst, 1 << 20)
    return path


def _lying_zip_bomb(bomb: Path, path: Path) -> Path:
    """The bomb with both headers claiming the member is 1 KiB: a reader must stop there."""
    data = bytearray(bomb.read_bytes())
    struct.pack_into("<I", data, 22, 1024)  # local header: uncompressed size
    central = data.rindex(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 1024)  # central directory: uncompressed size
    path.write_bytes(bytes(data))
    return path


def _tar_bomb(path: Path) -> Path:
    """A tar.gz holding 64 MiB of zeros (about 64 KB on disk)."""
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("zeros.bin")
        info.size, info.mtime = BOMB_BYTES, TAR_MTIME
        tf.addfile(info, _Zeros(BOMB_BYTES))
    return path


def _bad_crc_zip(path: Path) -> Path:
    """Ten stored members; one byte of the sixth is flipped, so its CRC-32 fails mid-way."""
    members = [(f"data/{i}.bin", bytes([i]) * 4096, 0o100644) for i in range(10)]
    _zip(path, members)
    data = bytearray(path.read_bytes())
    victim = data.index(bytes([5]) * 4096)
    data[victim + 100] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def make_bad_archives(out_dir: Path) -> dict[str, Path]:
    """Malicious and corrupt archives, each of which `vlprep.extract` must refuse.

    Escapes aim two levels up from the target, or at /tmp/vlprep-evil-*, so a test can see
    whether anything landed outside.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    file_, link, fifo, chr_ = 0o100644, 0o120777, 0o10644, 0o20644
    evil = b"should never be written\n"
    sym, hard = tarfile.SYMTYPE, tarfile.LNKTYPE
    good = [(f"data/{i}.txt", f"line {i}\n".encode() * 500, {}) for i in range(20)]
    made = {
        "zip_slip.zip": _zip(out / "zip_slip.zip", [("../evil.txt", evil, file_)]),
        "zip_absolute.zip": _zip(
            out / "zip_absolute.zip", [("/tmp/vlprep-evil-zip.txt", evil, file_)]
        ),
        "zip_symlink.zip": _zip(
            out / "zip_symlink.zip",
            [("data/ok.txt", b"ok\n", file_), ("data/link", b"../../../outside", link)],
        ),
        "zip_fifo.zip": _zip(out / "zip_fifo.zip", [("pipe", b"", fifo)]),
        "tar_slip.tar.gz": _tar(
            out / "tar_slip.tar.gz", [("data/../../evil.txt", evil, {})], "w:gz"
        ),
        "tar_absolute.tar": _tar(
            out / "tar_absolute.tar", [("/tmp/vlprep-evil-tar.txt", evil, {})]
        ),
        "tar_symlink_escape.tar": _tar(
            out / "tar_symlink_escape.tar",
            [("link", b"", {"type": sym, "linkname": "../../etc"}), ("link/evil.txt", evil, {})],
        ),
        "tar_symlink_absolute.tar": _tar(
            out / "tar_symlink_absolute.tar", [("link", b"", {"type": sym, "linkname": "/etc"})]
        ),
        # Each link looks harmless on paper (a/up -> .., b -> a/up/.. == "a"), but on disk b is
        # the target's parent.
        "tar_symlink_chain.tar": _tar(
            out / "tar_symlink_chain.tar",
            [
                ("a/up", b"", {"type": sym, "linkname": ".."}),
                ("b", b"", {"type": sym, "linkname": "a/up/.."}),
            ],
        ),
        "tar_hardlink_escape.tar": _tar(
            out / "tar_hardlink_escape.tar",
            [("h", b"", {"type": hard, "linkname": "../../etc/passwd"})],
        ),
        "tar_hardlink_nonmember.tar": _tar(
            out / "tar_hardlink_nonmember.tar",
            [("data/a.txt", b"a\n", {}), ("h", b"", {"type": hard, "linkname": "data/b.txt"})],
        ),
        "tar_device.tar": _tar(
            out / "tar_device.tar",
            [("dev/null", b"", {"type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3})],
        ),
        "tar_fifo.tar": _tar(out / "tar_fifo.tar", [("pipe", b"", {"type": tarfile.FIFOTYPE})]),
        "zip_device.zip": _zip(out / "zip_device.zip", [("dev/null", b"", chr_)]),
        "bad_crc.zip": _bad_crc_zip(out / "bad_crc.zip"),
        "zip_bomb.zip": _zip_bomb(out / "zip_bomb.zip"),
        "tar_bomb.tar.gz": _tar_bomb(out / "tar_bomb.tar.gz"),
    }
    made["zip_bomb_lying.zip"] = _lying_zip_bomb(made["zip_bomb.zip"], out / "zip_bomb_lying.zip")
    good_zip = _zip(out / "good.zip", [(n, d, file_) for n, d, _ in good])
    good_tgz = _tar(out / "good.tar.gz", good, "w:gz")
    good_tar = _tar(out / "good.tar", good)
    made["truncated.zip"] = _truncate(good_zip, out / "truncated.zip", good_zip.stat().st_size // 2)
    made["truncated.tar.gz"] = _truncate(
        good_tgz, out / "truncated.tar.gz", good_tgz.stat().st_size // 2
    )
    # Cut at a header boundary: tarfile alone would stop quietly and call it complete.
    with tarfile.open(good_tar) as tf:
        boundary = tf.getmembers()[5].offset
    made["truncated.tar"] = _truncate(good_tar, out / "truncated.tar", boundary)
    for scratch in (good_zip, good_tgz, good_tar):
        scratch.unlink()
    return made
