# COSMOS classification sets (cosmos/classification/<folder torchvision opens>): each folder
# shows one store folder (an unpacked entry, a folder inside one, or a merged group of
# vlprep.store.MERGED), stored once. The table is vlprep.products.classification.FOLDERS.


rule classification_link:
    input:
        store=classification_store,
    output:
        link=directory(f"{COSMOS}/classification/{{folder}}"),
    log:
        f"{LOGS}/classification_link/{{folder}}.log",
    wildcard_constraints:
        folder=alternation(CLASSIFICATION_FOLDERS),
    conda:
        "../envs/vlprep.yaml"
    resources:
        runtime=30,
    params:
        sources=classification_source,
        link_mode=LINK_MODE,
    script:
        "../scripts/link_layout.py"
