"""GLaMM's Semantic_Segm/ sets that need more than a link: pascal_part (converted from the
part .mat files), paco_lvis, mapillary (manual); and the opt-in GranD pre-training data."""

from vlprep.products.base import Family

FAMILY = Family(products=[])
