"""Annotation files reshaped for the loader that opens them.

An annotation file at a consumer's `storage` path must list only images that the consumer
opens: its own path join, its own decoder settings. A record naming a missing or undecodable
image kills a training run at that sample (FileNotFoundError, UnidentifiedImageError), so
`filter_by_images` keeps exactly the records whose image opens and reports the rest per reason;
`filter_by_ids` keeps a companion file (VQA's official questions and answers) in step.

MiniGPT-4 ships cc_sbu_align's `filter_cap.json` as {"annotations": [...]} and its loader reads
`json.load(f)["annotations"]`; VPGTrans's BaseDataset does `annotation.extend(json.load(f))`,
so it needs the bare list. The records are streamed (ijson), so memory does not grow with the
file, and written one per line inside the list.
"""

import json
import logging
import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ijson

from vlprep.atomic import staged
from vlprep.errors import ConversionError, VlprepError
from vlprep.layout import link_file
from vlprep.progress import bar

log = logging.getLogger(__name__)
# A damaged file's errors: ijson's, and yajl handing on a lone surrogate escape
# (`"\ud800{"`) as bytes that are not UTF-8
JSON_ERRORS = (ijson.JSONError, UnicodeDecodeError)


def _first_token(path: Path) -> str:
    with open(path, "rb") as f:
        for prefix, event, _ in ijson.parse(f):
            if prefix == "":
                return event
    raise ConversionError(f"{path}: empty file; expected a JSON object or list")


# ---- annotations reduced to the images their consumer can open ------------------------------

# How a consumer turns a record into an image path under its vis_root.
JOINS = {
    # os.path.join(vis_root, ann[field]): an absolute value escapes vis_root, as in the loader
    "path": lambda value: value,
    # os.path.join(vis_root, os.path.basename(ann[field])): VPGTrans's ImageTextPairDataset
    "basename": lambda value: posixpath.basename(value),
    # os.path.join(vis_root, "{}.jpg".format(ann[field])): CCSBUAlignDataset
    "id_jpg": lambda value: f"{value}.jpg",
}
EXAMPLES = 5


@dataclass(frozen=True)
class ImageRefs:
    """Where the consumer of an annotation file opens each record's image.

    `vis_root` is the consumer's image folder relative to the layout root; `field` the record
    key it reads; `join` one of JOINS. `folders` maps the first folder of the joined name to
    the image check that covers it ("" when vis_root is one flat checked folder). `rewrite`
    "basename" writes the record's `field` as its base name: for a consumer that joins the
    value unchanged while upstream wrote absolute paths of its own machine. `records` is the
    ijson prefix of the records; `id_field` names the key whose dropped values companion files
    follow; `eval_set` marks an evaluation set, whose shrinking is said loudly.
    """

    vis_root: str
    field: str
    join: str
    folders: dict[str, str]
    rewrite: str | None = None
    records: str = "item"
    id_field: str | None = None
    eval_set: bool = False

    def name_of(self, record: Any) -> str | None:
        """The image path relative to vis_root that the consumer opens, or None if the record
        has no usable `field` (the loader would raise KeyError or TypeError)."""
        if not isinstance(record, dict):
            return None
        value = record.get(self.field)
        if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
            return None
        value = str(value)
        if self.rewrite == "basename":
            value = posixpath.basename(value)
        return JOINS[self.join](value)


