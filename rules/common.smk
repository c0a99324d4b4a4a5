# Configuration, the catalog, paths and helpers. No rules here; rule modules hold no `def`.
import os
import re
import sys
import time
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))
from vlprep.catalog import load_catalog
from vlprep.config import validate_config
from vlprep.lavis import (
    ANNOTATION_IMAGES,
    ANNOTATION_SOURCES,
    COMPANIONS,
    IMAGE_CHECKS,
    LAVIS_ANNOTATIONS,
    LAVIS_COCO_IMAGES,
    PLAIN_ANNOTATIONS,
)
from vlprep.locks import install as release_stale_locks
from vlprep.products import BUNDLES, unknown_target_message

# A run killed hard leaves Snakemake's lock behind: the next run releases it once it has
# checked that no process holds it (vlprep.locks), instead of stopping for `--unlock`.
release_stale_locks(workflow)

validate_config(config, Path(workflow.basedir) / "config" / "config.schema.yaml")

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
MINIGPT4 = layout_root("minigpt4")
LAVIS = layout_root("lavis")


def entries_of_kind(kind):
    """Catalog ids fetched a given way, as a regex alternation for wildcard constraints."""
    return "|".join(sorted(e for e, entry in CATALOG.items() if entry["kind"] == kind)) or "^$"


# Single files (one rule fetches them all, by kind) and hub repositories.
FILE_ENTRIES = "|".join(entries_of_kind(kind) for kind in ("http", "s3", "gdrive", "manual"))
HF_ENTRIES = entries_of_kind("hf")
_manual_dir = config["manual_dir"] or "manual"
MANUAL_DIR = _manual_dir if os.path.isabs(_manual_dir) else f"{DATA_ROOT}/{_manual_dir}"
# Resolved in the config itself: as a param, moving manual_dir would re-fetch every file.
config["manual_dir"] = MANUAL_DIR


wildcard_constraints:
    entry="|".join(sorted(CATALOG)),
    filename=r"[^/]+",
    part=r"\d{5}",


# ---- store -------------------------------------------------------------------------------


def download_path(entry):
    """Where the verified download of a catalog entry lives.

    An entry missing from the catalog (a trimmed or custom one) gives a path no rule makes,
    so only the products that need it fail, naming it.
    """
    if entry not in CATALOG:
        return f"{DOWNLOADS}/{entry}/NOT-IN-CATALOG"
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
    # Only what identifies the bytes: a change here re-fetches (rerun-trigger `params`).
    keys = ("kind", "url", "drive_id", "size", "sha256", "md5")
    return {key: entry.get(key) for key in keys}


def missing_manual_files():
    """Manual-kind catalog files not (yet) in manual_dir, with how to get each."""
    return {
        entry_id: entry
        for entry_id, entry in CATALOG.items()
        if entry["kind"] == "manual" and not Path(MANUAL_DIR, entry["filename"]).is_file()
    }


def manual_file(wildcards):
    """fetch_file's input for a manual entry: the user's file. When one is missing, stop while
    the DAG is built, before any download, listing every missing file at once."""
    entry = CATALOG[wildcards.entry]
    if entry["kind"] != "manual":
        return []
    missing = missing_manual_files()
    if missing:
        from vlprep.sources import where_to_get

        details = "\n".join(where_to_get(e, CATALOG[e], MANUAL_DIR) for e in missing)
        raise WorkflowError(
            f"{len(missing)} file(s) must be downloaded by hand before this run "
            f"(into {MANUAL_DIR}):\n{details}"
        )
    return str(Path(MANUAL_DIR, entry["filename"]))


def hub_source(wildcards):
    """What fetch_hub must deliver: repository, pinned revision and file patterns."""
    entry = CATALOG[wildcards.entry]
    keys = ("repo", "repo_type", "revision", "include", "files")
    return {key: entry.get(key) for key in keys}


def archive_of(wildcards):
    """The downloaded archive behind extracted/<entry>."""
    if CATALOG[wildcards.entry]["archive"] == "none":
        raise ValueError(f"{wildcards.entry} is not an archive; nothing to extract")
    return download_path(wildcards.entry)


