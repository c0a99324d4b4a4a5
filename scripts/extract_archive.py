"""Snakemake adapter: unpack one downloaded archive into the store, safely and atomically."""

from pathlib import Path

from vlprep.catalog import load_catalog
from vlprep.log import setup_logging, user_errors
from vlprep.sources import extract_download

log = setup_logging(snakemake.log[0])
# Whether the catalog has a checksum and where manual_dir is decide what a broken archive
# means (see vlprep.sources.bad_archive), not what is extracted, so they are read here rather
# than passed as params: as params, adding one would rerun every finished extraction.
with user_errors(log):
    entry = snakemake.wildcards.entry
    extract_download(
        entry,
        Path(snakemake.input.archive),
        Path(snakemake.output.tree),
        load_catalog(snakemake.config["catalog"])[entry],
        Path(snakemake.config["manual_dir"]),
        kind=snakemake.params.kind,
        declared_size=snakemake.params.size,
        max_ratio=snakemake.params.max_ratio,
    )
