# Image folders decoded once, the way the consumers decode them: the reports say which files
# do not open, and annotation files drop the records that name them.


rule check_images:
    input:
        folder=image_check_input,
    output:
        report=f"{DATA_ROOT}/reports/images/{{check}}.json",
    log:
        f"{LOGS}/check_images/{{check}}.log",
    wildcard_constraints:
        check=alternation(IMAGE_CHECKS),
    conda:
        "../envs/vlprep.yaml"
    threads: 8
    resources:
        mem_mb=2048,
        runtime=4 * 60,
    params:
        folder=image_check_path,
    script:
        "../scripts/check_images.py"
