"""LAION-115M for MiniGPT-4 (minigpt4/laion) and Laion-COCO for VPGTrans (lavis/laion)."""

from vlprep.products.base import Family, Product, UrlList

FAMILY = Family(
    products=[
        Product(
            "laion115m",
            bundles=("minigpt4",),
            files=(
                "{minigpt4}/laion/laion_synthetic_filtered_large.json",
                "{minigpt4}/laion/laion_synthetic_filtered_large.tsv",
                "{minigpt4}/laion/laion_dataset",
                "{reports}/laion115m.json",
            ),
            entries=("laion115m_json",),
            url_lists=("laion115m",),
            about="minigpt4/laion (LAION-115M, TBs of images)",
        ),
        Product(
            "laion_coco",
            bundles=("lavis",),
            files=("{lavis}/laion/laion400m-data", "{reports}/laion_coco.json"),
            entries=("laion_coco_meta",),
            url_lists=("laion_coco",),
            checks=("lavis",),
            about="lavis/laion/laion400m-data (Laion-COCO)",
        ),
    ],
    url_lists=[
        UrlList(
            "laion115m",
            source="laion115m_json",
            path="{minigpt4}/laion/laion_synthetic_filtered_large.tsv",
            format="tsv",
            shards="{minigpt4}/laion/laion_dataset",
            retry_target=True,
            i2d={  # MiniGPT-4 dataset/download_laion.sh
                "input_format": "tsv",
                "url_col": "url",
                "caption_col": "caption",
                "output_format": "webdataset",
                "resize_mode": "border",
                "number_sample_per_shard": 10000,
                "encode_quality": 95,
            },
        ),
        UrlList(
            "laion_coco",
            source="laion_coco_meta",
            path="{downloads}/laion_coco_meta",
            format="parquet",
            shards="{lavis}/laion/laion400m-data",
            retry_target=True,
            i2d={  # VPGTrans prepare_data/download_laion_coco/step2_download_laion_coco.sh
                "input_format": "parquet",
                "url_col": "URL",
                "caption_col": "TEXT",
                "output_format": "webdataset",
                "resize_mode": "keep_ratio",
                "resize_only_if_bigger": True,
                "number_sample_per_shard": 80000,
                "save_additional_columns": ["all_captions", "all_similarities"],
            },
        ),
    ],
)