def archive_kind(wildcards):
    return CATALOG[wildcards.entry]["archive"]


def archive_size_of(entry):
    return CATALOG[entry].get("size") if entry in CATALOG else None


def archive_size(wildcards):
    return archive_size_of(wildcards.entry)


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


# ---- LAVIS / VPGTrans cache_root ---------------------------------------------------------
# The tables live in vlprep.lavis: annotation sources, how each file names its images, checks.


def lavis_annotations(prefix):
    """The LAVIS annotation files under one dataset folder, as layout paths."""
    return [f"{LAVIS}/{path}" for path in LAVIS_ANNOTATIONS if path.startswith(prefix)]


# lavis/ folders that show one store folder as it is: (the store rule output it needs, the
# folder inside it it shows).
LAVIS_LINKED_DIRS = {
    **{
        f"coco/images/{split}": (extracted_path(e), extracted_path(e, split))
        for split, e in LAVIS_COCO_IMAGES.items()
    },
    "gqa/images": (extracted_path("gqa_images"), extracted_path("gqa_images", "images")),
    "vg/images": (f"{EXTRACTED}/vg_images", f"{EXTRACTED}/vg_images"),
    "cc_sbu_align/image": (
        extracted_path("cc_sbu_align"),
        extracted_path("cc_sbu_align", "cc_sbu_align", "image"),
    ),
}


def alternation(paths):
    """A wildcard constraint matching exactly these paths."""
    return "|".join(re.escape(path) for path in sorted(paths)) or "^$"


def annotation_store(path):
    """The store rule output behind a lavis/ annotation file (a download or an unpacked tree)."""
    kind, entry, *_ = ANNOTATION_SOURCES[path]
    return download_path(entry) if kind == "download" else extracted_path(entry)


def annotation_source(path):
    """The stored file a lavis/ annotation file is made from."""
    kind, entry, *inner = ANNOTATION_SOURCES[path]
    return download_path(entry) if kind == "download" else extracted_path(entry, *inner)


def lavis_annotation_store(wildcards):
    return annotation_store(wildcards.path)


def lavis_annotation_source(wildcards):
    return {"link": annotation_source(wildcards.path)}


def lavis_images_store(wildcards):
    return LAVIS_LINKED_DIRS[wildcards.path][0]


def lavis_images_source(wildcards):
    return {"link": LAVIS_LINKED_DIRS[wildcards.path][1]}


def image_check_folder(name):
    """(the rule output that makes an image folder, the folder) of an image check."""
    kind, *where = IMAGE_CHECKS[name]
    if kind == "layout":
        folder = f"{LAVIS}/{where[0]}"
        return folder, folder
    entry, inner = where
    return extracted_path(entry), extracted_path(entry, *([inner] if inner else []))


def image_check_report(name):
    return f"{DATA_ROOT}/reports/images/{name}.json"


def image_check_input(wildcards):
    return image_check_folder(wildcards.check)[0]


def image_check_path(wildcards):
    return image_check_folder(wildcards.check)[1]


def lavis_filter_inputs(wildcards):
    """An annotation file's store, the layout image folders it names and their checks."""
    refs = ANNOTATION_IMAGES[wildcards.path]
    return {
        "store": annotation_store(wildcards.path),
        "images": [
            f"{LAVIS}/{refs.vis_root}/{prefix}" if prefix else f"{LAVIS}/{refs.vis_root}"
            for prefix in refs.folders
        ],
        "checks": [image_check_report(name) for name in refs.folders.values()],
    }


def lavis_filter_source(wildcards):
    return annotation_source(wildcards.path)


def lavis_filter_checks(wildcards):
    """{check name: report path} for the folders an annotation file names."""
    refs = ANNOTATION_IMAGES[wildcards.path]
    return {name: image_check_report(name) for name in refs.folders.values()}


def lavis_companion_of(wildcards):
    """The filtering report of the annotation file a companion file follows."""
    main, _, _ = COMPANIONS[wildcards.path]
    return f"{DATA_ROOT}/reports/lavis/{main}"


def lavis_companion_store(wildcards):
    return annotation_store(wildcards.path)


