# Targets: one rule per product, one per layout bundle, one per retryable URL list, all
# generated from the registry (vlprep.products). They only name files; nothing runs.


for product in PRODUCTS:

    rule:
        name:
            product
        input:
            product_files(product),


for bundle in BUNDLES:

    rule:
        name:
            bundle
        input:
            bundle_files(bundle),


for dataset in RETRY_TARGETS:

    rule:
        name:
            f"{dataset}_retry_failed"
        input:
            f"{DATA_ROOT}/reports/{dataset}.retry.json",


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
