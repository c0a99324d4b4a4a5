"""Grids of sample images drawn from built products, for the data report.

A product's registry entry says where its samples are and how its consumer reads them
(vlprep.products.base.Samples); a reader per kind yields the first few, and `draw_grid` puts
them in one JPEG: a thumbnail each, its caption, question or label under it, label maps and
masks blended over it in a fixed palette.

Bounded whatever the product's size: at most `limit` thumbnails, and reading them opens
O(limit) files. Folders are scanned entry by entry and left after SCAN_ENTRIES entries (never
listed whole), a tar is read from its start and left after `limit` samples, an annotation file
is streamed and left after `limit` records or ANNOTATION_BYTES. The one file read whole is a
CIFAR batch, which has a fixed size (10,000 rows, 30 MB) and which torchvision reads whole too.
"""

import functools
import io
import itertools
import math
import os
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ijson

from vlprep.annotations import JSON_ERRORS, ImageRefs
from vlprep.atomic import staged
from vlprep.consumers import FOLDER_EXTENSIONS
from vlprep.errors import VlprepError
from vlprep.products import PRODUCTS
from vlprep.products.base import Samples

SAMPLE_LIMIT = 12
THUMB = 160  # px: the side of the square each image is fitted into
TEXT_LINES = 3
LINE_HEIGHT = 13
FONT_SIZE = 11
COLUMNS = 4
GAP = 4
TILE = (THUMB, THUMB + TEXT_LINES * LINE_HEIGHT + 4)
SCAN_ENTRIES = 2000  # folder entries looked at per grid, whatever the folders hold
PER_CLASS = 2  # images per class folder, so that a grid shows several classes
ANNOTATION_BYTES = 16 << 20  # parsed of an annotation file at most
SHAPES = 8  # masks, polygons or boxes drawn per image
CATEGORIES = 10_000  # category names kept of a COCO-style file (LVIS has 1,203)
ALPHA = 0.5  # of a label map's colour over its image
IGNORE = 255  # the label value mmseg and GLaMM ignore: left uncoloured


@dataclass
class Sample:
    """One thumbnail: how to open its image (None: a text-only tile), its text, and what is
    drawn over it: a label map (`label_map`) or shapes: ("polygon", [x, y, ...], colour
    index), ("box", [x, y, w, h], index), ("rle", {"size", "counts"}, index)."""

    name: str
    open: Callable[[], Any] | None
    text: str
    label_map: Callable[[], Any] | None = None
    shapes: list[tuple[str, Any, int]] = field(default_factory=list)


# ---- reading: a bounded number of entries, files, records ---------------------------------


def _scan(folder: str, accept: Callable[[str], bool], limit: int, per_class: int) -> list[str]:
    """Up to `limit` paths relative to `folder` of files `accept` takes, depth first, in name
    order among the entries looked at; `per_class` at most from each sub-folder. Hidden names
    are skipped (Snakemake's .snakemake_timestamp); SCAN_ENTRIES entries are looked at in all."""
    found: list[str] = []
    budget = SCAN_ENTRIES

    def walk(rel: str, cap: int) -> None:
        nonlocal budget
        entries = []
        with os.scandir(os.path.join(folder, rel)) as scan:
            while budget > 0 and (entry := next(scan, None)) is not None:
                budget -= 1
                if not entry.name.startswith("."):
                    entries.append(entry)
        entries.sort(key=lambda e: e.name)
        taken = 0
        for entry in entries:
            if len(found) >= limit or taken >= cap:
                break
            if entry.is_file() and accept(entry.name):
                found.append(os.path.join(rel, entry.name))
                taken += 1
        for entry in entries:
            if len(found) >= limit or budget <= 0:
                break
            if entry.is_dir():
                walk(os.path.join(rel, entry.name), per_class)

    walk("", limit)
    return found


def _is_image(name: str) -> bool:
    return name.lower().endswith(FOLDER_EXTENSIONS)