def lavis_companion_params(wildcards):
    _, list_key, id_field = COMPANIONS[wildcards.path]
    return {"source": annotation_source(wildcards.path), "list_key": list_key, "id_field": id_field}


# ---- the end of a run ----------------------------------------------------------------------

RUN_STARTED = time.time()


def say_what_was_dropped():
    from vlprep.summary import dropped_lines

    for line in dropped_lines(DATA_ROOT, RUN_STARTED):
        print(line, file=sys.stderr)


onsuccess:
    say_what_was_dropped()


onerror:
    say_what_was_dropped()


# ---- products ----------------------------------------------------------------------------

# Every product, the files that make it, and the layout bundle it belongs to.
PRODUCTS = {
    "laion115m": [
        f"{MINIGPT4}/laion/laion_synthetic_filtered_large.json",
        f"{MINIGPT4}/laion/laion_synthetic_filtered_large.tsv",
        f"{MINIGPT4}/laion/laion_dataset",
        f"{DATA_ROOT}/reports/laion115m.json",
    ],
    "laion_coco": [f"{LAVIS}/laion/laion400m-data", f"{DATA_ROOT}/reports/laion_coco.json"],
    "cc3m": [f"{G3M}/cc3m/cc3m", f"{G3M}/cc3m/cc3m_valid"],
    "sbu": [
        f"{LAVIS}/sbu_captions/images",
        f"{LAVIS}/sbu_captions/annotations/sbu.json",
        f"{G3M}/sbu/sbu",
        f"{DATA_ROOT}/reports/sbu.json",
    ],
    "nocaps": [
        f"{LAVIS}/nocaps/images/val",
        f"{LAVIS}/nocaps/images/test",
        *lavis_annotations("nocaps/"),
        f"{DATA_ROOT}/reports/nocaps_val.json",
        f"{DATA_ROOT}/reports/nocaps_test.json",
    ],
    "lavis_coco": [
        *[f"{LAVIS}/coco/images/{split}" for split in LAVIS_COCO_IMAGES],
        *lavis_annotations("coco/"),
        *lavis_annotations("okvqa/"),
    ],
    "gqa": [f"{LAVIS}/gqa/images", *lavis_annotations("gqa/")],
    "vg": [f"{LAVIS}/vg/images", *lavis_annotations("vg/"), f"{DATA_ROOT}/reports/vg_images.json"],
    "cc_sbu_align": [f"{LAVIS}/cc_sbu_align/filter_cap.json", f"{LAVIS}/cc_sbu_align/image"],
    "openimages_v7_valid": [f"{G3M}/openimages_v7/openimages_v7_valid"],
    "coco_valid": [f"{G3M}/coco/annotations", f"{G3M}/coco/val2017", f"{G3M}/coco/coco_valid"],
    "coco_train": [f"{G3M}/coco/annotations", f"{G3M}/coco/train2017", f"{G3M}/coco/coco_train"],
    "cosmos_coco": [
        f"{COSMOS}/coco/images/val2017",
        f"{COSMOS}/coco/annotations/captions_val2017.json",
    ],
}
# The layout bundles and their products: vlprep.products.BUNDLES, shared with the demo.


# The catalog entries behind each product, and the URL lists it downloads images from: what
# preflight adds up before a long run.
PRODUCT_SOURCES = {
    "coco_valid": (["coco2017_val", "coco2017_annotations"], []),
    "coco_train": (["coco2017_train", "coco2017_annotations"], []),
    "cosmos_coco": (["coco2017_val", "coco2017_annotations"], []),
    "laion115m": (["laion115m_json"], ["laion115m"]),
    "laion_coco": (["laion_coco_meta"], ["laion_coco"]),
    "cc3m": (["cc3m_wds"], []),
    "sbu": (["sbu_json"], ["sbu"]),
    "nocaps": (
        ["nocaps_val_info", "nocaps_test_info", "lavis_nocaps_val", "lavis_nocaps_test"],
        ["nocaps_val", "nocaps_test"],
    ),
    "lavis_coco": (
        [*LAVIS_COCO_IMAGES.values()]
        + [e for path, e in LAVIS_ANNOTATIONS.items() if path.startswith(("coco/", "okvqa/"))],
        [],
    ),
    "gqa": (["gqa_images", *(e for e in LAVIS_ANNOTATIONS.values() if "_gqa_" in e)], []),
    "vg": (["vg_images_part1", "vg_images_part2", "lavis_vg_caption", "lavis_vg_qa"], []),
    "cc_sbu_align": (["cc_sbu_align"], []),
    "openimages_v7_valid": (["openimages_val", "openimages_val_narratives"], []),
}


