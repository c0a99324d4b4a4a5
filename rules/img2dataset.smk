# URL lists -> img2dataset webdataset shards, written once for every URL-list dataset.
# A list is cut into parts of a fixed number of rows; each part is one job whose shards are
# numbered from the part's first row, so names are the same however many jobs ran.


rule i2d_plan:
    input:
        url_list=url_list_input,
    output:
        plan=f"{DATA_ROOT}/i2d/{{dataset}}/plan.json",
    log:
        f"{LOGS}/i2d_plan/{{dataset}}.log",
    wildcard_constraints:
        dataset="|".join(URL_LISTS),
    conda:
        "../envs/vlprep.yaml"
    resources:
        mem_mb=1024,
        runtime=4 * 60,
    params:
        format=url_list_format,
        rows_per_part=rows_per_part,
        planned_rows=planned_rows_of,
        capped=rows_capped,
    script:
        "../scripts/i2d_plan.py"


rule i2d_part:
    input:
        url_list=url_list_input,
        plan=f"{DATA_ROOT}/i2d/{{dataset}}/plan.json",
    output:
        part=directory(f"{DATA_ROOT}/i2d/{{dataset}}/parts/{{part}}"),
    log:
        f"{LOGS}/i2d_part/{{dataset}}/{{part}}.log",
    wildcard_constraints:
        dataset="|".join(URL_LISTS),
    conda:
        "../envs/vlprep.yaml"
    threads: i2d_processes
    resources:
        mem_mb=8192,
        runtime=12 * 60,
    params:
        plan=part_plan,
        i2d=i2d_args,
        processes=i2d_processes,
        threads=i2d_threads,
    script:
        "../scripts/i2d_part.py"


rule i2d_report:
    input:
        parts=part_dirs,
    output:
        report=f"{DATA_ROOT}/reports/{{dataset}}.json",
    log:
        f"{LOGS}/i2d_report/{{dataset}}.log",
    wildcard_constraints:
        dataset="|".join(URL_LISTS),
    conda:
        "../envs/vlprep.yaml"
    params:
        floor=success_floor,
    script:
        "../scripts/i2d_report.py"


rule i2d_retry_failed:
    input:
        shards=shards_dir,
        report=f"{DATA_ROOT}/reports/{{dataset}}.json",
    output:
        retry=directory(f"{DATA_ROOT}/i2d/{{dataset}}/retry"),
        report=f"{DATA_ROOT}/reports/{{dataset}}.retry.json",
    log:
        f"{LOGS}/i2d_retry_failed/{{dataset}}.log",
    wildcard_constraints:
        dataset="|".join(URL_LISTS),
    conda:
        "../envs/vlprep.yaml"
    threads: i2d_processes
    resources:
        mem_mb=8192,
        runtime=12 * 60,
    params:
        i2d=i2d_args,
        processes=i2d_processes,
        threads=i2d_threads,
    script:
        "../scripts/i2d_retry_failed.py"


rule i2d_named_list:
    input:
        annotations=named_list_source,
    output:
        urls=f"{DATA_ROOT}/i2d/{{dataset}}/urls.parquet",
    log:
        f"{LOGS}/i2d_named_list/{{dataset}}.log",
    wildcard_constraints:
        dataset="|".join(NAMED_LISTS),
    conda:
        "../envs/vlprep.yaml"
    resources:
        mem_mb=1024,
        runtime=60,
    params:
        kind=named_list_kind,
    script:
        "../scripts/named_url_list.py"
