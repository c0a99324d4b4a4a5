"""Snakemake adapter: one tree of cosmos/mmseg/ (mmseg's data/), assembled from the store."""

from vlprep.log import setup_logging, user_errors
from vlprep.mmseg import build_tree

log = setup_logging(snakemake.log[0])
with user_errors(log):
    build_tree(snakemake.output.tree, snakemake.params.plan, snakemake.params.link_mode)
