"""Snakemake adapter: cosmos/imagenet/data/val_images/<wnid>/, one link per store image."""

from vlprep.errors import VlprepError
from vlprep.imagenet import build_val_images
from vlprep.log import setup_logging, user_errors

log = setup_logging(snakemake.log[0])
with user_errors(log):
    params = snakemake.params
    if not params.images or not params.classes:
        raise VlprepError(
            f"{params.source}: the catalog entry needs `images:` and `classes:` (ImageNet val: "
            "50000 and 1000), which the tree is checked against"
        )
    build_val_images(
        params.route,
        snakemake.output.folder,
        store=snakemake.input.store,
        devkit=snakemake.input.devkit[0] if snakemake.input.devkit else None,
        images=params.images,
        classes=params.classes,
        link_mode=params.link_mode,
        source=params.source,
    )
