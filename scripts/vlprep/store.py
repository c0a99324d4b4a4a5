"""Store folders made of several downloads, and the catalog's hub archives.

Most of `extracted/` is one catalog entry unpacked (rule extract_archive). Some consumers open
one folder that upstream publishes as several downloads: torchvision's OxfordIIITPet opens
`oxford-iiit-pet/` holding `images/` (images.tar.gz) and `annotations/` (annotations.tar.gz);
Flowers102 opens `flowers-102/` holding `jpg/` (102flowers.tgz) beside the loose
`imagelabels.mat` and `setid.mat`. `MERGED` lists such folders as group -> Merge(parts): each
part a catalog entry, unpacked if it is an archive (into a sub-folder if `into` says so) or
placed as a file (under `name` if given). Rule merge_store (rules/fetch.smk) builds
`extracted/<group>/` with `merge_group`, through vlprep.extract.extract_many: one staged
folder, renamed into place only once every part is in, with every check of the extractor; two
parts putting something on one path is an error, never an overwrite.

The table holds COSMOS's three classification folders made of several downloads (Pets,
Flowers102, and StanfordCars from the user's manual files; vlprep.products.classification links
them into cosmos/classification/). Besides their products' runs, it is tested with
`merge_group` on real archives (tests/unit/test_store.py), and tests/e2e/test_store_kinds.py,
which runs Snakemake on a small Snakefile that adds a group to `MERGED` and then includes the
real rules/common.smk and rules/fetch.smk. The config has no say in the table: what a store
folder holds is code, like the products.
"""

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vlprep.errors import CatalogError, CorruptArchiveError

log = logging.getLogger(__name__)

# Group names name extracted/<group>/, beside the catalog's ids, and follow their rule.
GROUP_NAME = re.compile(r"[a-z][a-z0-9_]*")
# A relative path: "/"-separated, no empty, "." or ".." component, no backslash.
RELATIVE_PATH = re.compile(r"(?!.*(?:^|/)\.{1,2}(?:/|$))[^/\\\0]+(?:/[^/\\\0]+)*")


@dataclass(frozen=True)
class MergePart:
    """One catalog entry of a merged folder."""

    entry: str
    # An archive: the sub-folder its members go into ("": the group folder). Its members are
    # then renamed ones (vlprep.extract): files only, empty folders dropped, links refused.
    into: str = ""
    name: str = ""  # a loose file: its path in the group folder ("": its stored name)


@dataclass(frozen=True)
class Merge:
    """A store folder built from several catalog entries, in this order."""

    parts: tuple[MergePart, ...]


MERGED: dict[str, Merge] = {
    # torchvision OxfordIIITPet opens oxford-iiit-pet/{images,annotations}/ (oxford_iiit_pet.py:
    # 61-63); each archive carries its own top folder.
    "oxford_iiit_pet": Merge(
        (MergePart("oxford_pets_images"), MergePart("oxford_pets_annotations"))
    ),
    # torchvision Flowers102 opens flowers-102/{jpg/, imagelabels.mat, setid.mat}
    # (flowers102.py:57-58, 68, 71); the tgz carries jpg/.
    "flowers102": Merge(
        (
            MergePart("flowers102_images"),
            MergePart("flowers102_labels"),
            MergePart("flowers102_setid"),
        )
    ),
    # torchvision StanfordCars' test split opens stanford_cars/{devkit/cars_meta.mat,
    # cars_test_annos_withlabels.mat, cars_test/} (stanford_cars.py:56-64, 80, 99-102); the
    # user's car_devkit.tgz carries devkit/, cars_test.tgz cars_test/.
    "stanford_cars": Merge(
        (
            MergePart("stanford_cars_devkit"),
            MergePart("stanford_cars_test"),
            MergePart("stanford_cars_test_annos"),
        )
    ),
}


def check_groups(merged: Mapping[str, Merge], catalog: Mapping[str, dict]) -> None:
    """Refuse a table the rules cannot build, listing every problem (CatalogError).

    A part whose entry is not in this catalog (a trimmed one) is not a problem here: only its
    group fails, and only when it is built, naming the entry.
    """
    problems = []
    for group, merge in merged.items():
        if not GROUP_NAME.fullmatch(group):
            problems.append(f"{group}: a group name must match [a-z][a-z0-9_]*")
        if group in catalog:
            problems.append(
                f"{group}: also a catalog entry id, so extracted/{group}/ would be both"
            )
        if not merge.parts:
            problems.append(f"{group}: has no parts")
        for part in merge.parts:
            entry = catalog.get(part.entry)
            for key, path in (("into", part.into), ("name", part.name)):
                if path and not RELATIVE_PATH.fullmatch(path):
                    problems.append(
                        f"{group}: {part.entry}: {key} {path!r} must be a relative path "
                        "without '.' or '..'"
                    )
            if entry is None:
                continue
            is_archive = entry["archive"] != "none"
            if part.into and not is_archive:
                problems.append(
                    f"{group}: {part.entry} is not an archive: place it under a `name`, "
                    "not `into` a folder"
                )
            if part.name and is_archive:
                problems.append(
                    f"{group}: {part.entry} is an archive: unpack it `into` a folder; "
                    "`name` is for loose files"
                )
            if entry["kind"] == "hf" and not is_archive:
                problems.append(
                    f"{group}: {part.entry} is a hub entry (a folder of files): only its "
                    "archive (archive_file) can be a part"
                )
    if problems:
        lines = "\n".join(f"  - {problem}" for problem in problems)
        raise CatalogError(f"vlprep.store.MERGED: {len(problems)} problem(s):\n{lines}")


