# Flickr30k for COSMOS: the hub's image zip and BLIP's Karpathy-split JSONs in one folder.


rule flickr30k_cosmos:
    input:
        store=extracted_path("flickr30k_images"),
        val=download_path("flickr30k_val_json"),
        test=download_path("flickr30k_test_json"),
        check=image_check_report("flickr30k_images"),
    output:
        folder=directory(f"{COSMOS}/flickr30k-images"),
        reports=directory(f"{DATA_ROOT}/reports/cosmos/flickr30k-images"),
    log:
        f"{LOGS}/flickr30k_cosmos.log",
    conda:
        "../envs/vlprep.yaml"
    resources:
        mem_mb=1024,
        runtime=60,
    params:
        images=extracted_path("flickr30k_images", "flickr30k-images"),
        link_mode=LINK_MODE,
    script:
        "../scripts/flickr30k_cosmos.py"
