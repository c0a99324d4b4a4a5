"""Snakemake adapter: unpack one downloaded archive into the store, safely and atomically."""

from pathlib import Path

from vlprep.catalog import load_catalog
from vlprep.extract import Nested
from vlprep.log import setup_logging, user_errors
from vlprep.sources import extract_download

log = setup_logging(snakemake.log[0])
# The catalog's checksum and manual_dir decide what a broken archive means (see
# vlprep.sources.bad_archive); a hub entry's `archive_file` and an archive's `nested` members
# are read from its entry too. Not params: Snakemake reruns a job whose params gained a key,
# even one worth None, so a new param would rerun every finished extraction.
with user_errors(log):
    entry = snakemake.wildcards.entry
    source = load_catalog(snakemake.config["catalog"])[entry]
    extract_download(
        entry,
        Path(snakemake.input.archive),
        Path(snakemake.output.tree),
        source,
        Path(snakemake.config["manual_dir"]),
        kind=snakemake.params.kind,
        declared_size=snakemake.params.size,
        max_ratio=snakemake.params.max_ratio,
        nested=[Nested(n["member"], n["archive"]) for n in source.get("nested") or ()],
    )
