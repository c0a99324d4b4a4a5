# Configuration, the catalog, paths and helpers. No rules here; rule modules hold no `def`.
import os
import re
import sys
import time
from pathlib import Path

from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.basedir) / "scripts"))
from vlprep import parts
from vlprep.catalog import load_catalog
from vlprep.errors import VlprepError
from vlprep.config import validate_config
from vlprep.locks import install as release_stale_locks
from vlprep.products import (
    ANNOTATION_IMAGES,
    ANNOTATION_SOURCES,
    BUNDLES,
    COMPANIONS,
    IMAGE_CHECKS,
    LINKED_DIRS,
    PLAIN_ANNOTATIONS,
    PRODUCTS,
    URL_LISTS,
    unknown_target_message,
)
from vlprep.products.coco import COCO_G3M_PARTS, COCO_WDS_SPLITS
from vlprep.products.imagenet import ROUTED
from vlprep.access import choose_route, gated_problem
from vlprep.products.vg import TOP_DIRS as VG_TOP_DIRS

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
GLAMM = layout_root("glamm")
# What the registry's path templates (vlprep.products) are written over.
ROOTS = {
    "g3m": G3M,
    "cosmos": COSMOS,
    "minigpt4": MINIGPT4,
    "lavis": LAVIS,
    "glamm": GLAMM,
    "data_root": DATA_ROOT,
    "downloads": DOWNLOADS,
    "extracted": EXTRACTED,
    "reports": f"{DATA_ROOT}/reports",
}


def at(template):
    """A registry path template, resolved."""
    return template.format(**ROOTS)


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

from vlprep.store import MERGED, check_groups, hub_archive_problem, merge_plan


def download_path(entry):
    """Where the verified download of a catalog entry lives.

    An entry missing from the catalog (a trimmed or custom one) gives a path no rule makes,
    so only the products that need it fail, naming it.
    """
    if entry not in CATALOG:
        return f"{DOWNLOADS}/{entry}/NOT-IN-CATALOG"
    if CATALOG[entry]["kind"] == "hf":  # a set of repository files: their folder (fetch_hub)
        return f"{DOWNLOADS}/{entry}"
    return f"{DOWNLOADS}/{entry}/{CATALOG[entry]['filename']}"


def extracted_path(entry, *inside):
    """The unpacked tree of an archive entry, or a path inside it."""
    return str(Path(EXTRACTED, entry, *inside))


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
    # sha1 only when set: a new None key would change every stored params and re-fetch all.
    keys += ("sha1",) if entry.get("sha1") else ()
    return {key: entry.get(key) for key in keys}


def missing_manual_files():
    """Manual-kind catalog files not (yet) in manual_dir, with how to get each."""
    return {
        entry_id: entry
        for entry_id, entry in CATALOG.items()
        if entry["kind"] == "manual" and not Path(MANUAL_DIR, entry["filename"]).is_file()
    }


def manual_file(wildcards):
    """fetch_file's input for a manual entry: the user's file. When it is missing, stop while
    the DAG is built, before any download, listing at once every missing file of the products
    that need it, and those no product names (fetched by path only). Another product's missing
    file, say Cityscapes', stops nothing here."""
    entry = CATALOG[wildcards.entry]
    if entry["kind"] != "manual":
        return []
    if not Path(MANUAL_DIR, entry["filename"]).is_file():
        used = {name: set(product_entries(name)) for name in PRODUCTS}
        in_products = set().union(*used.values(), *(p.entries for p in PRODUCTS.values()))
        in_products.update(e for _, routes in ROUTED.values() for r in routes.values() for e in r)
        needed = {e for entries in used.values() if wildcards.entry in entries for e in entries}
        missing = [e for e in missing_manual_files() if e in needed or e not in in_products]
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
    """The download behind extracted/<entry>: the archive, or for a hub entry the folder of
    its files, which holds the archive at its `archive_file` path."""
    entry = CATALOG[wildcards.entry]
    if entry["archive"] == "none":
        raise ValueError(f"{wildcards.entry} is not an archive; nothing to extract")
    problem = hub_archive_problem(wildcards.entry, entry)
    if problem:
        raise WorkflowError(problem)
    return download_path(wildcards.entry)


def archive_kind(wildcards):
    return CATALOG[wildcards.entry]["archive"]


