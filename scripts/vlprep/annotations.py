"""Annotation files reshaped for the loader that opens them.

MiniGPT-4 ships cc_sbu_align's `filter_cap.json` as {"annotations": [...]} and its loader reads
`json.load(f)["annotations"]`; VPGTrans's BaseDataset does `annotation.extend(json.load(f))`,
so it needs the bare list. The records are streamed (ijson), so memory does not grow with the
file, and written one per line inside the list.
"""

import json
import logging
from pathlib import Path

import ijson

from vlprep.atomic import staged
from vlprep.errors import ConversionError

log = logging.getLogger(__name__)


def _first_token(path: Path) -> str:
    with open(path, "rb") as f:
        for prefix, event, _ in ijson.parse(f):
            if prefix == "":
                return event
    raise ConversionError(f"{path}: empty file; expected a JSON object or list")


def annotations_as_list(src: str | Path, dst: str | Path) -> int:
    """Write the records of `src` ({"annotations": [...]} or already a list) to `dst` as a list.

    Returns the number of records. A file of another shape is an error naming it.
    """
    src, dst = Path(src), Path(dst)
    try:
        first = _first_token(src)
        if first == "start_array":
            prefix = "item"
        elif first == "start_map":
            prefix = "annotations.item"
        else:
            raise ConversionError(f"{src}: expected a JSON object or list, found a {first}")
        count = 0
        with open(src, "rb") as f, staged(dst) as tmp, open(tmp, "w", encoding="utf-8") as out:
            out.write("[")
            for record in ijson.items(f, prefix, use_float=True):
                out.write(",\n" if count else "\n")
                out.write(json.dumps(record, ensure_ascii=False))
                count += 1
            out.write("\n]\n")
            if count == 0:
                raise ConversionError(
                    f"{src}: no records (expected a list or an object with an 'annotations' "
                    "list); the download may be the wrong file"
                )
    except ijson.JSONError as err:
        raise ConversionError(
            f"{src}: malformed JSON ({err}); delete it and fetch it again"
        ) from None
    log.info("%s: %d records -> %s (a JSON list)", src, count, dst)
    return count
