"""Snakemake adapter: Visual Genome's two image zips into one flat folder, plus a report."""

import json
from pathlib import Path

from vlprep.atomic import staged
from vlprep.flatten import flatten_archives
from vlprep.log import setup_logging, user_errors

log = setup_logging(snakemake.log[0])
with user_errors(log):
    report = flatten_archives(
        [Path(snakemake.input.part1), Path(snakemake.input.part2)],
        Path(snakemake.output.images),
        top_dirs=snakemake.params.top_dirs,
        entry="vg_images",
        declared_sizes=snakemake.params.sizes,
    )
    with staged(snakemake.output.report) as tmp:
        tmp.write_text(json.dumps(report, indent=1) + "\n")
