"""Trees under cosmos/mmseg/ (the tree of mmseg's data/), assembled from the store.

A tree is a store folder shown as it is (one link per folder in symlink mode; a tree of
hardlinks, or a copy), with the folders vlprep generated (label maps, split lists) put into it.
The folders on the way to a generated one are real; every other entry is shown from the
store, one by one, so the store keeps the only copy and nothing is ever written into it.

Before a tree appears at its final path, what mmseg will pair is checked in it, through the
links: mmseg 1.1.1 `BaseSegDataset.load_data_list` (basesegdataset.py:229-271) either reads
an `ann_file` of ids (each `<img_path>/<id><img_suffix>` with `<seg_map_path>/<id>
<seg_map_suffix>`) or, without one, lists every file under `img_path` ending in `img_suffix`
(recursively, following links, names starting with "." skipped: mmengine LocalBackend
list_dir_or_file) and derives each map's name. So the image folder drives the sample list:
an image without its map fails the evaluation at that sample, after the others ran.
"""

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vlprep import atomic
from vlprep.errors import VlprepError
from vlprep.layout import SKIPPED_NAMES, place
from vlprep.products.segmentation import MmsegTree, Pairs

log = logging.getLogger(__name__)

SHOWN = 3  # missing pairs named in a message


def tree_plan(tree: MmsegTree, extracted: str) -> dict[str, Any]:
    """What build_tree needs, as plain data (a rule's params): store paths resolved."""

    def where(folder: str, inside: str) -> str:
        return os.path.join(extracted, folder, inside) if inside else f"{extracted}/{folder}"

    return {
        "base": where(*tree.base) if tree.base else None,
        "overlays": {rel: where(*src) for rel, src in tree.overlays.items()},
        "pairs": [vars(p) | {"suffixes": list(p.suffixes)} for p in tree.pairs],
        "fix": tree.fix,
    }


def _listed(images: Path, suffix: str) -> Iterator[str]:
    """The samples mmengine's list_dir_or_file finds: relative names, recursively, links
    followed, hidden names skipped (local_backend.py:525-541)."""
    stack = [images]
    while stack:
        folder = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_file():
                    rel = os.path.relpath(entry.path, images)
                    if rel.endswith(suffix):
                        yield rel
                elif os.path.isdir(entry.path):
                    stack.append(Path(entry.path))


def unpaired(root: Path, pairs: Pairs | dict) -> tuple[int, list[str]]:
    """(samples mmseg lists, the paths it would open that are missing) for one pairing."""
    p = pairs if isinstance(pairs, dict) else vars(pairs)
    images, maps = root / p["images"], root / p["maps"]
    missing: list[str] = []
    if p["split"]:
        split = root / p["split"]
        if not split.is_file():
            return 0, [str(split)]
        ids = [line.strip() for line in split.read_text().splitlines()]
        names = [(f"{i}{p['img_suffix']}", i) for i in ids]
        for image, _ in names:
            if not (images / image).is_file():
                missing.append(str(images / image))
    else:
        if not images.is_dir():
            return 0, [f"{images}/"]
        cut = len(p["img_suffix"])
        names = [(rel, rel[:-cut]) for rel in _listed(images, p["img_suffix"])]
    for _, stem in names:
        for suffix in p["suffixes"]:
            if not (maps / f"{stem}{suffix}").is_file():
                missing.append(str(maps / f"{stem}{suffix}"))
    return len(names), missing


def check_pairs(root: Path, shown_as: Path, plan: dict[str, Any]) -> dict[str, int]:
    """Raise a VlprepError naming what mmseg would miss in `root` (shown as `shown_as`)."""
    counts = {}
    for pairs in plan["pairs"]:
        total, missing = unpaired(root, pairs)
        where = f"{shown_as}/{pairs['images']}"
        if missing:
            names = ", ".join(m.replace(str(root), str(shown_as), 1) for m in missing[:SHOWN])
            raise VlprepError(
                f"{shown_as}: {len(missing)} file(s) mmseg opens are missing (of {total} samples "
                f"in {where}; first: {names}). {plan['fix']}"
            )
        if not total:
            raise VlprepError(f"{where}: no samples; {plan['fix']}")
        counts[pairs["split"] or pairs["images"]] = total
    return counts


def _covers(rel: str, overlays: dict[str, str]) -> bool:
    """Whether an overlay goes inside the entry `rel` (which must then be a real folder)."""
    return any(path.startswith(f"{rel}/") for path in overlays)


def _mirror(base: Path, tmp: Path, rel: str, overlays: dict[str, str], mode: str) -> int:
    """Show base/rel's entries in tmp/rel one by one, real folders where overlays go."""
    shown = 0
    for entry in sorted(os.listdir(base / rel) if rel else os.listdir(base)):
        if entry in SKIPPED_NAMES:
            continue
        sub = f"{rel}/{entry}" if rel else entry
        if sub in overlays:
            raise VlprepError(
                f"{base / sub}: the store already has what vlprep generates at this path; "
                "remove it from the store (or the generated folder) and rerun"
            )
        if _covers(sub, overlays) and (base / sub).is_dir():
            (tmp / sub).mkdir()
            shown += _mirror(base, tmp, sub, overlays, mode)
        else:
            place(base / sub, tmp / sub, mode)
            shown += 1
    return shown


def build_tree(dst: str | Path, plan: dict[str, Any], link_mode: str) -> dict[str, int]:
    """Build the tree `dst` from `plan` (tree_plan), check what mmseg pairs in it, and only
    then put it at `dst` (replacing an older one). Returns the samples per pairing."""
    dst = Path(dst)
    base = Path(plan["base"]) if plan["base"] else None
    overlays = plan["overlays"]
    for source in [*([base] if base else []), *map(Path, overlays.values())]:
        if not source.is_dir():
            raise VlprepError(f"{source}: missing in the store; rerun the workflow to make it")
    if base is not None and not overlays:
        with atomic.staged(dst) as tmp:
            place(base, tmp, link_mode)
            counts = check_pairs(tmp, dst, plan)
        log.info("%s: %s of %s (%s)", dst, link_mode, base, counts)
        return counts
    with atomic.staged(dst, directory=True) as tmp:
        shown = _mirror(base, tmp, "", overlays, link_mode) if base else 0
        for rel, source in sorted(overlays.items()):
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            place(source, tmp / rel, link_mode)
        counts = check_pairs(tmp, dst, plan)
    log.info(
        "%s: %d store entries and %d generated folders (%s); samples %s",
        dst, shown, len(overlays), link_mode, counts,
    )  # fmt: skip
    return counts
