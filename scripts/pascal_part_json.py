"""Snakemake adapter: GLaMM's pascal_part/train.json from PASCAL-Part's .mat files."""

from vlprep.log import setup_logging, user_errors
from vlprep.pascal_part import pascal_part

log = setup_logging(snakemake.log[0])
with user_errors(log, output=snakemake.output.tree):
    pascal_part(
        snakemake.params.annotations,
        snakemake.params.split,
        snakemake.output.tree,
        work=snakemake.params.work,
        processes=snakemake.threads,
    )
