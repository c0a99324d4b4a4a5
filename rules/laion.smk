# LAION-115M for MiniGPT-4 (minigpt4/laion/...) and Laion-COCO for VPGTrans (lavis/laion/...).


rule laion115m_json:
    input:
        store=download_path("laion115m_json"),
    output:
        link=f"{MINIGPT4}/laion/laion_synthetic_filtered_large.json",
    log:
        f"{LOGS}/laion115m_json.log",
    conda:
        "../envs/vlprep.yaml"
    resources:
        runtime=30,
    params:
        sources={"link": download_path("laion115m_json")},
        link_mode=LINK_MODE,
    script:
        "../scripts/link_layout.py"


rule laion115m_tsv:
    input:
        blip_json=download_path("laion115m_json"),
    output:
        tsv=f"{MINIGPT4}/laion/laion_synthetic_filtered_large.tsv",
    log:
        f"{LOGS}/laion115m_tsv.log",
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


rule laion115m_shards:
    input:
        parts=parts_of("laion115m"),
    output:
        shards=directory(f"{MINIGPT4}/laion/laion_dataset"),
    log:
        f"{LOGS}/laion115m_shards.log",
    conda:
        "../envs/vlprep.yaml"
    resources:
        runtime=60,
    params:
        link_mode=LINK_MODE,
    script:
        "../scripts/i2d_shards.py"


rule laion_coco_shards:
    input:
        parts=parts_of("laion_coco"),
    output:
        shards=directory(f"{LAVIS}/laion/laion400m-data"),
    log:
        f"{LOGS}/laion_coco_shards.log",
    conda:
        "../envs/vlprep.yaml"
    resources:
        runtime=60,
    params:
        link_mode=LINK_MODE,
    script:
        "../scripts/i2d_shards.py"
