"""Snakemake adapter: Cityscapes gtFine label maps (trainIds) from the polygon files."""

from vlprep.log import setup_logging, user_errors
from vlprep.segmaps import cityscapes

log = setup_logging(snakemake.log[0])
with user_errors(log, output=snakemake.output.maps):
    cityscapes(
        snakemake.input.gtfine,
        snakemake.output.maps,
        work=snakemake.params.work,
        processes=snakemake.threads,
    )
