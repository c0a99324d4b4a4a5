# GLaMM's --dataset_dir (glamm/) and the folders it opens from its working directory.
# Tables: vlprep.products.glamm (GLAMM_FOLDERS, GLAMM_FILES) and .glamm_semantic (GRAND_FOLDERS).


# A folder of glamm/ that shows one store folder under GLaMM's name (coco_2017/train2017,
# RefCoco_Reg/coco_2014, Semantic_Segm/ade20k, ...).
rule glamm_link:
    input:
        root_ok=glamm_root_ok,
        store=glamm_folder_store,
    output:
        link=directory(f"{GLAMM}/{{path}}"),
    log:
        f"{LOGS}/glamm_link/{{path}}.log",
    wildcard_constraints:
        path=alternation(GLAMM_LINKED),
    localrule: True
    conda:
        "../envs/vlprep.yaml"
    params:
        sources=glamm_folder_source,
        link_mode=LINK_MODE,
    script:
        "../scripts/link_layout.py"


# A file of glamm/ that is one stored download (visual_genome/*.json, llava_dataset/*.json).
rule glamm_file:
    input:
        root_ok=glamm_root_ok,
        store=glamm_file_store,
    output:
        link=f"{GLAMM}/{{path}}",
    log:
        f"{LOGS}/glamm_file/{{path}}.log",
    wildcard_constraints:
        path=alternation(GLAMM_FILES),
    localrule: True
    conda:
        "../envs/vlprep.yaml"
    params:
        sources=glamm_file_source,
        link_mode=LINK_MODE,
    script:
        "../scripts/link_layout.py"


# <checkout>/{coco_2017,coco_2014,flikcr_30k} -> glamm/ (config glamm.checkout; the glamm bundle
# runs it when set): GLaMM's GCG datasets open these relative to the working directory.
rule glamm_working_dir:
    input:
        root_ok=glamm_root_ok,
        folders=[f"{GLAMM}/{path}" for path in GLAMM_WORKING_DIR_IMAGES],
    output:
        report=f"{DATA_ROOT}/reports/glamm/working_dir.txt",
    log:
        f"{LOGS}/glamm_working_dir.log",
    localrule: True
    conda:
        "../envs/vlprep.yaml"
    params:
        checkout=config["glamm"]["checkout"],
    script:
        "../scripts/glamm_working_dir.py"
