# BLIP's synthetic-caption JSON lists for MiniGPT-4 stage 1 (minigpt4/laion, minigpt4/cc_sbu),
# Laion-COCO for VPGTrans (lavis/laion), and every URL list's shards gathered into its layout
# folder. One set of rules per list, generated from the registry (vlprep.products.laion).

for dataset in BLIP_LISTS:

    rule:
        name:
            f"{dataset}_json"
        input:
            store=download_path(URL_LISTS[dataset].source),
        output:
            link=blip_json_of(dataset),
        log:
            f"{LOGS}/{dataset}_json.log",
        conda:
            "../envs/vlprep.yaml"
        resources:
            runtime=30,
        params:
            sources={"link": download_path(URL_LISTS[dataset].source)},
            link_mode=LINK_MODE,
        script:
            "../scripts/link_layout.py"

    rule:
        name:
            f"{dataset}_tsv"
        input:
            blip_json=download_path(URL_LISTS[dataset].source),
        output:
            tsv=at(URL_LISTS[dataset].path),
        log:
            f"{LOGS}/{dataset}_tsv.log",
        conda:
            "../envs/vlprep.yaml"
        threads: 2
        resources:
            mem_mb=1024,
            runtime=6 * 60,
        params:
            on_error=config["malformed_records"],
        script:
            "../scripts/laion_tsv.py"


for dataset in SHARD_LISTS:

    rule:
        name:
            f"{dataset}_shards"
        input:
            parts=parts_of(dataset),
        output:
            shards=directory(at(URL_LISTS[dataset].shards)),
        log:
            f"{LOGS}/{dataset}_shards.log",
        conda:
            "../envs/vlprep.yaml"
        resources:
            runtime=60,
        params:
            link_mode=LINK_MODE,
        script:
            "../scripts/i2d_shards.py"


# MiniGPT-4's own cc_sbu_align (stage 2): the stored Drive download as it is, linked. Its
# CCSBUAlignDataset reads {"annotations": [...]} and opens <vis_root>/<image_id>.jpg; the
# minigpt4 consumer check resolves every annotation that way.
rule minigpt4_cc_sbu_align_links:
    input:
        store=extracted_path("cc_sbu_align"),
    output:
        annotations=f"{MINIGPT4}/cc_sbu_align/filter_cap.json",
        images=directory(f"{MINIGPT4}/cc_sbu_align/image"),
    log:
        f"{LOGS}/minigpt4_cc_sbu_align_links.log",
    conda:
        "../envs/vlprep.yaml"
    resources:
        runtime=10,
    params:
        sources={
            "annotations": extracted_path("cc_sbu_align", "cc_sbu_align/filter_cap.json"),
            "images": extracted_path("cc_sbu_align", "cc_sbu_align/image"),
        },
        link_mode=LINK_MODE,
    script:
        "../scripts/link_layout.py"