def preflight_plan(wildcards=None):
    """What preflight needs to know of the workflow: products, bundles and their sources."""
    return {
        "products": {
            name: {
                "entries": entries,
                "url_lists": {ds: planned_rows(ds) for ds in lists},
                "enabled": name in enabled_products(),
            }
            for name, (entries, lists) in PRODUCT_SOURCES.items()
        },
        "bundles": BUNDLES,
        "data_root": DATA_ROOT,
        "downloads": DOWNLOADS,
        "extracted": EXTRACTED,
        "manual_dir": MANUAL_DIR,
        "link_mode": LINK_MODE,
    }


def product_files(*names):
    """The files behind products, in order, without repeats."""
    files = [path for name in names for path in PRODUCTS[name]]
    return list(dict.fromkeys(files))


def enabled_products():
    """Products switched on in config `products:`, in catalog order."""
    return [name for name in PRODUCTS if config["products"].get(name, True)]


def refuse_unknown_target(wildcards):
    """Input of the catch-all target rule: a mistyped target stops the run before any job,
    naming the closest real ones, where Snakemake alone says only "No rule to produce"."""
    targets = [rule.name for rule in workflow.rules if not rule.has_wildcards()]
    raise WorkflowError(unknown_target_message(wildcards.target, targets))


# ---- URL lists -> img2dataset ------------------------------------------------------------

# Each URL-list dataset: the list its consumer's script reads, where the shards go, and the
# img2dataset arguments of that script (the seed READMEs), which the config can only tune.
URL_LISTS = {
    "laion115m": {
        "list": f"{MINIGPT4}/laion/laion_synthetic_filtered_large.tsv",
        "format": "tsv",
        "catalog": "laion115m_json",
        "shards": f"{MINIGPT4}/laion/laion_dataset",
        "i2d": {  # MiniGPT-4 dataset/download_laion.sh
            "input_format": "tsv",
            "url_col": "url",
            "caption_col": "caption",
            "output_format": "webdataset",
            "resize_mode": "border",
            "number_sample_per_shard": 10000,
            "encode_quality": 95,
        },
    },
    "laion_coco": {
        "list": f"{DOWNLOADS}/laion_coco_meta",
        "format": "parquet",
        "catalog": "laion_coco_meta",
        "shards": f"{LAVIS}/laion/laion400m-data",
        "i2d": {  # VPGTrans prepare_data/download_laion_coco/step2_download_laion_coco.sh
            "input_format": "parquet",
            "url_col": "URL",
            "caption_col": "TEXT",
            "output_format": "webdataset",
            "resize_mode": "keep_ratio",
            "resize_only_if_bigger": True,
            "number_sample_per_shard": 80000,
            "save_additional_columns": ["all_captions", "all_similarities"],
        },
    },
}


# URL lists whose consumers open images by name: made from their annotation files first.
NAMED_IMAGE_ARGS = {  # one download keeps the original bytes (decoded once, to drop junk)
    "input_format": "parquet",
    "url_col": "url",
    "output_format": "files",
    "save_additional_columns": ["name"],
    "resize_mode": "no",
    "skip_reencode": True,
    "encode_format": "jpg",
}
NAMED_LISTS = {
    "sbu": ("sbu_json", "sbu", {"caption_col": "caption", "number_sample_per_shard": 10000}),
    "nocaps_val": ("nocaps_val_info", "nocaps", {"number_sample_per_shard": 1000}),
    "nocaps_test": ("nocaps_test_info", "nocaps", {"number_sample_per_shard": 1000}),
}
for name, (entry, kind, args) in NAMED_LISTS.items():
    URL_LISTS[name] = {
        "list": f"{DATA_ROOT}/i2d/{name}/urls.parquet",
        "format": "parquet",
        "catalog": entry,
        "annotations": kind,
        "i2d": {**NAMED_IMAGE_ARGS, **args},
    }


