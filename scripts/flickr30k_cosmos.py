"""Snakemake adapter: cosmos/flickr30k-images, the images and the caption files COSMOS reads."""

import json
from pathlib import Path

from vlprep.cosmos import flickr30k_folder
from vlprep.log import setup_logging, user_errors

log = setup_logging(snakemake.log[0])
with user_errors(log):
    flickr30k_folder(
        snakemake.params.images,
        {"flickr30k_val.json": snakemake.input.val, "flickr30k_test.json": snakemake.input.test},
        snakemake.output.folder,
        check=json.loads(Path(snakemake.input.check).read_text()),
        reports=Path(snakemake.output.reports),
        link_mode=snakemake.params.link_mode,
    )
