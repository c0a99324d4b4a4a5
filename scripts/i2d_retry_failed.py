"""Snakemake adapter: download again only the rows that failed, into a separate folder."""

import json
from pathlib import Path

from vlprep.i2d import retry_failed
from vlprep.log import setup_logging, user_errors

log = setup_logging(snakemake.log[0])
with user_errors(log):
    report = retry_failed(
        Path(snakemake.input.shards),
        Path(snakemake.output.retry),
        i2d_args=snakemake.params.i2d,
        processes=snakemake.params.processes,
        threads=snakemake.params.threads,
        log_file=snakemake.log[0],
    )
    summary = {key: value for key, value in report.items() if key != "stats"}
    log.info("%s retry: %s", snakemake.wildcards.dataset, json.dumps(summary, sort_keys=True))
    Path(snakemake.output.report).write_text(json.dumps(report, indent=1, sort_keys=True))