def named_list_source(wildcards):
    return download_path(URL_LISTS[wildcards.dataset]["catalog"])


def nocaps_part_dirs(wildcards):
    dataset = f"nocaps_{wildcards.split}"
    return expand(f"{DATA_ROOT}/i2d/{dataset}/parts/{{part}}", part=part_ids(dataset))


def named_list_kind(wildcards):
    return URL_LISTS[wildcards.dataset]["annotations"]


def url_list_settings(dataset):
    return config["url_lists"][dataset]


def planned_rows(dataset):
    """Rows the parts cover: the catalog's bound on the list, cut to max_rows if set."""
    entry = URL_LISTS[dataset]["catalog"]
    if entry not in CATALOG:
        return 0  # not in this catalog: no parts, and its products cannot be built
    bound = CATALOG[entry].get("rows")
    limit = url_list_settings(dataset).get("max_rows")
    rows = min(r for r in (bound, limit) if r is not None) if (bound or limit) else None
    if rows is None:
        raise ValueError(f"{dataset}: set `rows` in the catalog or url_lists.{dataset}.max_rows")
    return rows


def samples_per_shard(dataset):
    own = URL_LISTS[dataset]["i2d"]["number_sample_per_shard"]
    return url_list_settings(dataset).get("samples_per_shard") or own


def part_ids(dataset):
    """The parts of a URL list, planned from row counts alone (no checkpoint)."""
    settings = url_list_settings(dataset)
    per_part, per_shard = settings["rows_per_part"], samples_per_shard(dataset)
    if per_part % per_shard:
        raise ValueError(
            f"url_lists.{dataset}.rows_per_part={per_part} must be a multiple of the "
            f"{per_shard} samples per shard, so shard names do not depend on the parts"
        )
    count = -(-planned_rows(dataset) // per_part)
    return [f"{index:05d}" for index in range(count)]


def part_dirs(wildcards):
    return expand(
        f"{DATA_ROOT}/i2d/{wildcards.dataset}/parts/{{part}}", part=part_ids(wildcards.dataset)
    )


def url_list_input(wildcards):
    return URL_LISTS[wildcards.dataset]["list"]


def url_list_format(wildcards):
    return URL_LISTS[wildcards.dataset]["format"]


def rows_per_part(wildcards):
    return url_list_settings(wildcards.dataset)["rows_per_part"]


def planned_rows_of(wildcards):
    return planned_rows(wildcards.dataset)


def rows_capped(wildcards):
    """True when max_rows cuts the list on purpose, so rows beyond the plan are expected."""
    return url_list_settings(wildcards.dataset).get("max_rows") is not None


def part_plan(wildcards):
    """Rows [start, stop) of one part and the id of its first shard."""
    dataset, index = wildcards.dataset, int(wildcards.part)
    per_part = url_list_settings(dataset)["rows_per_part"]
    start = index * per_part
    stop = min(start + per_part, planned_rows(dataset))
    return {
        "format": URL_LISTS[dataset]["format"],
        "start": start,
        "stop": stop,
        "shard_offset": start // samples_per_shard(dataset),
        "last": index == len(part_ids(dataset)) - 1,
    }


def i2d_args(wildcards):
    """img2dataset arguments: the consumer's, plus the tunable ones from the config."""
    settings = url_list_settings(wildcards.dataset)
    tuned = {key: settings[key] for key in ("image_size", "timeout", "retries") if key in settings}
    tuned["number_sample_per_shard"] = samples_per_shard(wildcards.dataset)
    return {**URL_LISTS[wildcards.dataset]["i2d"], **tuned}


def i2d_processes(wildcards):
    return url_list_settings(wildcards.dataset)["processes"]


def i2d_threads(wildcards):
    return url_list_settings(wildcards.dataset)["threads"]


def success_floor(wildcards):
    return url_list_settings(wildcards.dataset)["success_floor"]


def shards_dir(wildcards):
    return URL_LISTS[wildcards.dataset]["shards"]
