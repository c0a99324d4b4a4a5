"""ImageNet-1k val for COSMOS's zero-shot classification (--imagenet-val): wnid folders."""

from vlprep.products.base import Family

FAMILY = Family(products=[])
