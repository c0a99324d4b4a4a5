# Targets: one rule per product, one per layout bundle. They only name files; nothing runs.


rule coco_valid:
    input:
        product_files("coco_valid"),


rule coco_train:
    input:
        product_files("coco_train"),


rule cosmos_coco:
    input:
        product_files("cosmos_coco"),


rule laion115m:
    input:
        product_files("laion115m"),


rule laion_coco:
    input:
        product_files("laion_coco"),


rule cc3m:
    input:
        product_files("cc3m"),


rule laion115m_retry_failed:
    input:
        f"{DATA_ROOT}/reports/laion115m.retry.json",


rule laion_coco_retry_failed:
    input:
        f"{DATA_ROOT}/reports/laion_coco.retry.json",


rule sbu:
    input:
        product_files("sbu"),


rule nocaps:
    input:
        product_files("nocaps"),


rule lavis_coco:
    input:
        product_files("lavis_coco"),


rule gqa:
    input:
        product_files("gqa"),


rule vg:
    input:
        product_files("vg"),


rule cc_sbu_align:
    input:
        product_files("cc_sbu_align"),


rule openimages_v7_valid:
    input:
        product_files("openimages_v7_valid"),


rule minigpt4:
    input:
        product_files(*BUNDLES["minigpt4"]),


rule lavis:
    input:
        product_files(*BUNDLES["lavis"]),


rule g3m:
    input:
        product_files(*BUNDLES["g3m"]),


rule cosmos:
    input:
        product_files(*BUNDLES["cosmos"]),


# A mistyped target (`coco_vlaid`): Snakemake's own error says only "No rule to produce". Every
# real output lives under data_root, so has a `/`; a bare name that is no rule matches here and
# stops the run before any job, naming the closest targets.
rule unknown_target:
    input:
        refuse_unknown_target,
    output:
        "{target}",
    wildcard_constraints:
        target=r"[^/.]+",
