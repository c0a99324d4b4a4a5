"""Snakemake adapter: deliver one catalog file (manual_dir, HTTP, S3 or Google Drive), verified."""

from pathlib import Path

from vlprep.catalog import load_catalog
from vlprep.log import setup_logging, user_errors
from vlprep.sources import fetch_entry, record_fetch

log = setup_logging(snakemake.log[0])
# Mirrors, endpoints, manual_dir and retry settings say where bytes come from, not what they
# are, so they are read from the config rather than passed as params: as params, changing a
# mirror would make Snakemake throw away and re-download files that are already verified.
with user_errors(log):
    entry = snakemake.wildcards.entry
    # The catalog adds what does not identify the bytes (file name, instructions).
    source = {**load_catalog(snakemake.config["catalog"])[entry], **snakemake.params.source}
    dest = Path(snakemake.output.file)
    record_fetch(entry, dest, fetch_entry(entry, source, dest, snakemake.config))
