"""Snakemake adapter: one product's piece of the data report (vlprep.report)."""

from vlprep.log import setup_logging, user_errors
from vlprep.report import write_report

log = setup_logging(snakemake.log[0])
with user_errors(log):
    counts = write_report(
        snakemake.input.header,
        snakemake.params.roots,
        snakemake.output.summary,
        snakemake.output.samples,
    )
    log.info(
        "%s: report piece written (%s)",
        snakemake.wildcards.product,
        ", ".join(f"{what} {n:,}" for what, n in counts.items()),
    )
