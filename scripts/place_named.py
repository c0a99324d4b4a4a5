"""Snakemake adapter: a flat folder of downloaded images under the names consumers open."""

from pathlib import Path

from vlprep.log import setup_logging, user_errors
from vlprep.named import place_by_name

log = setup_logging(snakemake.log[0])
with user_errors(log):
    report = place_by_name(
        [Path(p) for p in snakemake.input.parts],
        Path(snakemake.output.images),
        link_mode=snakemake.params.link_mode,
    )
    log.info("placed: %s", report)
