"""GLaMM's referring-expression, region-caption and GranD-f data: Refer_Segm/, RefCoco_Reg/
mdetr annotations, flikcr_30k/mdetr_annotations, GranDf/ (mbzuai-oryx/groundingLMM e74865f2;
research/cosmos-glamm.md §4). Each product also declares the COCO / Flickr image folders its
sets open (links to the stores glamm_coco and glamm_flickr show too): built alone, it is whole."""

from vlprep.glamm_refer import GRANDF_TRAIN, MDETR_COCO, MDETR_FLICKR, REFER_SPLIT_BY
from vlprep.products.base import Family, Product, Samples

FAMILY = Family(
    products=[
        Product(
            "glamm_refer_segm",
            bundles=("glamm",),
            # RefCOCO_Segm_ds.py:48-56 (REFER(<dd>/Refer_Segm, name, split_by)), l.81 (RefCLEF images)
            # and l.83-84: the COCO sets' images, a link to the COCO 2014 train store
            files=(
                *(f"{{glamm}}/Refer_Segm/{name}" for name in REFER_SPLIT_BY),
                "{glamm}/Refer_Segm/images/saiapr_tc-12",
                "{glamm}/Refer_Segm/coco_2014/train2014",
            ),
            entries=(
                "glamm_refcoco",
                "glamm_refcoco_plus",
                "glamm_refcocog",
                "glamm_refclef",
                "glamm_saiapr",
                "coco2014_train",
            ),
            checks=("glamm",),
            about="glamm/Refer_Segm: RefCOCO/+/g, RefCLEF, SAIAPR TC-12 images (Wayback) and "
            "COCO train2014 (shared)",
            # REFER(Refer_Segm, "refcoco"): instances.json's images under coco_2014/train2014
            samples=Samples(
                "coco",
                "{glamm}/Refer_Segm/refcoco/instances.json",
                images="{glamm}/Refer_Segm/coco_2014/train2014",
            ),
        ),
        Product(
            "glamm_mdetr",
            bundles=("glamm",),
            # RefCOCO_VG_Region_ds.py:191,210-211,234-236; eval/region_captioning/infer.py:22-23;
            # Flickr_Region_ds.py:38
            # and the images they name: RefCOCO_VG_Region_ds.py:42 (RefCoco_Reg/coco_2014, COCO
            # train2014 flat) and Flickr_Region_ds.py:37 (flikcr_30k/flickr30k-images)
            files=(
                *(f"{{glamm}}/RefCoco_Reg/mdetr_annotations/{name}" for name in MDETR_COCO),
                f"{{glamm}}/flikcr_30k/mdetr_annotations/{MDETR_FLICKR}",
                "{glamm}/RefCoco_Reg/coco_2014",
                "{glamm}/flikcr_30k/flickr30k-images",
            ),
            entries=("glamm_mdetr", "coco2014_train", "flickr30k_images"),
            checks=("glamm",),
            about="glamm/RefCoco_Reg/mdetr_annotations and flikcr_30k/mdetr_annotations (Drive), "
            "with COCO train2014 and Flickr30k images (shared)",
            # RegionBaseDataset: each image's caption, its regions' boxes
            samples=Samples(
                "coco",
                "{glamm}/RefCoco_Reg/mdetr_annotations/finetune_refcocog_val.json",
                images="{glamm}/RefCoco_Reg/coco_2014",
            ),
        ),
        Product(
            "glamm_grandf",
            bundles=("glamm",),
            # GranDf_gcg_ds.py:49,168; eval/gcg/evaluate.py:20, eval/gcg/infer.py:23
            files=(
                *(f"{{glamm}}/GranDf/annotations/train/{name}" for name in GRANDF_TRAIN),
                "{glamm}/GranDf/annotations/val_test",
                "{glamm}/GranDf/GranDf_HA_images",
            ),
            entries=("glamm_grandf", "glamm_grandf_ha"),
            checks=("glamm",),
            about="glamm/GranDf: GranD-f GCG annotations (hub) and HA images (Drive)",
            # GranDfDataset: file_name under GranDf_HA_images/train, the caption and its
            # phrases' RLE masks
            samples=Samples(
                "annotations",
                "{glamm}/GranDf/annotations/train/GranDf_HA_GCG_train.json",
                images="{glamm}/GranDf/GranDf_HA_images/train",
                field="file_name",
            ),
        ),
    ]
)