def archive_size_of(entry):
    """The catalog's size of a downloaded archive, which bounds what it may unpack to. A hub
    entry's catalog size (if any) is not its archive's: its size on disk is used."""
    if entry not in CATALOG or CATALOG[entry]["kind"] == "hf":
        return None
    return CATALOG[entry].get("size")


def archive_size(wildcards):
    return archive_size_of(wildcards.entry)


def archive_max_ratio(wildcards):
    return CATALOG[wildcards.entry]["max_unpack_ratio"]


# Store folders merged from several entries (vlprep.store.MERGED): extracted/<group>/.
check_groups(MERGED, CATALOG)
MERGED_GROUPS = "|".join(re.escape(group) for group in sorted(MERGED)) or "^$"


def merge_downloads(wildcards):
    """The downloads of a merged folder's parts, in the order of merge_parts."""
    return [download_path(part.entry) for part in MERGED[wildcards.group].parts]


def merge_parts(wildcards):
    """What builds a merged folder, part by part (vlprep.store.merge_plan)."""
    return merge_plan(wildcards.group, MERGED, CATALOG)


# ---- COCO -> layouts ---------------------------------------------------------------------

# The tables (nxtp's coco/ parts, its webdataset splits) live in vlprep.products.coco.


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


# ---- COSMOS: classification, ImageNet, segmentation --------------------------------------
# The tables live in the registry (vlprep.products.classification, .imagenet, .segmentation).

from vlprep.products.classification import FOLDERS as CLASSIFICATION_FOLDERS
from vlprep.products.imagenet import DEVKIT as IMAGENET_DEVKIT
from vlprep.products.imagenet import IMAGES as IMAGENET_STORE
from vlprep.products.segmentation import (
    CITYSCAPES_MAPS,
    COCO_STUFF_MAPS,
    MMSEG_TREES,
    PASCAL_CONTEXT_MAPS,
)


def classification_store(wildcards):
    """The store folder (an unpacked entry or a merged group) a classification folder shows."""
    return extracted_path(CLASSIFICATION_FOLDERS[wildcards.folder].store)


def classification_source(wildcards):
    folder = CLASSIFICATION_FOLDERS[wildcards.folder]
    return {"link": extracted_path(folder.store, folder.inner)}


# cosmos/mmseg/<tree path> -> its MMSEG_TREES entry
MMSEG_TREE_PATHS = {tree.path: tree for tree in MMSEG_TREES.values()}


def mmseg_tree_stores(wildcards):
    """The store folders (unpacked entries, converted maps) a tree under cosmos/mmseg/ shows."""
    tree = MMSEG_TREE_PATHS[wildcards.tree]
    folders = [tree.base] if tree.base else []
    folders += tree.overlays.values()
    return sorted({extracted_path(folder) for folder, _ in folders})


def mmseg_tree_plan(wildcards):
    from vlprep.mmseg import tree_plan

    return tree_plan(MMSEG_TREE_PATHS[wildcards.tree], EXTRACTED)


# ---- LAVIS / VPGTrans cache_root ---------------------------------------------------------
# The tables live in the registry: annotation sources, how each file names its images, checks.


def store_folder(kind, entry, inner=""):
    """(the store output that makes a folder, the folder), for an unpacked archive (or a
    flattened one) under extracted/, or a folder the workflow placed in lavis/."""
    if kind == "layout":
        return f"{LAVIS}/{entry}", f"{LAVIS}/{entry}"
    return extracted_path(entry), extracted_path(entry, *([inner] if inner else []))


# lavis/ folders that show one store folder as it is: (the store rule output it needs, the
# folder inside it it shows).
LAVIS_LINKED_DIRS = {path: store_folder(*where) for path, where in LINKED_DIRS.items()}


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
    return store_folder(*IMAGE_CHECKS[name])


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


def lavis_companion_params(wildcards):
    _, list_key, id_field = COMPANIONS[wildcards.path]
    return {"source": annotation_source(wildcards.path), "list_key": list_key, "id_field": id_field}


# ---- GLaMM -> glamm/ ------------------------------------------------------------------------
# The tables live in the registry (vlprep.products.glamm); the checks of the root and the
# working-directory links in vlprep.glamm.

from vlprep.glamm import WORKING_DIR_IMAGES as GLAMM_WORKING_DIR_IMAGES
from vlprep.products.glamm import GLAMM_FILES, GLAMM_FOLDERS
from vlprep.products.glamm_semantic import GRAND_FOLDERS

