# GLaMM's Semantic_Segm/ sets that need more than a link: pascal_part (converted from the
# part .mat files: vlprep.pascal_part), paco_lvis, mapillary (manual). Tables:
# vlprep.products.glamm_semantic (SEMANTIC_FILES, SEMANTIC_DIRS).

from vlprep.products.glamm_semantic import PASCAL_PART_COCO, SEMANTIC_DIRS, SEMANTIC_FILES


# PASCAL-Part: VLPart's pascal_part_mat2json.py --split train.txt, re-implemented, into a store
# folder vlprep owns (extracted/pascal_part_coco/train.json).
rule pascal_part_json:
    input:
        parts=extracted_path("pascal_part_annotations"),
        voc=extracted_path("voc2010"),
    output:
        tree=directory(extracted_path(PASCAL_PART_COCO)),
    log:
        f"{LOGS}/pascal_part_json.log",
    conda:
        "../envs/vlprep.yaml"
    threads: 4
    resources:
        mem_mb=2048,
        runtime=60,
    params:
        annotations=extracted_path("pascal_part_annotations", "Annotations_Part"),
        split=extracted_path("voc2010", "VOCdevkit", "VOC2010", "ImageSets", "Main", "train.txt"),
        work=f"{DATA_ROOT}/work/pascal_part_json",
    script:
        "../scripts/pascal_part_json.py"


# A file of glamm/Semantic_Segm/ that is one store file (train.json, paco_lvis_v1_train.json,
# config_v2.0.json).
rule glamm_semantic_file:
    input:
        root_ok=glamm_root_ok,
        store=lambda wildcards: extracted_path(SEMANTIC_FILES[wildcards.path][0]),
    output:
        link=f"{GLAMM}/Semantic_Segm/{{path}}",
    log:
        f"{LOGS}/glamm_semantic_file/{{path}}.log",
    wildcard_constraints:
        path=alternation(SEMANTIC_FILES),
    localrule: True
    conda:
        "../envs/vlprep.yaml"
    params:
        sources=lambda wildcards: {"link": extracted_path(*SEMANTIC_FILES[wildcards.path])},
        link_mode=LINK_MODE,
    script:
        "../scripts/link_layout.py"


# A folder of glamm/Semantic_Segm/ that shows one store folder (VOC2010 JPEGImages, shared with
# COSMOS; Mapillary's training images and v2.0 labels).
rule glamm_semantic_dir:
    input:
        root_ok=glamm_root_ok,
        store=lambda wildcards: extracted_path(SEMANTIC_DIRS[wildcards.path][0]),
    output:
        link=directory(f"{GLAMM}/Semantic_Segm/{{path}}"),
    log:
        f"{LOGS}/glamm_semantic_dir/{{path}}.log",
    wildcard_constraints:
        path=alternation(SEMANTIC_DIRS),
    localrule: True
    conda:
        "../envs/vlprep.yaml"
    params:
        sources=lambda wildcards: {"link": extracted_path(*SEMANTIC_DIRS[wildcards.path])},
        link_mode=LINK_MODE,
    script:
        "../scripts/link_layout.py"
