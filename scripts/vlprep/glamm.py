"""What GLaMM needs beyond --dataset_dir: its working-directory folders, and a root it can use.

GLaMM (mbzuai-oryx/groundingLMM e74865f2) runs from its checkout and opens three image folders
relative to the working directory, not to --dataset_dir (dataset/gcg_datasets/GranDf_gcg_ds.py:48
`self.image_folder = os.path.join(image_dir)`, with image_dir `coco_2017/train2017` l.182,
`flikcr_30k/train` l.196, `coco_2014/train2014` l.284). `working_dir_links` makes
`<checkout>/{coco_2017, coco_2014, flikcr_30k}` links to the layout's folders (opt-in, config
`glamm.checkout`; never replaces anything, as vlprep.cosmos_paths.make_alias), `instructions`
prints the `ln -s` commands otherwise.

GLaMM also rewrites paths by plain substring replacement over the whole path
(dataset/segm_datasets/Semantic_Segm_ds.py:28 `.replace(".jpg", ".png").replace("images",
"annotations")`, l.38 `.replace(".png", ".jpg").replace("cocostuff", "coco_2017")
.replace("Semantic_Segm/", "")`, l.81 `.replace("v2.0/labels", "images")`): a --dataset_dir whose
path holds one of those substrings sends ADE20K, COCO-Stuff or Mapillary to files that do not
exist. `root_problem` refuses such a root.
"""

import os
from pathlib import Path

from vlprep.cosmos_paths import make_alias
from vlprep.errors import VlprepError

# <checkout>/<name> -> <glamm>/<name>: the top folders of GLaMM's CWD-relative image folders.
WORKING_DIR_LINKS = ("coco_2017", "coco_2014", "flikcr_30k")
# ... and the image folders GLaMM opens through them (GranDf_gcg_ds.py:182,196,284).
WORKING_DIR_IMAGES = ("coco_2017/train2017", "flikcr_30k/train", "coco_2014/train2014")
# Substrings GLaMM replaces anywhere in a path (Semantic_Segm_ds.py:28,38,81), and which
# dataset each breaks when the layout root holds it.
REWRITTEN = {
    "images": "ADE20K labels (images -> annotations, Semantic_Segm_ds.py:28)",
    "cocostuff": "COCO-Stuff images (cocostuff -> coco_2017, Semantic_Segm_ds.py:38)",
    "Semantic_Segm/": "COCO-Stuff images (Semantic_Segm/ removed, Semantic_Segm_ds.py:38)",
    "v2.0/labels": "Mapillary images (v2.0/labels -> images, Semantic_Segm_ds.py:81)",
    ".jpg": "ADE20K labels (.jpg -> .png, Semantic_Segm_ds.py:28)",
    ".png": "COCO-Stuff images (.png -> .jpg, Semantic_Segm_ds.py:38)",
}


def root_problem(root: str | Path) -> str | None:
    """Why GLaMM cannot use `root` as --dataset_dir, or None.

    The check is on the absolute path with a trailing `/`, as GLaMM's joins see it
    (`os.path.join(dataset_dir, "Semantic_Segm")` then `/cocostuff/...`).
    """
    path = os.path.abspath(root) + "/"
    found = [sub for sub in REWRITTEN if sub in path]
    if not found:
        return None
    sub = found[0]
    return (
        f"the glamm layout root {os.path.abspath(root)} contains {sub!r}, which GLaMM replaces "
        f"anywhere in a path, so it would open the wrong files for {REWRITTEN[sub]}; set "
        f"layouts.glamm (or data_root) to a path without any of "
        f"{', '.join(repr(s) for s in REWRITTEN)}"
    )


def require_root(root: str | Path) -> None:
    problem = root_problem(root)
    if problem:
        raise VlprepError(problem)


def check_checkout(checkout: str | Path) -> Path:
    """The checkout as a Path, if it looks like a GLaMM clone (train.py and dataset/utils/)."""
    checkout = Path(checkout)
    if not (checkout / "train.py").is_file() or not (checkout / "dataset" / "utils").is_dir():
        raise VlprepError(
            f"{checkout}: no train.py or dataset/utils/: glamm.checkout must be the root of a "
            "GLaMM clone (git clone https://github.com/mbzuai-oryx/groundingLMM), the folder "
            "you run train.py from"
        )
    return checkout


def working_dir_links(checkout: str | Path, glamm_root: str | Path) -> list[str]:
    """Create `<checkout>/<name> -> <glamm>/<name>` for each working-directory folder; return
    what was done. Nothing is replaced: a folder or another link there is an error naming it."""
    checkout = check_checkout(checkout)
    glamm_root = Path(os.path.abspath(glamm_root))
    missing = [sub for sub in WORKING_DIR_IMAGES if not (glamm_root / sub).is_dir()]
    if missing:
        raise VlprepError(
            f"{glamm_root}: {', '.join(missing)} missing; build them first (snakemake glamm)"
        )
    lines = []
    for name in WORKING_DIR_LINKS:
        lines.append(
            make_alias(
                checkout / name,
                glamm_root / name,
                unset_hint="leave glamm.checkout unset and make the links yourself",
            )
        )
    return lines


def ln_commands(glamm_root: str | Path, checkout: str | Path = "<your groundingLMM clone>"):
    root = Path(os.path.abspath(glamm_root))
    return [f"ln -s {root / name} {Path(checkout) / name}" for name in WORKING_DIR_LINKS]


def instructions(glamm_root: str | Path) -> list[str]:
    """What to tell a GLaMM user at the end of a run that built glamm/ (no glamm.checkout)."""
    root = Path(os.path.abspath(glamm_root))
    return [
        "vlprep: pointing GLaMM (mbzuai-oryx/groundingLMM) at this tree:",
        f"  train.py --dataset_dir {root}  (run from your clone: it reads dataset/utils/ "
        "from the working directory)",
        "  GCG images are opened relative to the working directory (GranDf_gcg_ds.py:182,196,"
        "284); in your clone run:",
        *(f"    {line}" for line in ln_commands(root, ".")),
        "  or set glamm.checkout in the config and vlprep makes these links (never replacing "
        "anything)",
    ]
