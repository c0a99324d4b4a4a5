# GLaMM's referring-expression, region-caption and GranD-f data (vlprep.products.glamm_refer):
# parts of the unpacked sources, found by vlprep.glamm_refer.locate, linked into glamm/.


rule glamm_refer_segm_links:
    input:
        refcoco=extracted_path("glamm_refcoco"),
        refcoco_plus=extracted_path("glamm_refcoco_plus"),
        refcocog=extracted_path("glamm_refcocog"),
        refclef=extracted_path("glamm_refclef"),
        saiapr=extracted_path("glamm_saiapr"),
    output:
        refcoco=directory(f"{GLAMM}/Refer_Segm/refcoco"),
        refcoco_plus=directory(f"{GLAMM}/Refer_Segm/refcoco+"),
        refcocog=directory(f"{GLAMM}/Refer_Segm/refcocog"),
        refclef=directory(f"{GLAMM}/Refer_Segm/refclef"),
        saiapr=directory(f"{GLAMM}/Refer_Segm/images/saiapr_tc-12"),
    log:
        f"{LOGS}/glamm_refer_segm_links.log",
    localrule: True
    conda:
        "../envs/vlprep.yaml"
    params:
        parts={
            "refcoco": (
                extracted_path("glamm_refcoco"),
                "refcoco",
                ["instances.json", "refs(unc).p"],
            ),
            "refcoco_plus": (
                extracted_path("glamm_refcoco_plus"),
                "refcoco+",
                ["instances.json", "refs(unc).p"],
            ),
            "refcocog": (
                extracted_path("glamm_refcocog"),
                "refcocog",
                ["instances.json", "refs(umd).p"],
            ),
            "refclef": (
                extracted_path("glamm_refclef"),
                "refclef",
                ["instances.json", "refs(unc).p"],
            ),
            "saiapr": (extracted_path("glamm_saiapr"), "saiapr_tc-12", []),
        },
        link_mode=LINK_MODE,
    script:
        "../scripts/glamm_refer_place.py"


rule glamm_mdetr_links:
    input:
        store=extracted_path("glamm_mdetr"),
    output:
        refcoco=f"{GLAMM}/RefCoco_Reg/mdetr_annotations/finetune_refcoco_train.json",
        refcocog=f"{GLAMM}/RefCoco_Reg/mdetr_annotations/finetune_refcocog_train.json",
        refcocog_val=f"{GLAMM}/RefCoco_Reg/mdetr_annotations/finetune_refcocog_val.json",
        refcoco_plus=f"{GLAMM}/RefCoco_Reg/mdetr_annotations/finetune_refcoco+_train.json",
        captions=f"{GLAMM}/RefCoco_Reg/mdetr_annotations/finetune_refcocog_val_captions.json",
        flickr=f"{GLAMM}/flikcr_30k/mdetr_annotations/final_flickr_mergedGT_train.json",
    log:
        f"{LOGS}/glamm_mdetr_links.log",
    localrule: True
    conda:
        "../envs/vlprep.yaml"
    params:
        parts={
            "refcoco": (extracted_path("glamm_mdetr"), "finetune_refcoco_train.json", []),
            "refcocog": (extracted_path("glamm_mdetr"), "finetune_refcocog_train.json", []),
            "refcocog_val": (extracted_path("glamm_mdetr"), "finetune_refcocog_val.json", []),
            "refcoco_plus": (extracted_path("glamm_mdetr"), "finetune_refcoco+_train.json", []),
            "captions": (extracted_path("glamm_mdetr"), "finetune_refcocog_val_captions.json", []),
            "flickr": (extracted_path("glamm_mdetr"), "final_flickr_mergedGT_train.json", []),
        },
        link_mode=LINK_MODE,
    script:
        "../scripts/glamm_refer_place.py"


rule glamm_grandf_links:
    input:
        annotations=download_path("glamm_grandf"),
        images=extracted_path("glamm_grandf_ha"),
    output:
        ha=f"{GLAMM}/GranDf/annotations/train/GranDf_HA_GCG_train.json",
        psg=f"{GLAMM}/GranDf/annotations/train/OpenPsgGCG_train.json",
        psg_val=f"{GLAMM}/GranDf/annotations/train/OpenPsgGCG_val.json",
        refcocog=f"{GLAMM}/GranDf/annotations/train/RefCOCOg_GCG_train.json",
        refcocog_val=f"{GLAMM}/GranDf/annotations/train/RefCOCOg_GCG_val.json",
        flickr=f"{GLAMM}/GranDf/annotations/train/flickr_mergedGT_GCG_train.json",
        flickr_val=f"{GLAMM}/GranDf/annotations/train/flickr_mergedGT_GCG_val.json",
        val_test=directory(f"{GLAMM}/GranDf/annotations/val_test"),
        images=directory(f"{GLAMM}/GranDf/GranDf_HA_images"),
    log:
        f"{LOGS}/glamm_grandf_links.log",
    localrule: True
    conda:
        "../envs/vlprep.yaml"
    params:
        parts={
            "ha": (download_path("glamm_grandf"), "train/GranDf_HA_GCG_train.json", []),
            "psg": (download_path("glamm_grandf"), "train/OpenPsgGCG_train.json", []),
            "psg_val": (download_path("glamm_grandf"), "train/OpenPsgGCG_val.json", []),
            "refcocog": (download_path("glamm_grandf"), "train/RefCOCOg_GCG_train.json", []),
            "refcocog_val": (download_path("glamm_grandf"), "train/RefCOCOg_GCG_val.json", []),
            "flickr": (download_path("glamm_grandf"), "train/flickr_mergedGT_GCG_train.json", []),
            "flickr_val": (
                download_path("glamm_grandf"),
                "train/flickr_mergedGT_GCG_val.json",
                [],
            ),
            "val_test": (download_path("glamm_grandf"), "val_test", ["val_gcg_coco_mask_gt.json"]),
            "images": (
                extracted_path("glamm_grandf_ha"),
                "GranDf_HA_images",
                ["train", "val_test"],
            ),
        },
        link_mode=LINK_MODE,
    script:
        "../scripts/glamm_refer_place.py"
