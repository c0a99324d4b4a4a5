"""MiniGPT-4 stage 1's webdatasets from BLIP's synthetic-caption JSON lists, LAION-115M
(minigpt4/laion) and CC3M+CC12M+SBU (minigpt4/cc_sbu); Laion-COCO for VPGTrans (lavis/laion).
"""

from vlprep.products.base import Family, Product, Samples, UrlList

# MiniGPT-4's download_laion.sh and download_cc_sbu.sh: img2dataset's defaults written out
# (border resize, 10,000 samples per shard, JPEG quality 95); image_size, processes and threads
# are the config's (url_lists.<name>).
MINIGPT4_I2D = {
    "input_format": "tsv",
    "url_col": "url",
    "caption_col": "caption",
    "output_format": "webdataset",
    "resize_mode": "border",
    "number_sample_per_shard": 10000,
    "encode_quality": 95,
}

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
            checks=("minigpt4",),
            about="minigpt4/laion (LAION-115M, TBs of images)",
            samples=Samples("wds", "{minigpt4}/laion/laion_dataset"),
        ),
        Product(
            "cc_sbu",
            bundles=("minigpt4",),
            files=(
                "{minigpt4}/cc_sbu/ccs_synthetic_filtered_large.json",
                "{minigpt4}/cc_sbu/ccs_synthetic_filtered_large.tsv",
                "{minigpt4}/cc_sbu/cc_sbu_dataset",
                "{reports}/cc_sbu.json",
            ),
            entries=("cc_sbu_json",),
            url_lists=("cc_sbu",),
            checks=("minigpt4",),
            about="minigpt4/cc_sbu (CC3M+CC12M+SBU for MiniGPT-4 stage 1)",
            samples=Samples("wds", "{minigpt4}/cc_sbu/cc_sbu_dataset"),
        ),
        Product(
            "laion_coco",
            bundles=("lavis",),
            files=("{lavis}/laion/laion400m-data", "{reports}/laion_coco.json"),
            entries=("laion_coco_meta",),
            url_lists=("laion_coco",),
            checks=("lavis",),
            about="lavis/laion/laion400m-data (Laion-COCO)",
            samples=Samples("wds", "{lavis}/laion/laion400m-data"),
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
            i2d=MINIGPT4_I2D,  # MiniGPT-4 dataset/download_laion.sh
        ),
        UrlList(
            "cc_sbu",
            source="cc_sbu_json",
            path="{minigpt4}/cc_sbu/ccs_synthetic_filtered_large.tsv",
            format="tsv",
            shards="{minigpt4}/cc_sbu/cc_sbu_dataset",
            retry_target=True,
            # MiniGPT-4 dataset/download_cc_sbu.sh: download_laion.sh's arguments (its
            # --image_size 224 is the config's url_lists.cc_sbu.image_size)
            i2d=MINIGPT4_I2D,
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
