# Visual Genome: both image zips unpacked into one flat store folder, as VPGTrans opens them.


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
        top_dirs=list(VG_TOP_DIRS.values()),
        sizes=[archive_size_of("vg_images_part1"), archive_size_of("vg_images_part2")],
    script:
        "../scripts/vg_flatten.py"
