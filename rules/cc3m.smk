# CC3M webdataset shards from the hub, split the way nxtp's loader reads them.


rule cc3m_split:
    input:
        store=f"{DOWNLOADS}/cc3m_wds",
    output:
        train=directory(f"{G3M}/cc3m/cc3m"),
        valid=directory(f"{G3M}/cc3m/cc3m_valid"),
    log:
        f"{LOGS}/cc3m_split.log",
    conda:
        "../envs/vlprep.yaml"
    resources:
        runtime=30,
    params:
        patterns={"train": "cc3m-train-*.tar", "valid": "cc3m-validation-*.tar"},
        link_mode=LINK_MODE,
    script:
        "../scripts/split_shards.py"
