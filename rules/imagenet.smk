# ImageNet-1k val for COSMOS (cosmos/imagenet/data/val_images/<wnid>/).
