"""Snakemake adapter: Open Images validation + Localized Narratives -> nxtp's tars."""

from vlprep.log import setup_logging, user_errors
from vlprep.openimages import build_openimages_wds

log = setup_logging(snakemake.log[0])
with user_errors(log):
    build_openimages_wds(
        snakemake.input.narratives, snakemake.params.image_dir, snakemake.output.tars
    )
