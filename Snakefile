# vlprep: vision-language datasets, downloaded, verified and laid out for their consumers.
# This file is the table of contents; rules live in rules/, logic in scripts/vlprep/.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/fetch.smk"
include: "rules/coco.smk"
include: "rules/img2dataset.smk"
include: "rules/laion.smk"
include: "rules/cc3m.smk"
include: "rules/sbu.smk"
include: "rules/nocaps.smk"
include: "rules/lavis.smk"
include: "rules/vg.smk"
include: "rules/images.smk"
include: "rules/flickr30k.smk"
include: "rules/imagenet.smk"
include: "rules/classification.smk"
include: "rules/segmentation.smk"
include: "rules/cosmos.smk"
include: "rules/glamm.smk"
include: "rules/glamm_refer.smk"
include: "rules/glamm_semantic.smk"
include: "rules/openimages.smk"
include: "rules/manifests.smk"
include: "rules/report.smk"
include: "rules/preflight.smk"
include: "rules/layouts.smk"


rule all:
    default_target: True
    input:
        product_files(*enabled_products()),