# glamm/ folders that show one store folder (rule glamm_link)
GLAMM_LINKED = {**GLAMM_FOLDERS, **GRAND_FOLDERS}


def glamm_root_ok(wildcards=None):
    """An input function of the jobs that write into glamm/. GLaMM rewrites paths by substring
    (vlprep.glamm.root_problem), so a root it would break stops the run while the DAG is built,
    only when something under glamm/ is asked for."""
    from vlprep.glamm import root_problem

    problem = root_problem(GLAMM)
    if problem:
        raise WorkflowError(problem)
    return []


def store_tree(entry, *inside):
    """The store folder of an entry: its unpacked tree, or for a hub entry that is no archive
    the folder of its downloaded files."""
    if entry in CATALOG and CATALOG[entry]["kind"] == "hf" and CATALOG[entry]["archive"] == "none":
        return str(Path(download_path(entry), *inside))
    return extracted_path(entry, *inside)


def glamm_folder_store(wildcards):
    return store_tree(GLAMM_LINKED[wildcards.path][0])


def glamm_folder_source(wildcards):
    entry, inner = GLAMM_LINKED[wildcards.path]
    return {"link": store_tree(entry, *([inner] if inner else []))}


def glamm_file_store(wildcards):
    return download_path(GLAMM_FILES[wildcards.path][0])


def glamm_file_source(wildcards):
    entry, inner = GLAMM_FILES[wildcards.path]
    return {"link": str(Path(download_path(entry), inner)) if inner else download_path(entry)}


# ---- the end of a run ----------------------------------------------------------------------

RUN_STARTED = time.time()


def say_what_was_dropped():
    from vlprep.summary import dropped_lines

    for line in dropped_lines(DATA_ROOT, RUN_STARTED):
        print(line, file=sys.stderr)


def say_how_to_point_cosmos():
    """After a run that built part of cosmos/, how to point COSMOS at it (its fixed roots)."""
    from vlprep.cosmos_paths import instructions

    top = [Path(COSMOS), *Path(COSMOS).glob("*")] if Path(COSMOS).is_dir() else []
    if any(path.lstat().st_mtime >= RUN_STARTED for path in top):
        for line in instructions(COSMOS):
            print(line, file=sys.stderr)


def say_how_to_point_glamm():
    """After a run that built part of glamm/ with no glamm.checkout, the `ln -s` commands of
    GLaMM's working-directory folders (vlprep.glamm)."""
    from vlprep.glamm import instructions

    top = [Path(GLAMM), *Path(GLAMM).glob("*")] if Path(GLAMM).is_dir() else []
    built = any(path.lstat().st_mtime >= RUN_STARTED for path in top)
    if built and not config["glamm"]["checkout"]:
        for line in instructions(GLAMM):
            print(line, file=sys.stderr)


def say_what_this_run_did(log=None):
    """The run's summary (vlprep.summary.run_lines), from the DAG Snakemake ran: each product
    by its manifest job (built, up to date, or not built), the products bundles left out, the
    jobs `log` (Snakemake's main log) reports as failed, and the report command."""
    from vlprep.summary import failed_jobs, run_lines

    global RUN_SUMMARY_SAID
    RUN_SUMMARY_SAID = True
    dag = getattr(workflow, "_dag", None)
    if dag is None:
        return
    manifests = [job for job in dag.jobs if job.rule.name == "product_manifest"]
    pending = [job for job in manifests if dag.needrun(job)]
    targets = sorted(str(job.output[0]) if job.output else job.rule.name for job in dag.targetjobs)
    options = "".join(f" --configfile {path}" for path in workflow.overwrite_configfiles)
    lines = run_lines(
        built=[job.wildcards.product for job in pending if dag.finished(job)],
        up_to_date=[job.wildcards.product for job in manifests if not dag.needrun(job)],
        not_built=[job.wildcards.product for job in pending if not dag.finished(job)],
        skipped={name: product_unavailable(name) or "" for name in _SKIPPED_SAID},
        failed=failed_jobs(log),
        report_command=f"snakemake {' '.join(targets)}{options} --report {DATA_ROOT}/report.html",
        report_path=f"{DATA_ROOT}/report.html",
    )
    for line in lines:
        print(line, file=sys.stderr)


RUN_SUMMARY_SAID = False


