"""GLaMM's referring-expression, region-caption and GranD-f data: Refer_Segm/, RefCoco_Reg/
mdetr annotations, flikcr_30k/mdetr_annotations, GranDf/."""

from vlprep.products.base import Family

FAMILY = Family(products=[])
