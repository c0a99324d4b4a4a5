"""NoCaps val/test images from the URLs in NoCaps's annotation files, by file name, for LAVIS's
NoCaps evaluation (lavis/nocaps)."""

from vlprep.annotations import ImageRefs
from vlprep.products.base import BY_NAME_I2D, Family, Product, Samples, UrlList

SPLITS = ("val", "test")
LAVIS_ANNOTATIONS = {f"nocaps/annotations/nocaps_{s}.json": f"lavis_nocaps_{s}" for s in SPLITS}

FAMILY = Family(
    products=[
        Product(
            "nocaps",
            bundles=("lavis",),
            files=(
                *(f"{{lavis}}/nocaps/images/{split}" for split in SPLITS),
                *(f"{{lavis}}/{path}" for path in LAVIS_ANNOTATIONS),
                *(f"{{reports}}/nocaps_{split}.json" for split in SPLITS),
            ),
            entries=(*(f"nocaps_{s}_info" for s in SPLITS), *LAVIS_ANNOTATIONS.values()),
            url_lists=tuple(f"nocaps_{split}" for split in SPLITS),
            checks=("lavis",),
            about="lavis/nocaps (NoCaps eval)",
            samples=Samples(
                "annotations",
                "{lavis}/nocaps/annotations/nocaps_val.json",
                images="{lavis}/nocaps/images",
            ),
        )
    ],
    url_lists=[
        UrlList(
            f"nocaps_{split}",
            source=f"nocaps_{split}_info",
            path=f"{{data_root}}/i2d/nocaps_{split}/urls.parquet",
            format="parquet",
            named="nocaps",
            i2d={**BY_NAME_I2D, "number_sample_per_shard": 1000},
        )
        for split in SPLITS
    ],
    annotation_sources={path: ("download", entry) for path, entry in LAVIS_ANNOTATIONS.items()},
    # NoCapsEvalDataset: os.path.join(vis_root, ann["image"]), image = "<split>/<file>"
    annotation_images={
        f"nocaps/annotations/nocaps_{split}.json": ImageRefs(
            "nocaps/images", "image", "path", {split: f"nocaps_{split}"}, eval_set=True
        )
        for split in SPLITS
    },
    image_checks={f"nocaps_{split}": ("layout", f"nocaps/images/{split}") for split in SPLITS},
)
