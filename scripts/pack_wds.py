"""Snakemake adapter: img2dataset files output -> sorted, reproducible webdataset tars."""

from pathlib import Path

from vlprep.log import setup_logging, user_errors
from vlprep.named import pack_webdataset

log = setup_logging(snakemake.log[0])
with user_errors(log):
    report = pack_webdataset(
        [Path(p) for p in snakemake.input.parts],
        Path(snakemake.output.tars),
        samples_per_tar=snakemake.params.samples_per_tar,
    )
    log.info("packed: %s", report)
