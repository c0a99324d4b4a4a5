# GLaMM's referring-expression, region-caption and GranD-f data: Refer_Segm/, RefCoco_Reg/
