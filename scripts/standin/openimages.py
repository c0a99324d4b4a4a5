"""Stand-ins for Open Images V7 validation: the image tarball and its Localized Narratives.

`validation.tar.gz` is shaped like the CVDF bucket's: a gzip of a tar whose first member is the
`validation/` directory, then `validation/<ImageID>.jpg` (16 lowercase hex digits) in no
particular order. The narratives JSONL has the real fields, one record per line (dataset_id,
image_id, annotator_id, caption, timed_caption, traces as lists of {x, y, t} segments,
voice_recording).

It also has the quirks of the real pair that nxtp's conversion reacts to. Some images have
more than one narrative (41,691 narratives for 41,620 images), placed so that nxtp's
sub-folders (lines 0-2997, 2998-5996, 5997-8995, ...) see both cases: two narratives in one
folder, where the script keeps only the later one, and two across a boundary, where both
survive, including the last line of one folder against the first of the next. Some images
have no narrative. Captions carry non-ASCII text, quotes and a tab, so `.txt` (UTF-8) and
`.json` (ASCII-escaped) must be written the way the script writes them.
"""

import gzip
import io
import json
import random
import tarfile
from dataclasses import dataclass
from pathlib import Path

from standin.coco import _jpeg
from vlprep.atomic import staged

TARBALL_MTIME = 1_539_000_000  # October 2018, when the CVDF tarballs were made
NARRATIVES_NAME = "open_images_validation_localized_narratives.jsonl"
TARBALL_NAME = "validation.tar.gz"

# Lines that narrate the same image. nxtp's folder k starts at line k*2999 - 1 (k >= 1).
SAME_FOLDER = [(10, 25), (3100, 3105)]
ACROSS_FOLDERS = [(2990, 3010), (2997, 2998)]
# Two lines in folder 1 (one overwrites the other) and a third in folder 2 (survives).
MIXED = [(5990, 5996, 5997)]

SUBJECTS = ["a person standing", "two dogs", "a red car parked", "a group of people"]
SUBJECTS += ["a naïve painting of a horse", "a plate with food", "a building", "a café"]
PLACES = ["on the road", "on the grass", "near the wall", "under a tree", "on a table"]
BACKGROUNDS = ["trees", "the sky", "buildings", "a board with text", 'a sign saying "OPEN"']
ODD_CAPTIONS = ["In this picture we can see a dog 🐕 on the floor.", "A cup\tand a spoon. "]


@dataclass(frozen=True)
class Narratives:
    """What `make_narratives` wrote, for tests to check a conversion against."""

    path: Path
    lines: int
    same_folder: list[str]  # images with two narratives in one nxtp sub-folder
    across_folders: list[str]  # images whose narratives are in different sub-folders only
    unnarrated: list[str]  # images of the tarball no narrative names


def image_ids(rng: random.Random, n: int) -> list[str]:
    """`n` distinct ImageIDs (16 lowercase hex digits), sorted."""
    found: set[str] = set()
    while len(found) < n:
        found.add(rng.randbytes(8).hex())
    return sorted(found)


def make_validation_tarball(
    out_path: str | Path, n_images: int, seed: int = 0
) -> tuple[Path, list[str]]:
    """Write `validation.tar.gz` with `n_images` tiny JPEGs; return its path and the ImageIDs.

    The bytes depend only on the arguments (fixed gzip and tar metadata). Level 1 gzip: the
    JPEGs hardly compress, and the real level does not change the format.
    """
    out_path = Path(out_path)
    rng = random.Random(f"openimages-validation:{seed}")
    ids = image_ids(rng, n_images)
    order = ids.copy()
    rng.shuffle(order)  # tar stores readdir order, not sorted
    with (
        staged(out_path) as tmp,
        open(tmp, "wb") as raw,
        gzip.GzipFile(
            filename="", mode="wb", fileobj=raw, mtime=TARBALL_MTIME, compresslevel=1
        ) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar,
    ):
        tar.addfile(tar_entry("validation", tarfile.DIRTYPE, 0o755, 0))
        for image_id in order:
            data = _jpeg(rng, rng.randrange(16, 49), rng.randrange(12, 37), None)
            info = tar_entry(f"validation/{image_id}.jpg", tarfile.REGTYPE, 0o644, len(data))
            tar.addfile(info, io.BytesIO(data))
    return out_path, ids


