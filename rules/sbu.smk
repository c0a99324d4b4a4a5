# SBU Captions from LAVIS's sbu.json: flat images by name for VPGTrans, sorted tars for nxtp.
# sbu.json itself, reduced to the images that arrived, is made by lavis_annotation_filter.


rule sbu_images:
    input:
        parts=parts_of("sbu"),
    output:
        images=directory(f"{LAVIS}/sbu_captions/images"),
    log:
        f"{LOGS}/sbu_images.log",
    conda:
        "../envs/vlprep.yaml"
    resources:
        runtime=120,
    params:
        link_mode=LINK_MODE,
    script:
        "../scripts/place_named.py"


rule sbu_wds:
    input:
        parts=parts_of("sbu"),
    output:
        tars=directory(f"{G3M}/sbu/sbu"),
    log:
        f"{LOGS}/sbu_wds.log",
    conda:
        "../envs/vlprep.yaml"
    resources:
        runtime=240,
    params:
        samples_per_tar=sbu_samples_per_tar,
    script:
        "../scripts/pack_wds.py"
