"""COSMOS's ten classification sets under cosmos/classification/ (its `dataset_root`), each the
folder torchvision's own class opens with download=False."""

from vlprep.products.base import Family

FAMILY = Family(products=[])
