# Each product's manifest (vlprep.manifest), written once its files are; `verify` re-checks
# built products against theirs, offline (vlprep.verify).


rule product_manifest:
    input:
        product=manifest_inputs,
    output:
        header=f"{MANIFESTS}/{{product}}.json",
        files=f"{MANIFESTS}/{{product}}.files.jsonl.gz",
        croissant=f"{MANIFESTS}/{{product}}.croissant.json",
    log:
        f"{LOGS}/product_manifest/{{product}}.log",
    wildcard_constraints:
        product="|".join(PRODUCTS),
    conda:
        "../envs/vlprep.yaml"
    threads: 2
    resources:
        mem_mb=512,
        runtime=12 * 60,
    params:
        plan=manifest_plan,
    script:
        "../scripts/product_manifest.py"


# No output, so it runs whenever asked: `snakemake verify [--config verify=full]`.
rule verify:
    log:
        f"{LOGS}/verify.log",
    localrule: True
    conda:
        "../envs/vlprep.yaml"
    # not workflow.cores: a cluster run (--profile profiles/slurm) gives no --cores
    threads: 4
    params:
        manifests=MANIFESTS,
        mode=config["verify"],
        compare_with=config["compare_with"],
    script:
        "../scripts/verify_products.py"