def say_what_this_run_did_if_not_yet():
    """A run with nothing to do: Snakemake calls neither onsuccess nor onerror. Not a dry run."""
    if not workflow.dryrun and not RUN_SUMMARY_SAID:
        say_what_this_run_did()


if workflow.is_main_process:
    from vlprep.summary import call_after

    call_after(workflow, "execute", say_what_this_run_did_if_not_yet)


onsuccess:
    say_what_was_dropped()
    say_how_to_point_cosmos()
    say_how_to_point_glamm()
    say_what_this_run_did(log)


onerror:
    say_what_was_dropped()
    say_what_this_run_did(log)


# ---- products ----------------------------------------------------------------------------
# Declared once in the registry (vlprep.products); the target and bundle rules (layouts.smk),
# the config's product keys and preflight's sources are derived from it.


MANIFESTS = f"{DATA_ROOT}/manifests"
# Each product's piece of the data report (vlprep.report), under <product>/.
PRODUCT_REPORTS = f"{DATA_ROOT}/reports/products"


def product_files(*names):
    """What building products means: their files, then each one's manifest (vlprep.manifest,
    written once the files are) and report piece (vlprep.report), in order, without repeats."""
    from vlprep.report import report_files

    files = [at(path) for name in names for path in PRODUCTS[name].files]
    manifests = [f"{MANIFESTS}/{name}.json" for name in names]
    reports = [str(path) for name in names for path in report_files(PRODUCT_REPORTS, name)]
    return list(dict.fromkeys(files + manifests + reports))


def report_category(wildcards):
    """Where Snakemake's report files a product's piece: its layout (vlprep.report)."""
    from vlprep.report import layout_of

    return layout_of(wildcards.product)


def report_labels(view):
    """The labels of one view of a product's report piece, as the report's tables show them."""

    def labels(wildcards):
        return {"product": wildcards.product, "view": view}

    return labels


def product_about(wildcards):
    """The registry's line about a product, for its report captions."""
    return PRODUCTS[wildcards.product].about


def manifest_inputs(wildcards):
    """The product's own files: what its manifest describes."""
    return [at(path) for path in PRODUCTS[wildcards.product].files]


def manifest_plan(wildcards):
    """What a product's manifest records beyond its files: its paths over the roots, the
    catalog entries of this run's route, and the config keys that shaped it."""
    name = wildcards.product
    product = PRODUCTS[name]
    shaping = {
        "link_mode": LINK_MODE,
        "layouts": {layout: config["layouts"][layout] for layout in product.bundles},
        "malformed_records": config["malformed_records"],
    }
    if product.url_lists:
        shaping["url_lists"] = {ds: config["url_lists"].get(ds) for ds in product.url_lists}
    if name in ROUTED:
        setting = ROUTED[name][0]
        shaping[setting] = config[setting]
        shaping["route"] = product_route(name)
    return {
        "paths": list(product.files),
        "roots": ROOTS,
        "entries": list(product_entries(name)),
        "config": shaping,
    }


def product_route(name):
    """The route a product with several (vlprep.products.imagenet ROUTED) takes in this run, by
    its config setting (auto: what manual_dir holds); None for a product of one route."""
    if name not in ROUTED:
        return None
    setting, routes = ROUTED[name]
    try:
        return choose_route(name, setting, config[setting], routes, CATALOG, MANUAL_DIR)
    except VlprepError as err:
        raise WorkflowError(str(err)) from None


def product_entries(name):
    """The catalog entries a product downloads in this run (its chosen route's, if routed)."""
    route = product_route(name)
    return ROUTED[name][1][route] if route else PRODUCTS[name].entries


# ImageNet val's route in this run (config imagenet_source), its image entry and devkit.
IMAGENET_ROUTE = product_route("cosmos_imagenet")
IMAGENET_IMAGES = IMAGENET_STORE[IMAGENET_ROUTE]
IMAGENET_ENTRY = CATALOG.get(IMAGENET_IMAGES, {})

_UNAVAILABLE = {}


