"""Snakemake adapter: Visual Genome's two image zips into one flat folder, plus a report."""

import json
from pathlib import Path

from vlprep.atomic import staged
from vlprep.catalog import load_catalog
from vlprep.log import setup_logging, user_errors
from vlprep.sources import flatten_downloads

log = setup_logging(snakemake.log[0])
with user_errors(log):
    # downloads/<entry>/<file>: each zip's catalog entry decides what a broken one means
    # (vlprep.sources.bad_archive); read here, not as params, which would rerun finished work.
    zips = [Path(snakemake.input.part1), Path(snakemake.input.part2)]
    downloads = {path.parent.name: path for path in zips}
    catalog = load_catalog(snakemake.config["catalog"])
    report = flatten_downloads(
        downloads,
        Path(snakemake.output.images),
        {entry: catalog[entry] for entry in downloads},
        Path(snakemake.config["manual_dir"]),
        top_dirs=snakemake.params.top_dirs,
        entry="vg_images",
        declared_sizes=snakemake.params.sizes,
    )
    with staged(snakemake.output.report) as tmp:
        tmp.write_text(json.dumps(report, indent=1) + "\n")
