# The rest of VPGTrans's cache_root (lavis/): annotations at their storage paths, image folders.


rule lavis_annotation:
    input:
        store=lavis_annotation_store,
    output:
        link=f"{LAVIS}/{{path}}",
    log:
        f"{LOGS}/lavis_annotation/{{path}}.log",
    wildcard_constraints:
        path=alternation(PLAIN_ANNOTATIONS),
    conda:
        "../envs/vlprep.yaml"
    resources:
        runtime=10,
    params:
        sources=lavis_annotation_source,
        link_mode=LINK_MODE,
    script:
        "../scripts/link_layout.py"


# Annotation files that name images keep only the records whose image opens the way their
# dataset class opens it; what was dropped, and why, goes to reports/lavis/<path>.
rule lavis_annotation_filter:
    input:
        unpack(lavis_filter_inputs),
    output:
        annotation=f"{LAVIS}/{{path}}",
        report=f"{DATA_ROOT}/reports/lavis/{{path}}",
    log:
        f"{LOGS}/lavis_annotation_filter/{{path}}.log",
    wildcard_constraints:
        path=alternation(ANNOTATION_IMAGES),
    conda:
        "../envs/vlprep.yaml"
    resources:
        mem_mb=1024,
        runtime=60,
    params:
        source=lavis_filter_source,
        checks=lavis_filter_checks,
        link_mode=LINK_MODE,
    script:
        "../scripts/lavis_annotation_filter.py"


# VQA's official question and answer files drop the questions their eval file dropped.
rule lavis_annotation_companion:
    input:
        store=lavis_annotation_store,
        report=lavis_companion_of,
    output:
        annotation=f"{LAVIS}/{{path}}",
    log:
        f"{LOGS}/lavis_annotation_companion/{{path}}.log",
    wildcard_constraints:
        path=alternation(COMPANIONS),
    conda:
        "../envs/vlprep.yaml"
    resources:
        mem_mb=1024,
        runtime=30,
    params:
        companion=lavis_companion_params,
        link_mode=LINK_MODE,
    script:
        "../scripts/lavis_annotation_companion.py"


rule lavis_images:
    input:
        store=lavis_images_store,
    output:
        link=directory(f"{LAVIS}/{{path}}"),
    log:
        f"{LOGS}/lavis_images/{{path}}.log",
    wildcard_constraints:
        path=alternation(LAVIS_LINKED_DIRS),
    conda:
        "../envs/vlprep.yaml"
    resources:
        runtime=30,
    params:
        sources=lavis_images_source,
        link_mode=LINK_MODE,
    script:
        "../scripts/link_layout.py"
