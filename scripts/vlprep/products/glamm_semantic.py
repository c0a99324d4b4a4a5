"""GLaMM's Semantic_Segm/ sets that need more than a link: pascal_part (converted from the
part .mat files), paco_lvis, mapillary (manual); and the opt-in GranD pre-training data.

What GLaMM opens (mbzuai-oryx/groundingLMM e74865f2, dataset/segm_datasets/Semantic_Segm_ds.py,
with dataset_dir = <glamm>/Semantic_Segm, l.113):
- init_pascal_part (l.64-73): `pascal_part/train.json` (COCO; categories `obj:part`); images
  `pascal_part/VOCdevkit/VOC2010/JPEGImages/<file_name>` (l.173-174);
- init_paco_lvis (l.43-61): `paco_lvis/annotations/paco_lvis_v1_train.json`; images intended at
  `<glamm>/coco_2017/<file_name>` (l.175-176; file_name carries `train2017/` or `val2017/`):
  glamm_paco_lvis declares those two folders too;
- init_mapillary (l.76-82): `mapillary/config_v2.0.json` (`labels[*].readable`),
  `mapillary/training/v2.0/labels/*.png`, each image at the label's path with `.png` -> `.jpg`
  and `v2.0/labels` -> `images`.
As shipped, GLaMM crashes on pascal_part and paco_lvis whatever the data: l.173-176 build the
image path as a 3-tuple (README); the trees are built for when that line is fixed.
"""

from vlprep.products.base import Family, Product, Samples

# The conversion's store folder (extracted/<name>/train.json), next to the unpacked entries.
PASCAL_PART_COCO = "pascal_part_coco"

# Semantic_Segm/<path> -> (entry or store folder under extracted/, path inside it); a path
# ending in a file name is a file, the others folders.
SEMANTIC_FILES = {
    "pascal_part/train.json": (PASCAL_PART_COCO, "train.json"),
    "paco_lvis/annotations/paco_lvis_v1_train.json": ("paco_lvis", "paco_lvis_v1_train.json"),
    "mapillary/config_v2.0.json": ("mapillary_vistas", "config_v2.0.json"),
}
SEMANTIC_DIRS = {
    "pascal_part/VOCdevkit/VOC2010/JPEGImages": ("voc2010", "VOCdevkit/VOC2010/JPEGImages"),
    "mapillary/training/v2.0/labels": ("mapillary_vistas", "training/v2.0/labels"),
    "mapillary/training/images": ("mapillary_vistas", "training/images"),
}


def _files(prefix: str) -> tuple[str, ...]:
    return tuple(
        f"{{glamm}}/Semantic_Segm/{path}"
        for path in (*SEMANTIC_FILES, *SEMANTIC_DIRS)
        if path.startswith(prefix + "/")
    )


def _product(
    name: str,
    prefix: str,
    entries: tuple[str, ...],
    about: str,
    samples: Samples,
    images: tuple[str, ...] = (),
) -> Product:
    return Product(
        name,
        bundles=("glamm",),
        files=_files(prefix) + tuple(f"{{glamm}}/{path}" for path in images),
        entries=entries,
        checks=("glamm",),
        in_all=False,
        demo=True,
        about=about,
        samples=samples,
    )


# GranD pre-training (opt-in): glamm/<folder> -> (store entry, folder inside), linked by rule
# glamm_link: the hub repo's part archives as downloaded; GLaMM's own
# GranD/prepare_annotations scripts turn them into GranD_Data/Grand_*_lmdb (datasets.md D27).
GRAND_FOLDERS = {"GranD_Data/annotations": ("grand_annotations", "")}

FAMILY = Family(
    products=[
        Product(
            "glamm_grand",
            bundles=("glamm",),
            files=("{glamm}/GranD_Data/annotations",),
            entries=("grand_annotations",),
            checks=("glamm",),
            about="glamm/GranD_Data/annotations: GranD pre-training annotations (~210 GB, opt-in)",
            opt_in=True,
            samples=Samples(
                "none",
                why="GranD's images are SA-1B's, which vlprep does not fetch; its annotations "
                "are archives GLaMM's own scripts turn into lmdb",
            ),
            notes=(
                "its images are SA-1B (~11 M images, ~10 TB), which vlprep does not fetch: accept "
                "Meta's SA-1B licence at https://ai.meta.com/datasets/segment-anything-downloads/ "
                "(click-through, signed per-user links) and put the images in "
                "GranD_Data/images; then GLaMM's GranD/prepare_annotations scripts and "
                "create_lmdb.py build GranD_Data/Grand_*_lmdb from these archives",
            ),
        ),
        _product(
            "glamm_pascal_part",
            "pascal_part",
            ("pascal_part_annotations", "voc2010"),
            "glamm/Semantic_Segm/pascal_part: train.json from the part .mat files (VLPart's "
            "rules) + the shared VOC2010 images",
            # init_pascal_part: COCO(train.json), obj:part categories, RLE part masks
            Samples(
                "coco",
                "{glamm}/Semantic_Segm/pascal_part/train.json",
                images="{glamm}/Semantic_Segm/pascal_part/VOCdevkit/VOC2010/JPEGImages",
            ),
        ),
        _product(
            "glamm_paco_lvis",
            "paco_lvis",
            ("paco_lvis", "coco2017_train", "coco2017_val"),
            "glamm/Semantic_Segm/paco_lvis/annotations, with its images: glamm/coco_2017 (shared)",
            # init_paco_lvis: file_name train2017/... or val2017/... under coco_2017
            Samples(
                "coco",
                "{glamm}/Semantic_Segm/paco_lvis/annotations/paco_lvis_v1_train.json",
                images="{glamm}/coco_2017",
            ),
            # l.175-176: <glamm>/coco_2017/<file_name>, file_name train2017/... or val2017/...
            images=("coco_2017/train2017", "coco_2017/val2017"),
        ),
        _product(
            "glamm_mapillary",
            "mapillary",
            ("mapillary_vistas",),
            "glamm/Semantic_Segm/mapillary (manual: Mapillary Vistas v2.0 zip, registration)",
            # init_mapillary: the label maps listed, each image .jpg under training/images
            Samples(
                "segmap",
                "{glamm}/Semantic_Segm/mapillary/training/v2.0/labels",
                images="{glamm}/Semantic_Segm/mapillary/training/images",
                suffix=".jpg",
                maps="{glamm}/Semantic_Segm/mapillary/training/v2.0/labels",
                map_suffix=".png",
            ),
        ),
    ]
)