def merge_plan(group: str, merged: Mapping[str, Merge], catalog: Mapping[str, dict]) -> list:
    """What rule merge_store passes its script for `group`, one dict per part (in the order of
    its inputs): what decides the result, so that a change rebuilds it, and nothing of where
    data_root is. A part not in the catalog gets kind "missing" (its input fails first)."""
    from vlprep.extract import FILE  # the extractor is imported only where a group is planned

    plan = []
    for part in merged[group].parts:
        entry = catalog.get(part.entry)
        if entry is None:
            plan.append({"entry": part.entry, "kind": "missing"})
            continue
        problem = hub_archive_problem(part.entry, entry)
        if problem:
            raise CatalogError(f"store group {group}: {problem}")
        is_archive = entry["archive"] != "none"
        plan.append(
            {
                "entry": part.entry,
                "kind": entry["archive"] if is_archive else FILE,
                "archive_file": entry.get("archive_file"),
                "into": part.into,
                "name": part.name,
                # A hub file's size is its own, verified on download; the catalog has none.
                "size": entry.get("size") if entry["kind"] != "hf" else None,
                "max_ratio": entry["max_unpack_ratio"],
            }
        )
    return plan


def merge_group(
    group: str,
    downloads: Sequence[Path],
    plan: Sequence[dict],
    dest: Path,
    *,
    catalog: Mapping[str, dict],
    manual_dir: Path,
) -> list[dict]:
    """Build the merged folder `dest` of `group` from its parts' `downloads` (in `plan` order:
    a file, or a hub entry's folder) as `plan` (merge_plan) says; return a report per part.

    `dest` appears only once every part is in. A clash between parts is a CorruptArchiveError
    naming both members; a broken archive is dealt with as for one entry
    (vlprep.sources.bad_archive: an unverified download is deleted so the next run fetches it
    again).
    """
    from vlprep.extract import FILE, Part, extract_many
    from vlprep.sources import bad_archive, stored_archive

    parts = []
    for download, part in zip(downloads, plan, strict=True):
        entry = part["entry"]
        if part["kind"] == "missing" or entry not in catalog:
            raise CatalogError(f"store group {group}: its part {entry} is not in the catalog")
        path = stored_archive(entry, Path(download), catalog[entry])
        if part["kind"] == FILE:
            rename = _named(part["name"]) if part["name"] else None
            parts.append(Part(path, FILE, rename=rename, entry=entry))
        else:
            rename = _under(part["into"]) if part["into"] else None
            parts.append(Part(path, part["kind"], part["size"], rename, entry, part["max_ratio"]))
    try:
        reports = extract_many(parts, Path(dest), entry=group)
    except CorruptArchiveError as err:
        owner = next((p for p in parts if err.archive and p.archive == Path(err.archive)), None)
        if owner is None:  # two parts clash: neither alone is to blame
            raise CorruptArchiveError(
                f"store group {group}: {err} If the parts really overlap, give one of them "
                "its own folder (`into`) or name (`name`) in vlprep.store.MERGED."
            ) from None
        source = catalog[owner.entry]
        raise bad_archive(owner.entry, owner.archive, source, Path(manual_dir), err) from None
    log.info("%s: %d parts merged into %s", group, len(parts), dest)
    return reports


def _named(name: str):
    """A loose file's rename: it goes to `name`."""
    return lambda _: name


def _under(folder: str):
    """An archive's rename: its files go under `folder` (renamed archives give files only)."""
    return lambda rel: f"{folder}/{rel}"


def hub_archive_problem(entry_id: str, entry: dict) -> str | None:
    """Why the hub download of an archive entry will not hold its archive_file (its include
    patterns do not fetch it), or None. Checked with huggingface_hub's own matching."""
    if entry["kind"] != "hf" or entry["archive"] == "none":
        return None
    from huggingface_hub.utils import filter_repo_objects

    patterns = entry.get("include")
    if list(filter_repo_objects([entry["archive_file"]], allow_patterns=patterns)):
        return None
    return (
        f"{entry_id}: archive_file {entry['archive_file']} is not among the files the entry's "
        f"include patterns {patterns} fetch from {entry['repo']}: add it to include in the "
        "catalog (or fix archive_file)"
    )
