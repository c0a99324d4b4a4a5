"""Snakemake adapter: annotations (LAVIS sbu.json, NoCaps) -> a URL list with file names."""

from pathlib import Path

from vlprep.log import setup_logging, user_errors
from vlprep.named import annotations_to_url_list

log = setup_logging(snakemake.log[0])
with user_errors(log):
    rows = annotations_to_url_list(
        Path(snakemake.input.annotations), Path(snakemake.output.urls), kind=snakemake.params.kind
    )
    log.info("%s: %d rows", snakemake.output.urls, rows)
