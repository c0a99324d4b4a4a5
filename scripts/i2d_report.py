"""Snakemake adapter: sum the shards' _stats.json into one report; fail below the floor."""

import json
from pathlib import Path

from vlprep.i2d import check_success, summarize
from vlprep.log import setup_logging, user_errors

log = setup_logging(snakemake.log[0])
with user_errors(log):
    stats = sorted(p for part in snakemake.input.parts for p in Path(part).glob("*_stats.json"))
    report = summarize(stats)
    log.info("%s: %s", snakemake.wildcards.dataset, json.dumps(report, sort_keys=True))
    check_success(report, snakemake.params.floor, snakemake.wildcards.dataset)
    Path(snakemake.output.report).write_text(json.dumps(report, indent=1, sort_keys=True))
