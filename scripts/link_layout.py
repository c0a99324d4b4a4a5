"""Snakemake adapter: place store paths into a layout (symlink, hardlink or copy)."""

from vlprep.layout import place
from vlprep.log import setup_logging, user_errors

log = setup_logging(snakemake.log[0])
with user_errors(log):
    for name, source in snakemake.params.sources.items():
        place(source, snakemake.output[name], snakemake.params.link_mode)
