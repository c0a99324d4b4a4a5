# Readiness before a long run: `snakemake preflight`. No output, so it runs whenever asked.


rule preflight:
    log:
        f"{LOGS}/preflight.log",
    localrule: True
    conda:
        "../envs/vlprep.yaml"
    params:
        plan=preflight_plan,
        report=f"{DATA_ROOT}/reports/preflight.json",
    script:
        "../scripts/preflight.py"
