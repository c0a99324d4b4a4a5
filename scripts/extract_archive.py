"""Snakemake adapter: unpack one downloaded archive into the store, safely and atomically."""

from pathlib import Path

from vlprep.extract import extract
from vlprep.log import setup_logging, user_errors

log = setup_logging(snakemake.log[0])
with user_errors(log):
    extract(
        Path(snakemake.input.archive),
        Path(snakemake.output.tree),
        kind=snakemake.params.kind,
        entry=snakemake.wildcards.entry,
        declared_size=snakemake.params.size,
        max_ratio=snakemake.params.max_ratio,
    )
