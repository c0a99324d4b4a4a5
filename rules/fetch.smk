# Fetch, verify and extract: written once, driven by the catalog.


rule fetch_file:
    input:
        manual=manual_file,
    output:
        file=f"{DOWNLOADS}/{{entry}}/{{filename}}",
    log:
        f"{LOGS}/fetch_file/{{entry}}/{{filename}}.log",
    wildcard_constraints:
        entry=FILE_ENTRIES,
    localrule: FETCH_ON_LOGIN_NODE
    conda:
        "../envs/vlprep.yaml"
    resources:
        downloads=1,
        mem_mb=512,
        runtime=24 * 60,
    params:
        source=fetch_source,
    script:
        "../scripts/fetch_file.py"


rule fetch_hub:
    output:
        tree=directory(f"{DOWNLOADS}/{{entry}}"),
    log:
        f"{LOGS}/fetch_hub/{{entry}}.log",
    wildcard_constraints:
        entry=HF_ENTRIES,
    localrule: FETCH_ON_LOGIN_NODE
    conda:
        "../envs/vlprep.yaml"
    resources:
        downloads=1,
        mem_mb=1024,
        runtime=24 * 60,
    params:
        source=hub_source,
    script:
        "../scripts/fetch_hub.py"


rule extract_archive:
    input:
        archive=archive_of,
    output:
        tree=directory(f"{EXTRACTED}/{{entry}}"),
    log:
        f"{LOGS}/extract_archive/{{entry}}.log",
    conda:
        "../envs/vlprep.yaml"
    resources:
        mem_mb=1024,
        runtime=6 * 60,
    params:
        kind=archive_kind,
        size=archive_size,
        max_ratio=archive_max_ratio,
    script:
        "../scripts/extract_archive.py"


rule merge_store:
    input:
        downloads=merge_downloads,
    output:
        tree=directory(f"{EXTRACTED}/{{group}}"),
    log:
        f"{LOGS}/merge_store/{{group}}.log",
    wildcard_constraints:
        group=MERGED_GROUPS,
    conda:
        "../envs/vlprep.yaml"
    resources:
        mem_mb=1024,
        runtime=6 * 60,
    params:
        parts=merge_parts,
    script:
        "../scripts/merge_store.py"