def product_unavailable(name):
    """Why a product cannot be built unattended in this run, or None: its manual files are not
    in manual_dir, or a gated hub repo it needs refuses this run's token (no HF_TOKEN, terms not
    accepted: vlprep.access, one HEAD request, asked once per run). A bundle leaves such a
    product out, loudly; asked for by name, it stops the run (product_ready, manual_file)."""
    if name in _UNAVAILABLE:
        return _UNAVAILABLE[name]
    entries = [entry for entry in product_entries(name) if entry in CATALOG]
    missing = [
        entry
        for entry in entries
        if CATALOG[entry]["kind"] == "manual"
        and not Path(MANUAL_DIR, CATALOG[entry]["filename"]).is_file()
    ]
    reasons = []
    if missing:
        from vlprep.sources import where_to_get

        details = "\n".join(where_to_get(e, CATALOG[e], MANUAL_DIR) for e in missing)
        reasons.append(f"{len(missing)} file(s) to download by hand first:\n{details}")
    for entry in entries:
        if CATALOG[entry].get("gated") and not Path(download_path(entry)).is_dir():
            # a dry run contacts nothing: it goes by whether a token is set
            problem = gated_problem(
                entry, CATALOG[entry], config.get("hf_endpoint"), ask_hub=not workflow.dryrun
            )
            if problem:
                reasons.append(problem)
    route = product_route(name)
    if reasons and route:
        setting = ROUTED[name][0]
        others = ", ".join(r for r in ROUTED[name][1] if r != route)
        reasons.append(f"(route {route!r} of {setting}: {config[setting]}; also: {others})")
    _UNAVAILABLE[name] = "\n".join(reasons) or None
    return _UNAVAILABLE[name]


def product_ready(name):
    """An input function that stops the run while the DAG is built, before any job, when
    `name` cannot be built unattended (product_unavailable says what to do). A dry run only
    says it, loudly, and shows what a run would do once it is done."""

    def ready(wildcards):
        reason = product_unavailable(name)
        if reason is None:
            return []
        if workflow.dryrun:
            print(f"vlprep: WARNING: a real run of {name} stops here: {reason}", file=sys.stderr)
            return []
        raise WorkflowError(f"{name} cannot be built yet: {reason}")

    return ready


_SKIPPED_SAID = set()


def bundle_files(bundle):
    """A bundle's files, without the products that cannot be built unattended, each named
    once on stderr with what to do (so `snakemake cosmos` builds everything else)."""

    def files(wildcards):
        members = []
        for name in BUNDLES[bundle]:
            reason = product_unavailable(name)
            if reason is None:
                members.append(name)
            elif name not in _SKIPPED_SAID:
                _SKIPPED_SAID.add(name)
                print(
                    f"vlprep: SKIPPING {name} (in bundle {bundle}): {reason}\n"
                    f"  Then run: snakemake {name}",
                    file=sys.stderr,
                )
        return product_files(*members) + BUNDLE_EXTRAS.get(bundle, [])

    return files


# What a bundle does beyond its products: COSMOS's hard-coded roots, when the config asks.
BUNDLE_EXTRAS = {
    "cosmos": (
        [f"{DATA_ROOT}/reports/cosmos/fixed_paths.txt"]
        if config["cosmos"]["mmseg_alias"] or config["cosmos"]["checkout"]
        else []
    ),
    # GLaMM's working-directory links (GranDf_gcg_ds.py:48), when the config gives a checkout.
    "glamm": (
        [f"{DATA_ROOT}/reports/glamm/working_dir.txt"] if config["glamm"]["checkout"] else []
    ),
}


def enabled_products():
    """Products switched on in config `products:` (the registry's defaults), in registry order."""
    return [name for name in PRODUCTS if config["products"][name]]


def preflight_plan(wildcards=None):
    """What preflight needs to know of the workflow: products, bundles and their sources."""
    return {
        "products": {
            name: {
                "entries": list(product_entries(name)),
                "url_lists": {ds: planned_rows(ds) for ds in product.url_lists},
                "enabled": name in enabled_products(),
                "notes": list(product.notes),
            }
            for name, product in PRODUCTS.items()
        },
        "bundles": BUNDLES,
        "data_root": DATA_ROOT,
        "downloads": DOWNLOADS,
        "extracted": EXTRACTED,
        "manual_dir": MANUAL_DIR,
        "link_mode": LINK_MODE,
        "glamm_root": GLAMM,
    }


def refuse_unknown_target(wildcards):
    """Input of the catch-all target rule: a mistyped target stops the run before any job,
    naming the closest real ones, where Snakemake alone says only "No rule to produce"."""
    targets = [rule.name for rule in workflow.rules if not rule.has_wildcards()]
    raise WorkflowError(unknown_target_message(wildcards.target, targets))


