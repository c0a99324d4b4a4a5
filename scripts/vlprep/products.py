"""Layout bundles, and which products the targets of a run build.

Shared by the workflow (rules/common.smk: the bundle target rules, preflight) and the demo,
which checks only what it was asked to build. The files behind each product are the
workflow's (PRODUCTS in rules/common.smk).
"""

import difflib
from collections.abc import Iterable

# Each layout bundle (a target rule) and the products it builds.
BUNDLES = {
    "g3m": ["coco_valid", "coco_train", "cc3m", "sbu", "openimages_v7_valid"],
    "cosmos": ["cosmos_coco"],
    "minigpt4": ["laion115m"],
    "lavis": ["lavis_coco", "gqa", "vg", "cc_sbu_align", "laion_coco", "sbu", "nocaps"],
}


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
