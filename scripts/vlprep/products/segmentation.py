"""COSMOS's eight segmentation benchmarks under cosmos/mmseg/, the tree of mmseg's data/."""

from vlprep.products.base import Family

FAMILY = Family(products=[])
