"""Snakemake adapter: COCO-Stuff val label maps and COCO-Object instance maps (vlprep.segmaps)."""

from vlprep.log import setup_logging, user_errors
from vlprep.segmaps import coco_stuff_val

log = setup_logging(snakemake.log[0])
with user_errors(log, output=snakemake.output.maps):
    coco_stuff_val(
        snakemake.input.raw,
        snakemake.output.maps,
        work=snakemake.params.work,
        processes=snakemake.threads,
    )
