"""Snakemake adapter: BLIP's LAION JSON -> MiniGPT-4's TSV, streamed in bounded memory."""

from pathlib import Path

from vlprep.laion import convert_json_to_tsv
from vlprep.log import setup_logging, user_errors

log = setup_logging(snakemake.log[0])
with user_errors(log):
    report = convert_json_to_tsv(
        Path(snakemake.input.blip_json),
        Path(snakemake.output.tsv),
        on_error=snakemake.params.on_error,
        workers=snakemake.threads,
    )
    log.info("converted: %s", report)
