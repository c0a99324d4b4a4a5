"""COSMOS's --data-root-dir trees, built from the store.

COSMOS reads Flickr30k through `read_flickr_pairs(<root>/flickr30k-images, 'val')`
(ExplainableML/cosmos c80348f, src/training/data.py:1064-1086): the caption file sits INSIDE
the image folder (`flickr30k_val.json`), each entry's `image` (`flickr30k-images/<id>.jpg`) is
joined onto the folder's parent, `caption` must be a list, and every image is opened with
`Image.open(path).convert('RGB')` without LOAD_TRUNCATED_IMAGES (:879). So the folder is
assembled: the store's images, one link each (never a link to the store folder, which would put
the JSONs into the store), plus BLIP's JSONs reduced to the records whose image COSMOS opens.
"""

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import ijson

from vlprep.annotations import ImageRefs, filter_by_images
from vlprep.atomic import scratch, staged
from vlprep.errors import ConversionError
from vlprep.layout import SKIPPED_NAMES, assemble

log = logging.getLogger(__name__)

CHECK = "flickr30k"


def _captions_are_lists(path: Path) -> None:
    """COSMOS gives an entry an image_id only when its caption is a list; map_img_cap then
    raises KeyError on the first one that is not (data.py:1076-1086, :1005-1016)."""
    with open(path, "rb") as f:
        for index, record in enumerate(ijson.items(f, "item")):
            if not isinstance(record.get("caption"), list):
                raise ConversionError(
                    f"{path}: record {index}'s caption is not a list; COSMOS's retrieval "
                    "evaluation needs BLIP's format ({image, caption: [...]}): is it the right file?"
                )


def flickr30k_folder(
    images: str | Path,
    annotations: dict[str, str | Path],
    dest: str | Path,
    *,
    check: dict[str, Any],
    reports: str | Path,
    link_mode: str,
) -> dict[str, Any]:
    """Build `dest` (cosmos/flickr30k-images) from the store folder `images` (the unpacked
    flickr30k-images/) and BLIP's JSONs ({file name in dest: stored file}).

    `check` is the image check of `images` (vlprep.images.check_folder). Each JSON keeps the
    records whose image opens strictly and is written inside `dest`; its report goes to
    `reports/<file name>`. Returns the counts and the reports by file name.
    """
    images, dest, reports = Path(images), Path(dest), Path(reports)
    # The records name "flickr30k-images/<id>.jpg", relative to the images folder's parent.
    refs = ImageRefs("", "image", "path", {images.name: CHECK}, eval_set=True)
    filtered: dict[str, Any] = {}
    with scratch(dest, "captions") as tmp:
        for name, src in annotations.items():
            report = filter_by_images(
                src, tmp / name, refs=refs, layout_root=images.parent, checks={CHECK: check},
                allow_truncated=False, link_mode="copy",
            )  # fmt: skip
            _captions_are_lists(tmp / name)
            filtered[name] = report
        members = (
            (entry.name, Path(entry.path))
            for entry in os.scandir(images)
            if entry.is_file() and entry.name not in SKIPPED_NAMES
        )
        written = [
            (name, lambda path, src=tmp / name: shutil.copyfile(src, path)) for name in filtered
        ]
        counts = assemble(dest, members, written, mode=link_mode)
    for name, report in filtered.items():
        report["annotation"] = str(dest / name)
        report["written"] = "inside the image folder, " + (
            "filtered" if report["dropped"] else "as stored"
        )
        with staged(reports / name) as out:
            out.write_text(json.dumps(report, indent=1) + "\n")
    log.info("%s: %d images (%s), %s", dest, counts["members"], link_mode, ", ".join(
        f"{name} {r['kept']} of {r['records']} records" for name, r in filtered.items()))  # fmt: skip
    return {**counts, "annotations": filtered}
