"""The paths COSMOS hard-codes, and how to point them at the layout.

COSMOS (ExplainableML/cosmos c80348f) takes `--data-root-dir` and `--imagenet-val` on the
command line, but two roots are literals in its code:

- its eight segmentation configs (src/training/seg_configs/cfg_*.py, line 10-13) each set
  `data_root = '/mmsegmentation_datasets/data/<subpath>'`, and seg_eval.py:41 loads them from
  ./training/seg_configs/ with no override flag;
- src/dataloaders/utils.py:17 sets `dataset_root = "/your/directory/to/classification/dataset"`,
  which every classification loader passes to torchvision as `root`.

`cosmos/mmseg/` mirrors mmseg's `data/` tree, so one link `/mmsegmentation_datasets/data ->
<cosmos>/mmseg` serves all eight configs (`make_alias`: opt-in, never replaces anything), and
`checkout_edits` computes the exact one-line edits of a given checkout instead (printed as a
patch, or applied with a backup by `apply_edits`).
"""

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from vlprep.errors import VlprepError

MMSEG_ALIAS = "/mmsegmentation_datasets/data"
SEG_CONFIGS = "src/training/seg_configs"
UTILS = "src/dataloaders/utils.py"
# The assignment lines as COSMOS writes them (one per file, at module level).
DATA_ROOT_LINE = re.compile(r"""^data_root\s*=\s*(['"])(?P<path>[^'"]*)\1\s*$""")
DATASET_ROOT_LINE = re.compile(r"""^dataset_root\s*=\s*(['"])(?P<path>[^'"]*)\1\s*$""")
BACKUP_SUFFIX = ".vlprep-orig"


@dataclass(frozen=True)
class Edit:
    """One line of a COSMOS file to rewrite (line numbers count from 1)."""

    file: Path
    line: int
    old: str
    new: str


def _assignment(path: Path, pattern: re.Pattern) -> tuple[int, str, str]:
    """(line number, the line, its path value) of the one line of `path` that matches."""
    found = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            match = pattern.match(line.rstrip("\n"))
            if match:
                found.append((number, line.rstrip("\n"), match["path"]))
    if len(found) != 1:
        name = "data_root" if pattern is DATA_ROOT_LINE else "dataset_root"
        raise VlprepError(
            f"{path}: expected one `{name} = '...'` line, found {len(found)}; is this a "
            "COSMOS checkout (ExplainableML/cosmos)?"
        )
    return found[0]


def checkout_edits(checkout: str | Path, mmseg_root: str, classification_root: str) -> list[Edit]:
    """The edits that point a COSMOS checkout at vlprep's trees; lines already right are left.

    Each segmentation config keeps its own subpath under the mmseg data/ folder:
    `/mmsegmentation_datasets/data/VOCdevkit/VOC2010` becomes `<mmseg_root>/VOCdevkit/VOC2010`.
    """
    checkout = Path(checkout)
    configs = sorted((checkout / SEG_CONFIGS).glob("cfg_*.py"))
    utils = checkout / UTILS
    if not configs or not utils.is_file():
        raise VlprepError(
            f"{checkout}: no {SEG_CONFIGS}/cfg_*.py or {UTILS}: cosmos.checkout must be the "
            "root of a COSMOS clone (git clone https://github.com/ExplainableML/cosmos)"
        )
    edits = []
    for config in configs:
        number, line, path = _assignment(config, DATA_ROOT_LINE)
        subpath = _mmseg_subpath(path, mmseg_root)
        backup = config.with_name(config.name + BACKUP_SUFFIX)
        if subpath is None and backup.is_file():  # edited by an earlier run, for another root
            subpath = _mmseg_subpath(_assignment(backup, DATA_ROOT_LINE)[2], mmseg_root)
        if subpath is None:
            raise VlprepError(
                f"{config}:{number}: data_root {path!r} is neither under {MMSEG_ALIAS} nor "
                f"under {mmseg_root}; edit it by hand to the folder under {mmseg_root}"
            )
        new = line.replace(path, f"{mmseg_root}/{subpath}" if subpath else mmseg_root)
        if new != line:
            edits.append(Edit(config, number, line, new))
    number, line, path = _assignment(utils, DATASET_ROOT_LINE)
    new = line.replace(path, classification_root) if path else line
    if new != line:
        edits.append(Edit(utils, number, line, new))
    return edits


def _mmseg_subpath(path: str, mmseg_root: str) -> str | None:
    for prefix in (MMSEG_ALIAS, mmseg_root.rstrip("/")):
        if path == prefix:
            return ""
        if path.startswith(prefix + "/"):
            return path[len(prefix) + 1 :]
    return None


def render_patch(edits: list[Edit], checkout: str | Path) -> str:
    """The edits as a unified diff against the checkout (`patch -p1 -d <checkout>` applies it)."""
    checkout = Path(checkout)
    chunks = []
    for edit in edits:
        rel = edit.file.relative_to(checkout).as_posix()
        lines = edit.file.read_text(encoding="utf-8").splitlines(keepends=True)
        after = list(lines)
        after[edit.line - 1] = edit.new + "\n"
        chunks += difflib.unified_diff(lines, after, f"a/{rel}", f"b/{rel}", n=1)
    return "".join(chunks)


