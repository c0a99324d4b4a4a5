# COSMOS segmentation benchmarks (cosmos/mmseg/, the tree of mmseg data/).
# The trees and the store folders they show: vlprep.products.segmentation (MMSEG_TREES); the
# assembly and its pairing check: vlprep.mmseg; the label-map conversions: vlprep.segmaps.

# ---- views: a store folder inside an unpacked archive, as a folder of its own --------------
# The conversions read one folder of an archive (the val maps only, finding 11), and a rule's
# input must be a rule's output: a relative symlink to it (always a link, whatever link_mode).


rule coco_stuff_view:
    input:
        store=extracted_path("cocostuff_maps"),
    output:
        view=directory(f"{DATA_ROOT}/views/cocostuff_maps/val2017"),
    log:
        f"{LOGS}/coco_stuff_view.log",
    localrule: True
    conda:
        "../envs/vlprep.yaml"
    params:
        sources={"view": extracted_path("cocostuff_maps", "val2017")},
        link_mode="symlink",
    script:
        "../scripts/link_layout.py"


rule cityscapes_view:
    input:
        store=extracted_path("cityscapes_gtfine"),
    output:
        view=directory(f"{DATA_ROOT}/views/cityscapes_gtfine/gtFine/val"),
    log:
        f"{LOGS}/cityscapes_view.log",
    localrule: True
    conda:
        "../envs/vlprep.yaml"
    params:
        sources={"view": extracted_path("cityscapes_gtfine", "gtFine", "val")},
        link_mode="symlink",
    script:
        "../scripts/link_layout.py"


# ---- label-map conversions into store folders vlprep owns ----------------------------------


rule coco_stuff_maps:
    input:
        raw=rules.coco_stuff_view.output.view,
    output:
        maps=directory(extracted_path(COCO_STUFF_MAPS)),
    log:
        f"{LOGS}/coco_stuff_maps.log",
    conda:
        "../envs/vlprep.yaml"
    threads: 4
    resources:
        mem_mb=2048,
        runtime=2 * 60,
    params:
        work=f"{DATA_ROOT}/work/coco_stuff_maps",
    script:
        "../scripts/coco_stuff_maps.py"


rule pascal_context_maps:
    input:
        json=download_path("pascal_context_json"),
    output:
        tree=directory(extracted_path(PASCAL_CONTEXT_MAPS)),
    log:
        f"{LOGS}/pascal_context_maps.log",
    conda:
        "../envs/vlprep.yaml"
    threads: 4
    resources:
        mem_mb=4096,
        runtime=2 * 60,
    params:
        work=f"{DATA_ROOT}/work/pascal_context_maps",
    script:
        "../scripts/pascal_context_maps.py"


rule cityscapes_maps:
    input:
        gtfine=rules.cityscapes_view.output.view,
    output:
        maps=directory(extracted_path(CITYSCAPES_MAPS)),
    log:
        f"{LOGS}/cityscapes_maps.log",
    conda:
        "../envs/vlprep.yaml"
    threads: 4
    resources:
        mem_mb=2048,
        runtime=2 * 60,
    params:
        work=f"{DATA_ROOT}/work/cityscapes_maps",
    script:
        "../scripts/cityscapes_maps.py"


# ---- the trees under cosmos/mmseg/ -----------------------------------------------------------


rule mmseg_link:
    input:
        stores=mmseg_tree_stores,
    output:
        tree=directory(f"{COSMOS}/mmseg/{{tree}}"),
    log:
        f"{LOGS}/mmseg_link/{{tree}}.log",
    wildcard_constraints:
        tree=alternation(MMSEG_TREE_PATHS),
    conda:
        "../envs/vlprep.yaml"
    resources:
        runtime=30,
    params:
        plan=mmseg_tree_plan,
        link_mode=LINK_MODE,
    script:
        "../scripts/mmseg_tree.py"
