"""The product registry: every product vlprep builds, declared once, in one module per family.

A product (`coco_valid`, `gqa`, `sbu`, ...) is what a user asks for by name. Its family module
says what it builds (layout paths), what it downloads (catalog entries, URL lists), which layout
bundles hold it, which consumer checks cover it, whether `all` and the demo build it, and the
tables its rules need (annotation files and how they name images, image folders to check, URL
lists and their img2dataset arguments). Everything else is derived from here: the target and
bundle rules (rules/layouts.smk), the config schema's product keys (vlprep.config), preflight's
sources, the demo's list, and a test holds the registry against the DAG Snakemake plans
(tests/unit/test_registry.py). Adding a dataset is a catalog entry and a family module here,
plus a rule file and a vlprep module only where new logic is needed.
"""

import difflib
from collections.abc import Iterable

from vlprep.products import (
    cc3m,
    cc_sbu_align,
    classification,
    coco,
    flickr30k,
    glamm,
    glamm_refer,
    glamm_semantic,
    gqa,
    imagenet,
    laion,
    nocaps,
    openimages,
    sbu,
    segmentation,
    vg,
)
from vlprep.products.base import LAYOUTS, Family, Product, UrlList

FAMILIES: tuple[Family, ...] = tuple(
    module.FAMILY
    for module in (
        coco,
        flickr30k,
        imagenet,
        classification,
        segmentation,
        glamm,
        glamm_refer,
        glamm_semantic,
        laion,
        cc3m,
        sbu,
        nocaps,
        gqa,
        vg,
        cc_sbu_align,
        openimages,
    )
)


def _merged(tables: Iterable[dict], what: str) -> dict:
    """One dict from the families' tables; a key declared twice is a registry bug."""
    merged: dict = {}
    for table in tables:
        for key, value in table.items():
            if key in merged:
                raise ValueError(f"{what} {key!r} is declared twice in vlprep.products")
            merged[key] = value
    return merged


PRODUCTS: dict[str, Product] = _merged(
    ({p.name: p for p in family.products} for family in FAMILIES), "product"
)
URL_LISTS: dict[str, UrlList] = _merged(
    ({u.name: u for u in family.url_lists} for family in FAMILIES), "URL list"
)
ANNOTATION_SOURCES = _merged((f.annotation_sources for f in FAMILIES), "annotation file")
ANNOTATION_IMAGES = _merged((f.annotation_images for f in FAMILIES), "image-naming file")
COMPANIONS = _merged((f.companions for f in FAMILIES), "companion file")
IMAGE_CHECKS = _merged((f.image_checks for f in FAMILIES), "image check")
LINKED_DIRS = _merged((f.linked_dirs for f in FAMILIES), "linked folder")
# lavis/ annotation files linked from the store as they are (no image named in them)
PLAIN_ANNOTATIONS = sorted(set(ANNOTATION_SOURCES) - set(ANNOTATION_IMAGES) - set(COMPANIONS))

# Each layout bundle (a target rule) and the products it builds, in registry order.
BUNDLES: dict[str, list[str]] = {
    layout: [name for name, p in PRODUCTS.items() if layout in p.bundles and not p.opt_in]
    for layout in LAYOUTS
}
DEMO_PRODUCTS: tuple[str, ...] = tuple(name for name, p in PRODUCTS.items() if p.demo)


def sources_of(name: str) -> set[str]:
    """Every catalog entry a product downloads, its URL lists' sources included."""
    product = PRODUCTS[name]
    return set(product.entries) | {URL_LISTS[u].source for u in product.url_lists}


def products_of(
    targets: Iterable[str], products: Iterable[str], enabled: Iterable[str]
) -> list[str]:
    """The products that `targets` build, in the order asked, without repeats.

    A product builds itself, a bundle its members, `all` the `enabled` products; any other
    target (preflight, *_retry_failed, a step of a product) builds no whole product.
    """
    known = set(products)
    built: list[str] = []
    for target in targets:
        if target == "all":
            built += enabled
        elif target in BUNDLES:
            built += BUNDLES[target]
        elif target in known:
            built.append(target)
    return list(dict.fromkeys(built))


def unknown_target_message(name: str, targets: Iterable[str]) -> str:
    """Why `name` is refused as a target, with the closest of the workflow's `targets`."""
    close = difflib.get_close_matches(name, sorted(targets), n=3)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    return (
        f"{name}: no such target (no rule has this name or makes a file of this name).{hint}"
        " Every target: snakemake --list-target-rules; products and bundles: README.md."
    )
