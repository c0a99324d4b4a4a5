# The rest of VPGTrans's cache_root (lavis/): annotations at their storage paths, image folders.


rule lavis_annotation:
    input:
        store=lavis_annotation_store,
    output:
        link=f"{LAVIS}/{{path}}",
    log:
        f"{LOGS}/lavis_annotation/{{path}}.log",
    wildcard_constraints:
        path=alternation(LAVIS_ANNOTATIONS),
    conda:
        "../envs/vlprep.yaml"
    resources:
        runtime=10,
    params:
        sources=lavis_annotation_source,
        link_mode=LINK_MODE,
    script:
        "../scripts/link_layout.py"


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


rule cc_sbu_align_list:
    input:
        store=extracted_path("cc_sbu_align"),
    output:
        annotations=f"{LAVIS}/cc_sbu_align/filter_cap.json",
    log:
        f"{LOGS}/cc_sbu_align_list.log",
    conda:
        "../envs/vlprep.yaml"
    resources:
        runtime=10,
    params:
        source=extracted_path("cc_sbu_align", "cc_sbu_align", "filter_cap.json"),
    script:
        "../scripts/cc_sbu_align_list.py"


rule vg_flatten:
    input:
        part1=download_path("vg_images_part1"),
        part2=download_path("vg_images_part2"),
    output:
        images=directory(f"{EXTRACTED}/vg_images"),
        report=f"{DATA_ROOT}/reports/vg_images.json",
    log:
        f"{LOGS}/vg_flatten.log",
    conda:
        "../envs/vlprep.yaml"
    resources:
        mem_mb=1024,
        runtime=6 * 60,
    params:
        # VPGTrans opens vg/images/<basename>: both zips' folders, merged flat.
        top_dirs=["VG_100K", "VG_100K_2"],
        sizes=[archive_size_of("vg_images_part1"), archive_size_of("vg_images_part2")],
    script:
        "../scripts/vg_flatten.py"