def _first_lines(path: str, limit: int) -> Iterator[str]:
    """The first `limit` non-empty lines of a text file, stripped."""
    with open(path, encoding="utf-8", errors="replace") as f:
        yield from itertools.islice((s for line in f if (s := line.strip())), limit)


class _Capped:
    """A binary file that ends after `budget` bytes: an annotation file is parsed that far."""

    def __init__(self, f: Any, budget: int) -> None:
        self.f, self.left = f, budget

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        data = self.f.read(size) if size > 0 else b""
        self.left -= len(data)
        return data


def _json_stream(path: str, parse: Callable[[Any], Iterator[Any]]) -> Iterator[Any]:
    """What `parse` yields from the first ANNOTATION_BYTES of `path`; a file cut there ends
    quietly, a malformed one is an error naming it."""
    with open(path, "rb") as raw:
        capped = _Capped(raw, ANNOTATION_BYTES)
        try:
            yield from parse(capped)
        except JSON_ERRORS as err:
            if capped.left > 0:
                raise VlprepError(
                    f"{path}: not valid JSON ({err}); build its product again to rewrite it"
                ) from err


def _opener(path: str) -> Callable[[], Any]:
    from PIL import Image

    return lambda: Image.open(path)


def _clean(text: str) -> str:
    return " ".join(text.replace("<image>", " ").split())


def _text(record: dict, keys: tuple[str, ...]) -> str:
    """The record's `keys` as one line: a list's first item (a caption of several, an answer of
    ten), a conversation's first question and answer."""
    parts = []
    for key in keys:
        value = record.get(key)
        if isinstance(value, list) and value and isinstance(value[0], dict):
            value = " → ".join(str(turn.get("value", "")) for turn in value[:2])
        elif isinstance(value, list):
            value = value[0] if value else None
        if value is not None and value != "":
            parts.append(_clean(str(value)))
    return " → ".join(parts)


