# The roots COSMOS hard-codes (vlprep.cosmos_paths): the mmseg data/ alias and a checkout's edits.


rule cosmos_fixed_paths:
    output:
        report=f"{DATA_ROOT}/reports/cosmos/fixed_paths.txt",
    log:
        f"{LOGS}/cosmos_fixed_paths.log",
    localrule: True
    conda:
        "../envs/vlprep.yaml"
    params:
        settings=config["cosmos"],
        mmseg=f"{COSMOS}/mmseg",
        classification=f"{COSMOS}/classification",
    script:
        "../scripts/cosmos_fixed_paths.py"
