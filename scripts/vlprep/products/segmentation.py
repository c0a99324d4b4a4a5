"""COSMOS's eight segmentation benchmarks under cosmos/mmseg/, the tree of mmseg's data/.

COSMOS's configs (ExplainableML/cosmos c80348f, src/training/seg_configs/cfg_*.py) read
`/mmsegmentation_datasets/data/<tree>`; cosmos/mmseg/ is that data/ folder. One product per
dataset, so a missing manual file (Cityscapes) leaves out only its product: voc21 + voc20
(VOC2012), context59 + context60 (VOC2010 + PASCAL-Context), coco_stuff164k + coco_object
(COCO val2017 + COCO-Stuff maps), cityscapes, ade20k.

Each tree is a store folder shown as it is (`base`), with the folders vlprep generates
(`overlays`) put in: then the folders on the way to an overlay are real and everything else is
linked entry by entry (vlprep.mmseg.build_tree). Store folders are named by their folder under
extracted/: a catalog entry unpacked, or one of the label-map conversions below. Finding 11 of
../shared/research/cosmos-glamm.md: the COCO-Stuff maps COSMOS opens are converted from the
val maps into a folder vlprep owns, never beside the raw maps (GLaMM globs those).
"""

from dataclasses import dataclass, field

from vlprep.products.base import Family, Product, Samples

# The conversions' store folders (extracted/<name>/, next to the unpacked entries).
COCO_STUFF_MAPS = "cocostuff_val2017_maps"  # <id>_labelTrainIds.png, <id>_instanceTrainIds.png
PASCAL_CONTEXT_MAPS = "pascal_context_maps"  # SegmentationClassContext/, ImageSets/...
CITYSCAPES_MAPS = "cityscapes_val_maps"  # <city>/<stem>_gtFine_labelTrainIds.png


@dataclass(frozen=True)
class Pairs:
    """What mmseg's BaseSegDataset.load_data_list pairs (mmseg 1.1.1 basesegdataset.py:229-271):
    with `split`, each id of that file is `images/<id><img_suffix>` and `maps/<id><suffix>`;
    without, every file under `images` (recursively) ending in `img_suffix` is a sample, and
    its map is the same relative name with `suffix` for `img_suffix`."""

    images: str
    img_suffix: str
    maps: str
    suffixes: tuple[str, ...]
    split: str | None = None


@dataclass(frozen=True)
class MmsegTree:
    """One tree under cosmos/mmseg/: `path` in it, `base` (store folder, path inside) shown
    whole, `overlays` {path in the tree: (store folder, path inside)} put into it, `pairs`
    checked before the tree appears, and `fix`: what to do when a pair is missing."""

    path: str
    base: tuple[str, str] | None
    overlays: dict[str, tuple[str, str]] = field(default_factory=dict)
    pairs: tuple[Pairs, ...] = ()
    fix: str = ""


