"""SBU Captions from LAVIS's sbu.json, downloaded once: flat images by name with the annotation
file for VPGTrans (lavis/sbu_captions), sorted tars for nxtp (g3m/sbu/sbu)."""

from vlprep.annotations import ImageRefs
from vlprep.products.base import BY_NAME_I2D, Family, Product, Samples, UrlList

FAMILY = Family(
    products=[
        Product(
            "sbu",
            bundles=("lavis", "g3m"),
            files=(
                "{lavis}/sbu_captions/images",
                "{lavis}/sbu_captions/annotations/sbu.json",
                "{g3m}/sbu/sbu",
                "{reports}/sbu.json",
            ),
            entries=("sbu_json",),
            url_lists=("sbu",),
            checks=("lavis", "g3m"),
            about="lavis/sbu_captions and g3m/sbu/sbu (SBU Captions)",
            samples=Samples("wds", "{g3m}/sbu/sbu"),
        )
    ],
    url_lists=[
        UrlList(
            "sbu",
            source="sbu_json",
            path="{data_root}/i2d/sbu/urls.parquet",
            format="parquet",
            named="sbu",
            i2d={**BY_NAME_I2D, "caption_col": "caption", "number_sample_per_shard": 10000},
        )
    ],
    annotation_sources={"sbu_captions/annotations/sbu.json": ("download", "sbu_json")},
    annotation_images={
        # ImageTextPairDataset opens os.path.join(vis_root, os.path.basename(ann["image"]))
        "sbu_captions/annotations/sbu.json": ImageRefs(
            "sbu_captions/images", "image", "basename", {"": "sbu"}
        )
    },
    image_checks={"sbu": ("layout", "sbu_captions/images")},
)
