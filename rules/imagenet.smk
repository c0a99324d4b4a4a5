# ImageNet-1k val for COSMOS (cosmos/imagenet/data/val_images/<wnid>/), from the route the config's
# imagenet_source picks (vlprep.products.imagenet): the gated hub archive or the official tars.


rule cosmos_imagenet_val:
    input:
        ready=product_ready("cosmos_imagenet"),
        store=extracted_path(IMAGENET_IMAGES),
        devkit=[download_path(e) for e in IMAGENET_DEVKIT.get(IMAGENET_ROUTE, ())],
    output:
        folder=directory(f"{COSMOS}/imagenet/data/val_images"),
    log:
        f"{LOGS}/cosmos_imagenet_val.log",
    conda:
        "../envs/vlprep.yaml"
    resources:
        mem_mb=1024,
        runtime=3 * 60,
    params:
        route=IMAGENET_ROUTE,
        source=IMAGENET_ENTRY.get("archive_file") or IMAGENET_ENTRY.get("filename"),
        images=IMAGENET_ENTRY.get("images"),
        classes=IMAGENET_ENTRY.get("classes"),
        link_mode=LINK_MODE,
    script:
        "../scripts/imagenet_val.py"