def apply_edits(edits: list[Edit]) -> list[Path]:
    """Rewrite each edited line in place, keeping the first original as `<file>.vlprep-orig`
    (a backup from an earlier run is kept: it is the pristine one). Return the backups."""
    backups = []
    for edit in edits:
        lines = edit.file.read_text(encoding="utf-8").splitlines(keepends=True)
        if lines[edit.line - 1].rstrip("\n") != edit.old:
            raise VlprepError(f"{edit.file}:{edit.line} changed since it was read; run again")
        backup = edit.file.with_name(edit.file.name + BACKUP_SUFFIX)
        if not backup.exists():
            backup.write_bytes(edit.file.read_bytes())
        lines[edit.line - 1] = edit.new + "\n"
        tmp = edit.file.with_name(f".{edit.file.name}.vlprep-tmp-{os.getpid()}")
        tmp.write_text("".join(lines), encoding="utf-8")
        os.replace(tmp, edit.file)
        backups.append(backup)
    return backups


def make_alias(
    alias: str | Path,
    target: str | Path,
    *,
    unset_hint: str = "leave cosmos.mmseg_alias unset and apply the config edits instead "
    "(cosmos.checkout)",
) -> str:
    """Create the link `alias` -> `target` (absolute); return what was done.

    Never replaces anything: an existing link to `target` is fine, anything else at `alias`
    is an error that says what is there and, in `unset_hint`, the setting that avoids it. No
    permission to create it: the error gives the command to run as root.
    """
    alias, target = Path(alias), Path(os.path.abspath(target))
    if alias.is_symlink():
        if Path(os.path.realpath(alias)) == Path(os.path.realpath(target)):
            return f"{alias} -> {target}: already in place"
        raise VlprepError(
            f"{alias} is a link to {os.readlink(alias)}, not to {target}; vlprep replaces "
            f"nothing: remove it yourself (rm {alias}) or {unset_hint.split(' and ')[0]}"
        )
    if alias.exists():
        kind = "folder" if alias.is_dir() else "file"
        raise VlprepError(
            f"{alias} exists (a {kind}); vlprep replaces nothing: move it away, or {unset_hint}"
        )
    try:
        alias.parent.mkdir(parents=True, exist_ok=True)
        alias.symlink_to(target, target_is_directory=True)
    except PermissionError:
        raise VlprepError(
            f"no permission to create {alias}; as root run:\n"
            f"  mkdir -p {alias.parent} && ln -s {target} {alias}"
        ) from None
    return f"{alias} -> {target}: created"


def instructions(cosmos_root: str | Path) -> list[str]:
    """What to tell a COSMOS user at the end of a run that built cosmos/."""
    cosmos_root = Path(os.path.abspath(cosmos_root))
    mmseg, classification = cosmos_root / "mmseg", cosmos_root / "classification"
    return [
        "vlprep: pointing COSMOS (ExplainableML/cosmos) at this tree:",
        f"  retrieval:      --data-root-dir {cosmos_root}",
        f"  ImageNet:       --imagenet-val {cosmos_root / 'imagenet/data/val_images'}",
        f"  classification: src/dataloaders/utils.py:17 dataset_root = {str(classification)!r}",
        "    (COSMOS evaluates only SUN397 as shipped: un-comment the list at "
        "src/training/data.py:933 for all ten)",
        f"  segmentation:   the 8 configs read {MMSEG_ALIAS}/...; either, as root:",
        f"    mkdir -p {Path(MMSEG_ALIAS).parent} && ln -s {mmseg} {MMSEG_ALIAS}",
        "    or set cosmos.checkout (and cosmos.apply_edits) in the config: vlprep prints "
        "(or applies) the edits of those lines",
    ]


def fixed_paths(settings: dict, mmseg_root: str, classification_root: str) -> list[str]:
    """Do what config `cosmos:` asks (alias, checkout edits); return lines saying what was done
    and, for a checkout without apply_edits, the patch to apply."""
    mmseg_root = os.path.abspath(mmseg_root)
    classification_root = os.path.abspath(classification_root)
    lines = []
    if settings.get("mmseg_alias"):
        lines.append(make_alias(settings["mmseg_alias"], mmseg_root))
    checkout = settings.get("checkout")
    if checkout:
        edits = checkout_edits(checkout, mmseg_root, classification_root)
        if not edits:
            lines.append(f"{checkout}: every COSMOS root already points at this layout")
        elif settings.get("apply_edits"):
            backups = apply_edits(edits)
            lines += [f"{e.file}:{e.line}: {e.old.strip()} -> {e.new.strip()}" for e in edits]
            lines.append(f"applied {len(edits)} edit(s); originals kept as *{BACKUP_SUFFIX}")
            lines.append(f"  ({len(set(backups))} backup file(s))")
        else:
            lines.append(
                f"{len(edits)} line(s) of {checkout} to edit (set cosmos.apply_edits: true to "
                f"apply them, or: patch -p1 -d {checkout} < this-file's patch below):"
            )
            lines.append(render_patch(edits, checkout).rstrip("\n"))
    return lines
