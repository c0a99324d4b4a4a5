"""GLaMM's referring-expression, region-caption and GranD-f data: Refer_Segm/, RefCoco_Reg/
mdetr annotations, flikcr_30k/mdetr_annotations, GranDf/ (mbzuai-oryx/groundingLMM e74865f2;
research/cosmos-glamm.md §4). The COCO and Flickr image folders beside them are other products'."""

from vlprep.glamm_refer import GRANDF_TRAIN, MDETR_COCO, MDETR_FLICKR, REFER_SPLIT_BY
from vlprep.products.base import Family, Product

FAMILY = Family(
    products=[
        Product(
            "glamm_refer_segm",
            bundles=("glamm",),
            # RefCOCO_Segm_ds.py:48-56 (REFER(<dd>/Refer_Segm, name, split_by)), l.81 (RefCLEF images)
            files=(
                *(f"{{glamm}}/Refer_Segm/{name}" for name in REFER_SPLIT_BY),
                "{glamm}/Refer_Segm/images/saiapr_tc-12",
            ),
            entries=(
                "glamm_refcoco",
                "glamm_refcoco_plus",
                "glamm_refcocog",
                "glamm_refclef",
                "glamm_saiapr",
            ),
            checks=("glamm",),
            about="glamm/Refer_Segm: RefCOCO/+/g, RefCLEF and SAIAPR TC-12 images (Wayback)",
        ),
        Product(
            "glamm_mdetr",
            bundles=("glamm",),
            # RefCOCO_VG_Region_ds.py:191,210-211,234-236; eval/region_captioning/infer.py:22-23;
            # Flickr_Region_ds.py:38
            files=(
                *(f"{{glamm}}/RefCoco_Reg/mdetr_annotations/{name}" for name in MDETR_COCO),
                f"{{glamm}}/flikcr_30k/mdetr_annotations/{MDETR_FLICKR}",
            ),
            entries=("glamm_mdetr",),
            checks=("glamm",),
            about="glamm/RefCoco_Reg/mdetr_annotations and flikcr_30k/mdetr_annotations (Drive)",
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
        ),
    ]
)