class _Tally:
    """Kept and dropped records, with a few examples per reason."""

    def __init__(self) -> None:
        self.records = self.kept = 0
        self.dropped: dict[str, int] = {}
        self.examples: dict[str, list[str]] = {}
        self.dropped_ids: list[Any] = []

    def drop(self, reason: str, example: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        shown = self.examples.setdefault(reason, [])
        if len(shown) < EXAMPLES:
            shown.append(example)


def _verdict(refs: ImageRefs, folder: Path, name: str | None, bad: dict[str, dict[str, str]]):
    """None if the consumer opens `name` under `folder`; else (reason, detail)."""
    if name is None:
        return "no image field", f"record without a usable {refs.field!r}"
    path = os.path.normpath(os.path.join(folder, name))
    rel = os.path.relpath(path, folder)
    if rel == ".." or rel.startswith("../") or os.path.isabs(rel):
        return "outside the image folder", name
    first, _, rest = rel.partition("/")
    check, inner = ("", rel) if "" in refs.folders else (first, rest)
    if check not in refs.folders:
        raise VlprepError(
            f"an image under {refs.vis_root}/{first}/ is named, but no image check of that "
            f"folder was planned (checks: {sorted(refs.folders)}); this is a vlprep bug, please "
            "report it"
        )
    if not os.path.isfile(path):
        return "missing", rel
    reason = bad[refs.folders[check]].get(inner)
    if reason is not None:
        return "undecodable", f"{rel} ({reason})"
    return None


def filter_by_images(
    src: str | Path,
    dst: str | Path,
    *,
    refs: ImageRefs,
    layout_root: str | Path,
    checks: dict[str, dict],
    allow_truncated: bool,
    link_mode: str,
) -> dict[str, Any]:
    """Write at `dst` the records of `src` whose image the consumer opens; return the report.

    `checks` are image-check reports (vlprep.images.check_folder) by the names `refs.folders`
    use. A record is kept when its image exists under `layout_root/refs.vis_root` (joined as
    the consumer joins it) and decodes (`allow_truncated`: with LOAD_TRUNCATED_IMAGES). When
    every record is kept unchanged and `src` is already a list, `dst` presents `src` itself
    (by `link_mode`: the store holds it once); otherwise it is a new JSON list, records in
    their order, one per line. No record kept is an error: the folder or the join is wrong.
    """
    from vlprep.images import unusable  # Pillow is needed only once images are judged

    src, dst = Path(src), Path(dst)
    folder = Path(layout_root) / refs.vis_root
    records = _records_prefix(src, refs.records)
    bad = {
        name: unusable(report, allow_truncated=allow_truncated) for name, report in checks.items()
    }
    tally = _Tally()
    try:
        with (
            open(src, "rb") as f,
            staged(dst) as tmp,
            open(tmp, "w", encoding="utf-8") as out,
            bar(None, f"filter {src.name}", "rec") as progress,
        ):
            out.write("[")
            for record in ijson.items(f, records, use_float=True):
                tally.records += 1
                progress.update()
                name = refs.name_of(record)
                verdict = _verdict(refs, folder, name, bad)
                if verdict is not None:
                    tally.drop(*verdict)
                    if refs.id_field and isinstance(record, dict):
                        tally.dropped_ids.append(record.get(refs.id_field))
                    continue
                if refs.rewrite:
                    record = {**record, refs.field: posixpath.basename(str(record[refs.field]))}
                out.write(",\n" if tally.kept else "\n")
                out.write(json.dumps(record, ensure_ascii=False))
                tally.kept += 1
            out.write("\n]\n")
            out.close()
            if not tally.kept:
                raise ConversionError(_nothing_kept(src, folder, tally))
            unchanged = not tally.dropped and not refs.rewrite and records == "item"
            if unchanged:  # present the source itself: the store holds it once
                tmp.unlink()
                link_file(src, tmp, os.path.abspath(dst.parent), link_mode)
    except JSON_ERRORS as err:
        raise ConversionError(
            f"{src}: malformed JSON ({err}); delete it and fetch it again"
        ) from None
    report = {
        "annotation": str(dst),
        "source": str(src),
        "image_folder": str(folder),
        "records": tally.records,
        "kept": tally.kept,
        "dropped": dict(sorted(tally.dropped.items())),
        "examples": tally.examples,
        "written": "linked to the source" if unchanged else "filtered copy",
        "rewritten": f"{refs.field} as its base name (relative to {refs.vis_root})"
        if refs.rewrite
        else None,
        "eval_set": refs.eval_set,
    }
    if refs.id_field:
        report["dropped_ids"] = tally.dropped_ids
    _log_filtered(report)
    return report


def _records_prefix(src: Path, wanted: str) -> str:
    """Where the records are: `wanted`, or "item" if the file is already a bare list (MiniGPT-4
    ships {"annotations": [...]}; VPGTrans's own copy of the same set is the list)."""
    try:
        first = _first_token(src)
    except JSON_ERRORS as err:
        raise ConversionError(
            f"{src}: malformed JSON ({err}); delete it and fetch it again"
        ) from None
    if first == "start_array":
        return "item"
    if wanted == "item" or first != "start_map":
        raise ConversionError(
            f"{src}: expected a JSON list of records, found a {first}; the download may be the "
            "wrong file"
        )
    return wanted


def _nothing_kept(src: Path, folder: Path, tally: _Tally) -> str:
    reasons = ", ".join(f"{n} {reason}" for reason, n in tally.dropped.items()) or "no records"
    first = next(iter(tally.examples.values()), [""])[0]
    return (
        f"{src}: none of its {tally.records} records names an image that opens under {folder} "
        f"({reasons}; e.g. {first}); the image folder is incomplete or not the one this file "
        "belongs to: rerun the workflow, or check the catalog entry"
    )


def _log_filtered(report: dict[str, Any]) -> None:
    dropped = sum(report["dropped"].values())
    if not dropped:
        log.info("%s: all %d records open their image", report["annotation"], report["records"])
        return
    reasons = ", ".join(f"{reason}: {n}" for reason, n in report["dropped"].items())
    log.warning(
        "%s: dropped %d of %d records whose image does not open (%s)",
        report["annotation"],
        dropped,
        report["records"],
        reasons,
    )
    if report["eval_set"]:
        log.warning(
            "%s is an EVALUATION set: it now has %d of %d entries; scores on it are not "
            "comparable with results on the full set",
            report["annotation"],
            report["kept"],
            report["records"],
        )


def _top_level_except(path: Path, skipped: str) -> dict[str, Any]:
    """The top-level keys of a JSON object file but `skipped`, streamed (the big list under
    `skipped` is never built)."""
    found: dict[str, Any] = {}
    key, builder, depth = None, None, 0
    with open(path, "rb") as f:
        for prefix, event, value in ijson.parse(f, use_float=True):
            if depth == 0 and prefix == "":
                if event == "map_key":
                    key = value
                    builder = None if key == skipped else ijson.ObjectBuilder()
                elif event not in ("start_map", "end_map"):
                    raise ConversionError(f"{path}: expected a JSON object, found a {event}")
                continue
            if event in ("start_map", "start_array"):
                depth += 1
            elif event in ("end_map", "end_array"):
                depth -= 1
            if builder is not None:
                builder.event(event, value)
                if depth == 0:
                    found[key] = builder.value
    return found


def filter_by_ids(
    src: str | Path,
    dst: str | Path,
    *,
    list_key: str,
    id_field: str,
    dropped: list[Any],
    link_mode: str,
) -> dict[str, Any]:
    """Write at `dst` the JSON object `src` without the `list_key` entries whose `id_field` is
    in `dropped` (a companion of a filtered file: VQA's official questions and answers, which
    the evaluation requires to match the predictions exactly). Nothing dropped: `dst` presents
    `src` (by `link_mode`). Returns {"records", "kept", "dropped"} ({"dropped": 0} then)."""
    from vlprep.layout import place

    src, dst = Path(src), Path(dst)
    gone = {value for value in dropped if not isinstance(value, list | dict)}
    # ids that are JSON lists or objects cannot be hashed: they are compared one by one
    odd = [value for value in dropped if isinstance(value, list | dict)]
    records = kept = 0
    if not dropped:
        place(src, dst, link_mode)
        log.info("%s: nothing dropped from its annotation file; presents %s", dst, src)
        return {"dropped": 0}
    try:
        head = _top_level_except(src, list_key)
        with open(src, "rb") as f, staged(dst) as tmp, open(tmp, "w", encoding="utf-8") as out:
            out.write(json.dumps(head, ensure_ascii=False)[:-1] if head else "{")
            out.write(f"{', ' if head else ''}{json.dumps(list_key)}: [")
            for record in ijson.items(f, f"{list_key}.item", use_float=True):
                records += 1
                if isinstance(record, dict):
                    value = record.get(id_field)
                    if value in (odd if isinstance(value, list | dict) else gone):
                        continue
                out.write(",\n" if kept else "\n")
                out.write(json.dumps(record, ensure_ascii=False))
                kept += 1
            out.write("\n]}\n")
    except JSON_ERRORS as err:
        raise ConversionError(
            f"{src}: malformed JSON ({err}); delete it and fetch it again"
        ) from None
    log.info("%s: %d of %d %s kept (%d ids dropped with its annotation file)",
             dst, kept, records, list_key, len(gone) + len(odd))  # fmt: skip
    return {"records": records, "kept": kept, "dropped": records - kept}
