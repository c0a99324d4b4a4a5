# NoCaps val/test images from the URLs in its annotation files, by file name, for LAVIS.


rule nocaps_images:
    input:
        parts=nocaps_part_dirs,
    output:
        images=directory(f"{LAVIS}/nocaps/images/{{split}}"),
    log:
        f"{LOGS}/nocaps_images/{{split}}.log",
    wildcard_constraints:
        split="val|test",
    conda:
        "../envs/vlprep.yaml"
    resources:
        runtime=60,
    params:
        link_mode=LINK_MODE,
    script:
        "../scripts/place_named.py"
