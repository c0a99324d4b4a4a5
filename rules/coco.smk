# COCO 2017 into nxtp's G3M layout (g3m/coco/...) and COSMOS's retrieval layout (cosmos/coco/...).


rule coco_link:
    input:
        store=coco_part_store,
    output:
        link=directory(f"{G3M}/coco/{{part}}"),
    log:
        f"{LOGS}/coco_link/{{part}}.log",
    wildcard_constraints:
        part="|".join(COCO_G3M_PARTS),
    conda:
        "../envs/vlprep.yaml"
    resources:
        runtime=30,
    params:
        sources=coco_part_sources,
        link_mode=LINK_MODE,
    script:
        "../scripts/link_layout.py"


rule coco_wds:
    input:
        unpack(coco_wds_inputs),
    output:
        tree=directory(f"{G3M}/coco/{{wds}}"),
    log:
        f"{LOGS}/coco_wds/{{wds}}.log",
    wildcard_constraints:
        wds="|".join(COCO_WDS_SPLITS),
    conda:
        "../envs/vlprep.yaml"
    threads: 2
    resources:
        mem_mb=2048,
        runtime=4 * 60,
    params:
        captions_json=coco_wds_captions,
        image_dir=coco_wds_images,
        split=coco_wds_split,
        link_mode=LINK_MODE,
    script:
        "../scripts/coco_nxtp_wds.py"


rule cosmos_coco_link:
    input:
        annotations=extracted_path("coco2017_annotations"),
        images=extracted_path("coco2017_val"),
    output:
        images=directory(f"{COSMOS}/coco/images/val2017"),
        captions=f"{COSMOS}/coco/annotations/captions_val2017.json",
    log:
        f"{LOGS}/cosmos_coco_link.log",
    conda:
        "../envs/vlprep.yaml"
    resources:
        runtime=30,
    params:
        sources={
            "images": extracted_path("coco2017_val", "val2017"),
            "captions": extracted_path(
                "coco2017_annotations", "annotations", "captions_val2017.json"
            ),
        },
        link_mode=LINK_MODE,
    script:
        "../scripts/link_layout.py"
