# Open Images V7 validation + Localized Narratives -> nxtp's openimages_v7_valid tars.


rule openimages_wds:
    input:
        images=extracted_path("openimages_val"),
        narratives=download_path("openimages_val_narratives"),
    output:
        tars=directory(f"{G3M}/openimages_v7/openimages_v7_valid"),
    log:
        f"{LOGS}/openimages_wds.log",
    conda:
        "../envs/vlprep.yaml"
    resources:
        mem_mb=2048,
        runtime=2 * 60,
    params:
        # the tarball unpacks to validation/ (the seed script looked in valid/)
        image_dir=extracted_path("openimages_val", "validation"),
    script:
        "../scripts/openimages_wds.py"
