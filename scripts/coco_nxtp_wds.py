"""Snakemake adapter: COCO 2017 split -> nxtp's coco_valid/coco_train sub-folders and tars."""

from pathlib import Path

from vlprep.log import setup_logging, user_errors
from vlprep.nxtp import build_coco_wds

log = setup_logging(snakemake.log[0])
with user_errors(log):
    report = build_coco_wds(
        Path(snakemake.params.captions_json),
        Path(snakemake.params.image_dir),
        Path(snakemake.output.tree),
        split=snakemake.params.split,
        link_mode=snakemake.params.link_mode,
        workers=snakemake.threads,
    )
    log.info("built %s: %s", snakemake.output.tree, report)
