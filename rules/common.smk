# Configuration, the catalog, paths and helpers. No rules here; rule modules hold no `def`.
import os
import sys
from pathlib import Path

from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))
from vlprep.catalog import load_catalog

validate(config, schema="../config/config.schema.yaml")

CATALOG = load_catalog(config["catalog"])
DATA_ROOT = str(Path(config["data_root"]))
DOWNLOADS = f"{DATA_ROOT}/downloads"
EXTRACTED = f"{DATA_ROOT}/extracted"
LOGS = f"{DATA_ROOT}/logs"
LINK_MODE = config["link_mode"]
FETCH_ON_LOGIN_NODE = config["fetch_on_login_node"]


def layout_root(name):
    """A layout's root: absolute as configured, or relative to data_root."""
    path = config["layouts"].get(name, name)
    return path if os.path.isabs(path) else f"{DATA_ROOT}/{path}"


G3M = layout_root("g3m")
COSMOS = layout_root("cosmos")


wildcard_constraints:
    entry="|".join(sorted(CATALOG)),
    filename=r"[^/]+",


# ---- store -------------------------------------------------------------------------------


def download_path(entry):
    """Where the verified download of a catalog entry lives."""
    return f"{DOWNLOADS}/{entry}/{CATALOG[entry]['filename']}"


def extracted_path(entry, *parts):
    """The unpacked tree of an archive entry, or a path inside it."""
    return str(Path(EXTRACTED, entry, *parts))


def fetch_source(wildcards):
    """What fetch_file must deliver for an entry: URL, size and checksums from the catalog."""
    entry = CATALOG[wildcards.entry]
    if wildcards.filename != entry["filename"]:
        raise ValueError(
            f"{wildcards.entry}: the catalog stores this entry as {entry['filename']}, "
            f"not {wildcards.filename}"
        )
    return {key: entry.get(key) for key in ("url", "size", "sha256", "md5")}


def archive_of(wildcards):
    """The downloaded archive behind extracted/<entry>."""
    if CATALOG[wildcards.entry]["archive"] == "none":
        raise ValueError(f"{wildcards.entry} is not an archive; nothing to extract")
    return download_path(wildcards.entry)


def archive_kind(wildcards):
    return CATALOG[wildcards.entry]["archive"]


def archive_size(wildcards):
    return CATALOG[wildcards.entry].get("size")


def archive_max_ratio(wildcards):
    return CATALOG[wildcards.entry]["max_unpack_ratio"]


# ---- COCO -> layouts ---------------------------------------------------------------------

# nxtp's <data_root>/coco/<part> and where each part lives in the store.
COCO_G3M_PARTS = {
    "annotations": ("coco2017_annotations", "annotations"),
    "train2017": ("coco2017_train", "train2017"),
    "val2017": ("coco2017_val", "val2017"),
}
# nxtp's webdataset folders and the COCO split each is built from.
COCO_WDS_SPLITS = {"coco_valid": "val2017", "coco_train": "train2017"}


def coco_part_store(wildcards):
    """The extracted entry that holds one part of nxtp's coco/ folder."""
    entry, _ = COCO_G3M_PARTS[wildcards.part]
    return extracted_path(entry)


def coco_part_sources(wildcards):
    entry, inner = COCO_G3M_PARTS[wildcards.part]
    return {"link": extracted_path(entry, inner)}


def coco_wds_split(wildcards):
    return COCO_WDS_SPLITS[wildcards.wds]


def coco_wds_inputs(wildcards):
    split = COCO_WDS_SPLITS[wildcards.wds]
    entry, _ = COCO_G3M_PARTS[split]
    return {"annotations": extracted_path("coco2017_annotations"), "images": extracted_path(entry)}


def coco_wds_captions(wildcards):
    split = COCO_WDS_SPLITS[wildcards.wds]
    return extracted_path("coco2017_annotations", "annotations", f"captions_{split}.json")


def coco_wds_images(wildcards):
    split = COCO_WDS_SPLITS[wildcards.wds]
    entry, inner = COCO_G3M_PARTS[split]
    return extracted_path(entry, inner)


# ---- products ----------------------------------------------------------------------------

# Every product, the files that make it, and the layout bundle it belongs to.
PRODUCTS = {
    "coco_valid": [f"{G3M}/coco/annotations", f"{G3M}/coco/val2017", f"{G3M}/coco/coco_valid"],
    "coco_train": [f"{G3M}/coco/annotations", f"{G3M}/coco/train2017", f"{G3M}/coco/coco_train"],
    "cosmos_coco": [
        f"{COSMOS}/coco/images/val2017",
        f"{COSMOS}/coco/annotations/captions_val2017.json",
    ],
}
BUNDLES = {"g3m": ["coco_valid", "coco_train"], "cosmos": ["cosmos_coco"]}


def product_files(*names):
    """The files behind products, in order, without repeats."""
    files = [path for name in names for path in PRODUCTS[name]]
    return list(dict.fromkeys(files))


def enabled_products():
    """Products switched on in config `products:`, in catalog order."""
    return [name for name in PRODUCTS if config["products"].get(name, True)]
