"""GLaMM's --dataset_dir (glamm/): what its fine-tuning and evaluation code opens, with its own
spellings (flikcr_30k, cocostuff), from mbzuai-oryx/groundingLMM e74865f2."""

from vlprep.products.base import Family

FAMILY = Family(products=[])