def tar_entry(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, TARBALL_MTIME
    return info


def caption(rng: random.Random, line: int) -> str:
    """A Localized Narratives style caption: spoken, several sentences."""
    if line % 1000 == 7:
        return ODD_CAPTIONS[line // 1000 % len(ODD_CAPTIONS)]
    return (
        f"In this image we can see {rng.choice(SUBJECTS)} {rng.choice(PLACES)}. "
        f"In the background we can see {rng.choice(BACKGROUNDS)}."
    )


def timed_caption(rng: random.Random, text: str) -> list[dict]:
    """The caption cut into utterances of 1-3 words, with increasing times (0.1 s steps)."""
    words, utterances, tenths = text.split(), [], 0
    while words:
        take = min(len(words), rng.randint(1, 3))
        utterance, words = " ".join(words[:take]), words[take:]
        start = tenths + rng.randrange(3)
        tenths = start + 2 * take + rng.randrange(4)
        utterances.append(
            {"utterance": utterance, "start_time": start / 10, "end_time": tenths / 10}
        )
    return utterances


def traces(rng: random.Random, points: tuple[int, int]) -> list[list[dict]]:
    """1-3 mouse trace segments of {x, y, t}; the pointer may leave the image (x, y < 0 or > 1).

    Coordinates have 4 decimals and times 3, like the real files; `points` bounds the points
    per segment (real segments have dozens to hundreds).
    """
    segments, ms = [], rng.randrange(1000)
    for _ in range(rng.randint(1, 3)):
        segment = []
        for _ in range(rng.randint(*points)):
            x, y = rng.randrange(-500, 10_501), rng.randrange(-500, 10_501)
            segment.append({"x": x / 10_000, "y": y / 10_000, "t": ms / 1000})
            ms += 33
        segments.append(segment)
    return segments


def record(
    rng: random.Random, image_id: str, annotator_id: int, line: int, points: tuple[int, int]
) -> dict:
    """One narrative with every field of the real records."""
    text = caption(rng, line)
    return {
        "dataset_id": "open_images",
        "image_id": image_id,
        "annotator_id": annotator_id,
        "caption": text,
        "timed_caption": timed_caption(rng, text),
        "traces": traces(rng, points),
        "voice_recording": "open_images_validation/open_images_validation_"
        f"{image_id}_{annotator_id}.ogg",
    }


def line_order(rng: random.Random, ids: list[str], unnarrated: int) -> tuple[list[str], dict]:
    """Which image each line narrates, and which images got the planned duplicates.

    Plans whose lines would not exist (a small file) are dropped.
    """
    narrated = ids.copy()
    rng.shuffle(narrated)
    skipped, narrated = narrated[:unnarrated], narrated[unnarrated:]
    groups = {"same_folder": SAME_FOLDER, "across_folders": ACROSS_FOLDERS, "mixed": MIXED}
    plans = [(kind, p) for kind, ps in groups.items() for p in ps if max(p) < len(narrated)]
    n_lines = len(narrated) + sum(len(lines) - 1 for _, lines in plans)
    order: list[str | None] = [None] * n_lines
    spare = iter(narrated)
    picked: dict[str, list[str]] = {"same_folder": [], "across_folders": [], "unnarrated": skipped}
    for kind, lines in plans:
        image_id = next(spare)
        for line in lines:
            order[line] = image_id
        picked["across_folders" if kind == "across_folders" else "same_folder"].append(image_id)
    filled = [image_id if image_id is not None else next(spare) for image_id in order]
    return filled, picked


def make_narratives(
    out_path: str | Path,
    image_ids: list[str],
    *,
    seed: int = 0,
    unnarrated: int = 3,
    trace_points: tuple[int, int] = (3, 8),
) -> Narratives:
    """Write the Localized Narratives JSONL for `image_ids` (all but `unnarrated` of them).

    `trace_points` bounds the points per trace segment: small keeps tests fast, large makes
    lines as heavy as the real ones (about 20 KB) for benchmarks.

    Lines are serialised compactly with raw UTF-8: how the real file spaces its JSON is not
    known here, and a layout unlike `json.dump`'s makes sure a converter re-serialises each
    record the way the script does rather than copying the line.
    """
    out_path = Path(out_path)
    rng = random.Random(f"openimages-narratives:{seed}")
    order, picked = line_order(rng, list(image_ids), unnarrated)
    annotators: dict[str, int] = {}
    with staged(out_path) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as out:
        for line, image_id in enumerate(order):
            # A second narrative of an image comes from another annotator.
            annotator = annotators.get(image_id, rng.randrange(1, 150)) + 7
            annotators[image_id] = annotator
            doc = record(rng, image_id, annotator, line, trace_points)
            out.write(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n")
    return Narratives(
        out_path, len(order), picked["same_folder"], picked["across_folders"], picked["unnarrated"]
    )


def make_openimages(out_dir: str | Path, *, n_images: int = 6100, seed: int = 0) -> dict:
    """Both files in `out_dir`, by file name (the stand-in world's generator interface)."""
    out_dir = Path(out_dir)
    tarball, ids = make_validation_tarball(out_dir / TARBALL_NAME, n_images, seed)
    narratives = make_narratives(out_dir / NARRATIVES_NAME, ids, seed=seed)
    return {TARBALL_NAME: tarball, NARRATIVES_NAME: narratives.path}