# ---- URL lists -> img2dataset ------------------------------------------------------------
# The lists, their consumers' img2dataset arguments and what the config may tune are in the
# registry; the part arithmetic is vlprep.parts' (planned_rows, part_count, part_plan). Nothing
# here runs while the workflow is parsed: a product that is not asked for costs nothing.

NAMED_LISTS = [name for name, url_list in URL_LISTS.items() if url_list.named]
# The lists MiniGPT-4 reads as a TSV converted from a BLIP JSON, which sits beside it, and
# those whose shards are gathered into a layout folder (rules/laion.smk).
BLIP_LISTS = [name for name, url_list in URL_LISTS.items() if url_list.format == "tsv"]
SHARD_LISTS = [name for name, url_list in URL_LISTS.items() if url_list.shards]


def blip_json_of(dataset):
    """The layout path of a BLIP JSON: its TSV's, with .json."""
    return at(URL_LISTS[dataset].path).removesuffix(".tsv") + ".json"


RETRY_TARGETS = [name for name, url_list in URL_LISTS.items() if url_list.retry_target]


def url_list_settings(dataset):
    return config["url_lists"][dataset]


def planned_rows(dataset):
    """Rows the parts cover: the catalog's bound on the list, cut to max_rows if set."""
    entry = URL_LISTS[dataset].source
    if entry not in CATALOG:
        return 0  # not in this catalog: no parts, and its products cannot be built
    max_rows = url_list_settings(dataset)["max_rows"]
    return parts.planned_rows(dataset, CATALOG[entry].get("rows"), max_rows)


def samples_per_shard(dataset):
    return parts.samples_per_shard(URL_LISTS[dataset].i2d, url_list_settings(dataset))


def part_ids(dataset):
    """The parts of a URL list, planned from row counts alone (no checkpoint)."""
    per_part = url_list_settings(dataset)["rows_per_part"]
    try:
        count = parts.part_count(planned_rows(dataset), per_part, samples_per_shard(dataset))
    except VlprepError as err:
        raise WorkflowError(f"url_lists.{dataset}: {err}") from None
    return [f"{index:05d}" for index in range(count)]


def parts_of(dataset):
    """An input function: the part folders of one URL list (planned only when asked for)."""
    return lambda wildcards: expand(
        f"{DATA_ROOT}/i2d/{dataset}/parts/{{part}}", part=part_ids(dataset)
    )


def part_dirs(wildcards):
    return parts_of(wildcards.dataset)(wildcards)


def nocaps_part_dirs(wildcards):
    return parts_of(f"nocaps_{wildcards.split}")(wildcards)


def named_list_source(wildcards):
    return download_path(URL_LISTS[wildcards.dataset].source)


def named_list_kind(wildcards):
    return URL_LISTS[wildcards.dataset].named


def url_list_input(wildcards):
    return at(URL_LISTS[wildcards.dataset].path)


def url_list_format(wildcards):
    return URL_LISTS[wildcards.dataset].format


def rows_per_part(wildcards):
    return url_list_settings(wildcards.dataset)["rows_per_part"]


def planned_rows_of(wildcards):
    return planned_rows(wildcards.dataset)


def rows_capped(wildcards):
    """True when max_rows cuts the list on purpose, so rows beyond the plan are expected."""
    return url_list_settings(wildcards.dataset)["max_rows"] is not None


def part_plan(wildcards):
    """Rows [start, stop) of one part and the id of its first shard."""
    dataset = wildcards.dataset
    plan = parts.part_plan(
        int(wildcards.part),
        planned_rows(dataset),
        url_list_settings(dataset)["rows_per_part"],
        samples_per_shard(dataset),
    )
    return {"format": URL_LISTS[dataset].format, **plan}


def i2d_args(wildcards):
    """img2dataset arguments: the consumer's, plus the tunable ones from the config."""
    dataset = wildcards.dataset
    return parts.job_args(URL_LISTS[dataset].i2d, url_list_settings(dataset))


def i2d_processes(wildcards):
    return url_list_settings(wildcards.dataset)["processes"]


def i2d_threads(wildcards):
    return url_list_settings(wildcards.dataset)["threads"]


def success_floor(wildcards):
    return url_list_settings(wildcards.dataset)["success_floor"]


def shards_dir(wildcards):
    return at(URL_LISTS[wildcards.dataset].shards)


def sbu_samples_per_tar(wildcards):
    return samples_per_shard("sbu")
