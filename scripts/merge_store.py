"""Snakemake adapter: build one merged store folder (vlprep.store.MERGED) from its downloads."""

from pathlib import Path

from vlprep.catalog import load_catalog
from vlprep.log import setup_logging, user_errors
from vlprep.store import merge_group

log = setup_logging(snakemake.log[0])
# As in extract_archive.py: the catalog and manual_dir say what a broken download means, not
# what is built, so they are read here rather than passed as params (which would rebuild).
with user_errors(log):
    merge_group(
        snakemake.wildcards.group,
        [Path(path) for path in snakemake.input.downloads],
        snakemake.params.parts,
        Path(snakemake.output.tree),
        catalog=load_catalog(snakemake.config["catalog"]),
        manual_dir=Path(snakemake.config["manual_dir"]),
    )