MMSEG_TREES = {
    # cfg_voc21.py, cfg_voc20.py
    "cosmos_voc2012": MmsegTree(
        "VOCdevkit/VOC2012",
        base=("voc2012", "VOCdevkit/VOC2012"),
        pairs=(
            Pairs(
                "JPEGImages",
                ".jpg",
                "SegmentationClass",
                (".png",),
                split="ImageSets/Segmentation/val.txt",
            ),
        ),
        fix="the VOC 2012 tar is incomplete: delete downloads/voc2012 and extracted/voc2012",
    ),
    # cfg_context59.py, cfg_context60.py
    "cosmos_pascal_context": MmsegTree(
        "VOCdevkit/VOC2010",
        base=("voc2010", "VOCdevkit/VOC2010"),
        overlays={
            "SegmentationClassContext": (PASCAL_CONTEXT_MAPS, "SegmentationClassContext"),
            "ImageSets/SegmentationContext": (
                PASCAL_CONTEXT_MAPS,
                "ImageSets/SegmentationContext",
            ),
        },
        pairs=tuple(
            Pairs(
                "JPEGImages",
                ".jpg",
                "SegmentationClassContext",
                (".png",),
                split=f"ImageSets/SegmentationContext/{split}.txt",
            )
            for split in ("train", "val")
        ),
        fix=(
            "trainval_merged.json names images the VOC 2010 tar does not hold: check both "
            "downloads (downloads/voc2010, downloads/pascal_context_json)"
        ),
    ),
    # cfg_coco_stuff164k.py, cfg_coco_object.py
    "cosmos_coco_stuff": MmsegTree(
        "coco_stuff164k",
        base=None,
        overlays={
            "images/val2017": ("coco2017_val", "val2017"),
            "annotations/val2017": (COCO_STUFF_MAPS, ""),
        },
        pairs=(
            Pairs(
                "images/val2017",
                ".jpg",
                "annotations/val2017",
                ("_labelTrainIds.png", "_instanceTrainIds.png"),
            ),
        ),
        fix=(
            "mmseg lists every image of images/val2017, so each needs its maps: the "
            "stuffthingmaps zip's val2017/ must cover COCO val2017 (check downloads/"
            "cocostuff_maps and downloads/coco2017_val)"
        ),
    ),
    # cfg_city_scapes.py
    "cosmos_cityscapes": MmsegTree(
        "cityscapes",
        base=None,
        overlays={
            "leftImg8bit/val": ("cityscapes_leftimg8bit", "leftImg8bit/val"),
            "gtFine/val": (CITYSCAPES_MAPS, ""),
        },
        pairs=(
            Pairs(
                "leftImg8bit/val",
                "_leftImg8bit.png",
                "gtFine/val",
                ("_gtFine_labelTrainIds.png",),
            ),
        ),
        fix=(
            "mmseg lists every image of leftImg8bit/val, so each needs its map: "
            "gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip must be the same release"
        ),
    ),
    # cfg_ade20k.py
    "cosmos_ade20k": MmsegTree(
        "ade/ADEChallengeData2016",
        base=("ade20k", "ADEChallengeData2016"),
        pairs=(Pairs("images/validation", ".jpg", "annotations/validation", (".png",)),),
        fix="the ADE20K zip is incomplete: delete downloads/ade20k and extracted/ade20k",
    ),
}


def _samples(tree: MmsegTree) -> Samples:
    """The sample grid's pairs: those mmseg's val config lists (the last of `pairs`)."""
    root = f"{{cosmos}}/mmseg/{tree.path}"
    pairs = tree.pairs[-1]
    return Samples(
        "segmap",
        f"{root}/{pairs.images}",
        images=f"{root}/{pairs.images}",
        suffix=pairs.img_suffix,
        maps=f"{root}/{pairs.maps}",
        map_suffix=pairs.suffixes[0],
        split=f"{root}/{pairs.split}" if pairs.split else "",
    )


def _product(name: str, entries: tuple[str, ...], about: str) -> Product:
    return Product(
        name,
        bundles=("cosmos",),
        files=(f"{{cosmos}}/mmseg/{MMSEG_TREES[name].path}",),
        entries=entries,
        checks=("cosmos",),
        in_all=False,
        demo=True,
        about=about,
        samples=_samples(MMSEG_TREES[name]),
    )


FAMILY = Family(
    products=[
        _product(
            "cosmos_voc2012",
            ("voc2012",),
            "cosmos/mmseg/VOCdevkit/VOC2012 (COSMOS voc21, voc20)",
        ),
        _product(
            "cosmos_pascal_context",
            ("voc2010", "pascal_context_json"),
            "cosmos/mmseg/VOCdevkit/VOC2010 with PASCAL-Context maps (COSMOS context59, context60)",
        ),
        _product(
            "cosmos_coco_stuff",
            ("coco2017_val", "cocostuff_maps"),
            "cosmos/mmseg/coco_stuff164k, val (COSMOS coco_stuff164k, coco_object)",
        ),
        _product(
            "cosmos_cityscapes",
            ("cityscapes_gtfine", "cityscapes_leftimg8bit"),
            "cosmos/mmseg/cityscapes, val (COSMOS city_scapes; manual: an account)",
        ),
        _product(
            "cosmos_ade20k",
            ("ade20k",),
            "cosmos/mmseg/ade/ADEChallengeData2016 (COSMOS ade20k)",
        ),
    ]
)