def _rle_masks(value: Any, depth: int = 0) -> Iterator[dict]:
    """RLE masks ({"size", "counts"}) anywhere in a record (GranD-f's groundings)."""
    if depth > 6:
        return
    if isinstance(value, dict):
        if "counts" in value and "size" in value:
            yield value
            return
        for item in value.values():
            yield from _rle_masks(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _rle_masks(item, depth + 1)


# ---- one reader per kind --------------------------------------------------------------------


def _wds(spec: Samples, limit: int) -> Iterator[Sample]:
    """The first samples of the folder's first tar, as webdataset groups them; the caption is
    the .txt (nxtp) or the .json's caption (MiniGPT-4, img2dataset)."""
    import json

    import webdataset as wds

    tars = _scan(spec.path, lambda name: name.endswith(".tar"), 1, 0)
    if not tars:
        raise VlprepError(f"{spec.path}: no .tar shard; build its product again")
    tar = os.path.join(spec.path, tars[0])
    samples = iter(wds.DataPipeline(wds.SimpleShardList([tar]), wds.tarfile_to_samples()))
    try:
        for sample in itertools.islice(samples, limit):
            data = next(
                (sample[ext] for ext in ("jpg", "jpeg", "png", "webp") if ext in sample), b""
            )
            if "txt" in sample:
                text = sample["txt"].decode("utf-8", "replace")
            else:
                try:
                    text = str(json.loads(sample.get("json", b"{}")).get("caption", ""))
                except (ValueError, AttributeError):
                    text = ""
            yield Sample(
                f"{tars[0]}:{sample['__key__']}",
                lambda data=data: _image_bytes(data),
                _clean(text),
            )
    except Exception as err:  # noqa: BLE001 - tarfile's and webdataset's errors alike
        if isinstance(err, VlprepError):
            raise
        raise VlprepError(f"{tar}: not a readable webdataset tar ({err})") from err
    finally:
        close = getattr(samples, "close", None)
        if close:
            close()


def _image_bytes(data: bytes) -> Any:
    from PIL import Image

    return Image.open(io.BytesIO(data))


def _folder(spec: Samples, limit: int) -> Iterator[Sample]:
    """Image files: a few from each class folder (torchvision's ImageFolder and its kin),
    labelled by their folder; in a flat folder, by their name."""
    for rel in _scan(spec.path, _is_image, limit, PER_CLASS):
        label = os.path.dirname(rel) or os.path.basename(rel)
        yield Sample(rel, _opener(os.path.join(spec.path, rel)), label)


def _lines(spec: Samples, limit: int) -> Iterator[Sample]:
    """The first lines of a list file, `<id> <label>` (FGVC-Aircraft's images_variant_test.txt)."""
    for line in _first_lines(spec.path, limit):
        image_id, _, label = line.partition(" ")
        path = os.path.join(spec.images, image_id + spec.suffix)
        yield Sample(image_id, _opener(path), _clean(label) or image_id)


def _cifar(spec: Samples, limit: int) -> Iterator[Sample]:
    """The first rows of a pickled CIFAR batch (3x32x32 planes per row), labelled with the names
    in the meta file beside it (torchvision's CIFAR10/CIFAR100 read the same keys)."""
    import numpy as np
    from PIL import Image

    folder = os.path.dirname(spec.path)
    cifar100 = os.path.isfile(os.path.join(folder, "meta"))
    meta = os.path.join(folder, "meta" if cifar100 else "batches.meta")
    try:
        with open(meta, "rb") as f:
            names = pickle.load(f, encoding="latin1")[
                "fine_label_names" if cifar100 else "label_names"
            ]
        with open(spec.path, "rb") as f:
            batch = pickle.load(f, encoding="latin1")
        rows = np.asarray(batch["data"][:limit], dtype=np.uint8).reshape(-1, 3, 32, 32)
        labels = batch["fine_labels" if cifar100 else "labels"][:limit]
    except (OSError, pickle.UnpicklingError, KeyError, TypeError, ValueError, EOFError) as err:
        raise VlprepError(
            f"{spec.path} or {meta}: not a CIFAR batch torchvision reads ({err}); build its "
            "product again"
        ) from err
    for index, (row, label) in enumerate(zip(rows, labels, strict=False)):
        image = Image.fromarray(row.transpose(1, 2, 0))
        yield Sample(f"row {index}", lambda image=image: image, str(names[label]))


def _annotations(spec: Samples, limit: int) -> Iterator[Sample]:
    """The first records naming an image, joined onto `images` as the consumer joins them
    (vlprep.annotations.ImageRefs), with their text and any RLE masks."""
    refs = ImageRefs(spec.images, spec.field, spec.join, {}, records=spec.records)
    records = _json_stream(spec.path, lambda f: ijson.items(f, spec.records))
    for record in itertools.islice((r for r in records if refs.name_of(r)), limit):
        name = refs.name_of(record)
        masks = [
            ("rle", m, i + 1) for i, m in enumerate(itertools.islice(_rle_masks(record), SHAPES))
        ]
        text = _text(record, spec.text) or name
        yield Sample(name, _opener(os.path.join(spec.images, name)), text, shapes=masks)


def _coco_records(f: Any) -> Iterator[tuple[str, dict]]:
    """("images" | "annotations" | "categories", record) of a COCO-style file, in file order."""
    from ijson.common import ObjectBuilder

    wanted = {"images.item", "annotations.item", "categories.item"}
    builder, current = None, ""
    for prefix, event, value in ijson.parse(f):
        if builder is None:
            if event == "start_map" and prefix in wanted:
                builder, current = ObjectBuilder(), prefix
            else:
                continue
        builder.event(event, value)
        if event == "end_map" and prefix == current:
            yield current.split(".")[0], builder.value
            builder = None


def _coco(spec: Samples, limit: int) -> Iterator[Sample]:
    """The first images of a COCO-style file, with what its annotations say of them: their
    captions, else their categories' names, and their masks, polygons or boxes drawn."""
    images: dict[Any, dict] = {}
    annotations: dict[Any, list[dict]] = {}
    categories: dict[Any, str] = {}
    for section, record in _json_stream(spec.path, _coco_records):
        if section == "images" and len(images) < limit and "file_name" in record:
            images[record.get("id")] = record
        elif section == "annotations" and record.get("image_id") in images:
            kept = annotations.setdefault(record["image_id"], [])
            if len(kept) < SHAPES:
                kept.append(record)
        elif section == "categories" and len(categories) < CATEGORIES:
            categories[record.get("id")] = str(record.get("name", ""))
    for image_id, image in images.items():
        anns = annotations.get(image_id, [])
        captions = [a["caption"] for a in anns if isinstance(a.get("caption"), str)]
        names = [categories.get(a.get("category_id"), "") for a in anns]
        text = image.get("caption") or (captions[0] if captions else "")
        text = text or ", ".join(dict.fromkeys(n for n in names if n)) or image["file_name"]
        shapes = []
        for a in anns:
            colour = int(a.get("category_id") or len(shapes) + 1)
            segmentation = a.get("segmentation")
            if isinstance(segmentation, dict):
                shapes.append(("rle", segmentation, colour))
            elif isinstance(segmentation, list) and segmentation:
                shapes += [("polygon", p, colour) for p in segmentation if isinstance(p, list)]
            elif isinstance(a.get("bbox"), list):
                shapes.append(("box", a["bbox"], colour))
        path = os.path.join(spec.images, image["file_name"])
        yield Sample(image["file_name"], _opener(path), _clean(str(text)), shapes=shapes)


def _segmap(spec: Samples, limit: int) -> Iterator[Sample]:
    """Images and their label maps, paired the way the consumer pairs them: by the ids of a
    split file (mmseg with ann_file), or listed on one side and named on the other by suffix."""
    if spec.split:
        ids = (line.split()[0] for line in _first_lines(spec.split, limit))
        pairs = [(i + spec.suffix, i + spec.map_suffix) for i in ids]
    elif spec.path == spec.maps:
        rels = _scan(spec.maps, lambda name: name.endswith(spec.map_suffix), limit, PER_CLASS)
        pairs = [(r[: -len(spec.map_suffix)] + spec.suffix, r) for r in rels]
    else:
        rels = _scan(spec.images, lambda name: name.endswith(spec.suffix), limit, PER_CLASS)
        pairs = [(r, r[: -len(spec.suffix)] + spec.map_suffix) for r in rels]
    for image, label_map in pairs:
        name = os.path.basename(image)[: -len(spec.suffix)]
        yield Sample(
            image,
            _opener(os.path.join(spec.images, image)),
            name,
            label_map=_opener(os.path.join(spec.maps, label_map)),
        )


def _none(spec: Samples, limit: int) -> Iterator[Sample]:
    yield Sample("", None, spec.why)


READERS: dict[str, Callable[[Samples, int], Iterator[Sample]]] = {
    "wds": _wds,
    "folder": _folder,
    "lines": _lines,
    "cifar": _cifar,
    "annotations": _annotations,
    "coco": _coco,
    "segmap": _segmap,
    "none": _none,
}


# ---- drawing ---------------------------------------------------------------------------------


def palette() -> list[tuple[int, int, int]]:
    """PASCAL VOC's colour map (label i's bits spread over the three channels): distinct
    colours for neighbouring labels, the one segmentation readers know."""
    colours = []
    for label in range(256):
        r = g = b = 0
        c = label
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colours.append((r, g, b))
    return colours


PALETTE = palette()


def _colour(index: int) -> tuple[int, int, int]:
    """A saturated colour per category (golden-ratio hues): masks stand out from the photo."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((index * 0.618034) % 1.0, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def _rle_mask(rle: dict, size: tuple[int, int]) -> Any:
    """A COCO RLE ({"size": [h, w], "counts"}: compressed string or list) as an L image."""
    import numpy as np
    from PIL import Image

    from vlprep.segmaps import rle_counts

    height, width = (int(v) for v in rle["size"])
    counts = rle["counts"]
    runs = rle_counts(counts) if isinstance(counts, str) else np.asarray(counts, np.int64)
    values = np.repeat(np.arange(len(runs)) % 2, runs).astype(np.uint8)[: height * width]
    values = np.pad(values, (0, height * width - values.size))
    mask = Image.fromarray(values.reshape(width, height).T * 255)  # column-major, as COCO's
    return mask if mask.size == size else mask.resize(size)


def _overlaid(image: Any, sample: Sample) -> Any:
    """The image with its label map or shapes blended over it in the palette."""
    import numpy as np
    from PIL import Image, ImageDraw

    image = image.convert("RGB")
    if sample.label_map is not None:
        with sample.label_map() as label_map:
            if label_map.mode in ("L", "P", "I", "I;16"):
                values = np.asarray(label_map.convert("I") if label_map.mode != "P" else label_map)
                values = values.astype(np.int64) % 256
                colours = np.asarray(PALETTE, np.uint8)[values]
                alpha = np.where(values == IGNORE, 0, int(255 * ALPHA)).astype(np.uint8)
                layer = Image.fromarray(np.dstack([colours, alpha]), "RGBA")
            else:
                layer = label_map.convert("RGB").convert("RGBA")
                layer.putalpha(int(255 * ALPHA))
        if layer.size != image.size:
            layer = layer.resize(image.size, Image.NEAREST)
        return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")
    if not sample.shapes:
        return image
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    fill = int(255 * ALPHA)
    for kind, data, index in sample.shapes:
        colour = _colour(index)
        try:
            if kind == "polygon" and len(data) >= 6:
                draw.polygon([float(v) for v in data], fill=(*colour, fill), outline=colour)
            elif kind == "box" and len(data) == 4:
                x, y, w, h = (float(v) for v in data)
                draw.rectangle([x, y, x + w, y + h], outline=(*colour, 255), width=2)
            elif kind == "rle":
                mask = _rle_mask(data, image.size).point(lambda v: fill if v else 0)
                layer.paste(Image.new("RGBA", image.size, (*colour, fill)), mask=mask)
        except (ValueError, TypeError, KeyError):
            continue  # a malformed shape is left out of the picture, not the grid
    return Image.alpha_composite(image.convert("RGBA"), layer).convert("RGB")


@functools.cache
def _font() -> Any:
    from PIL import ImageFont

    try:  # DejaVu where the system has it: captions are any language
        return ImageFont.truetype("DejaVuSans.ttf", FONT_SIZE)
    except OSError:
        pass
    try:
        return ImageFont.load_default(size=FONT_SIZE)
    except (TypeError, OSError):  # Pillow without FreeType: its bitmap font
        return ImageFont.load_default()


def _wrap(text: str, font: Any, width: int, lines: int) -> list[str]:
    """`text` in at most `lines` lines of `width` px, the last cut with an ellipsis."""
    out: list[str] = []
    words = text.split()
    while words and len(out) < lines:
        line = words.pop(0)
        if font.getlength(line) > width:  # a word wider than the tile (a file name): cut
            cut = len(line)
            while cut > 1 and font.getlength(line[:cut]) > width:
                cut -= 1
            words.insert(0, line[cut:])
            line = line[:cut]
        while words and font.getlength(f"{line} {words[0]}") <= width:
            line = f"{line} {words.pop(0)}"
        out.append(line)
    if words and out:
        last = out[-1]
        while last and font.getlength(last + "…") > width:
            last = last[:-1]
        out[-1] = last + "…"
    return out


def _tile(sample: Sample, font: Any) -> Any:
    from PIL import Image, ImageDraw, ImageOps

    tile = Image.new("RGB", TILE, "white")
    draw = ImageDraw.Draw(tile)
    box_text = ""
    if sample.open is None:
        box_text = sample.text
    else:
        try:
            with sample.open() as image:
                image.draft("RGB", (THUMB, THUMB))  # JPEG: decode at a reduced scale
                shown = _overlaid(image, sample)
            shown = ImageOps.contain(shown, (THUMB, THUMB))  # up too: a stand-in is tiny
            tile.paste(shown, ((THUMB - shown.width) // 2, (THUMB - shown.height) // 2))
        except Exception as err:  # noqa: BLE001 - the tile says what failed; the grid goes on
            box_text = f"{sample.name}: {type(err).__name__}: {err}"
    if box_text:
        draw.rectangle([0, 0, THUMB - 1, THUMB - 1], fill=(235, 235, 235))
        for row, line in enumerate(_wrap(box_text, font, THUMB - 8, THUMB // LINE_HEIGHT - 1)):
            draw.text((4, 4 + row * LINE_HEIGHT), line, fill=(90, 90, 90), font=font)
    if sample.open is not None:
        for row, line in enumerate(_wrap(sample.text, font, THUMB - 2, TEXT_LINES)):
            draw.text((1, THUMB + 2 + row * LINE_HEIGHT), line, fill="black", font=font)
    return tile


def grid_size(tiles: int) -> tuple[int, int]:
    """The (width, height) in px of a grid of `tiles` thumbnails."""
    columns = max(1, min(tiles, COLUMNS))
    rows = max(1, math.ceil(tiles / columns))
    return columns * TILE[0] + (columns + 1) * GAP, rows * TILE[1] + (rows + 1) * GAP


def resolved(spec: Samples, roots: dict[str, str]) -> Samples:
    """`spec` with its path templates filled in from `roots`."""
    from dataclasses import replace

    try:
        return replace(
            spec,
            **{
                name: getattr(spec, name).format(**roots)
                for name in ("path", "images", "maps", "split")
            },
        )
    except KeyError as err:
        raise VlprepError(f"no root {err} among {sorted(roots)} for {spec.path}") from err


def draw_grid(
    product: str, roots: dict[str, str], out: Path, limit: int = SAMPLE_LIMIT
) -> list[str]:
    """Draw up to `limit` samples of the built `product` into one JPEG grid at `out` (written
    whole or not at all) and return the text drawn under each image, in grid order.

    `roots` maps the registry's root names (g3m, cosmos, lavis, minigpt4, glamm, data_root, ...)
    to folders. A product with no images (Samples kind "none") gets one tile saying why, and
    returns no text.
    """
    from PIL import Image

    spec = PRODUCTS[product].samples
    if spec is None:
        raise VlprepError(f"{product}: the registry declares no samples; this is a vlprep bug")
    spec = resolved(spec, roots)
    if spec.kind != "none" and not os.path.exists(spec.split or spec.path):
        raise VlprepError(
            f"{spec.split or spec.path}: missing, so {product} has no sample grid; build it "
            f"first (snakemake {product})"
        )
    font = _font()
    tiles, texts = [], []
    for sample in READERS[spec.kind](spec, limit):
        tiles.append(_tile(sample, font))  # one full image in memory at a time
        if sample.open is not None:
            texts.append(sample.text)
    if not tiles:
        raise VlprepError(f"{spec.path}: no samples found for {product}; build it again")
    width, height = grid_size(len(tiles))
    grid = Image.new("RGB", (width, height), (250, 250, 250))
    columns = min(len(tiles), COLUMNS)
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        grid.paste(tile, (GAP + column * (TILE[0] + GAP), GAP + row * (TILE[1] + GAP)))
    with staged(out) as tmp:
        grid.save(tmp, "JPEG", quality=85)
    return texts
