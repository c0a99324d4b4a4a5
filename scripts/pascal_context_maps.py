"""Snakemake adapter: PASCAL-Context label maps and split lists from trainval_merged.json."""

from vlprep.log import setup_logging, user_errors
from vlprep.segmaps import pascal_context

log = setup_logging(snakemake.log[0])
with user_errors(log, output=snakemake.output.tree):
    pascal_context(
        snakemake.input.json,
        snakemake.output.tree,
        work=snakemake.params.work,
        processes=snakemake.threads,
    )
