"""Snakemake adapter: download one part of a URL list with img2dataset."""

import json
from pathlib import Path

from vlprep.atomic import scratch
from vlprep.i2d import run_part, slice_rows
from vlprep.log import setup_logging, user_errors

log = setup_logging(snakemake.log[0])
plan = snakemake.params.plan
out = Path(snakemake.output.part)
# The part's row list lives in scratch beside the part: a killed job's is removed by the rerun.
with user_errors(log), scratch(out, "rows") as tmp:
    part_list = Path(tmp) / f"part.{plan['format']}"
    rows = slice_rows(
        Path(snakemake.input.url_list),
        plan["format"],
        plan["start"],
        plan["stop"],
        part_list,
        plan=json.loads(Path(snakemake.input.plan).read_text()),
    )
    log.info("part %s: rows %d..%d (%d rows)", out.name, plan["start"], plan["stop"], rows)
    run_part(
        part_list,
        out,
        shard_offset=plan["shard_offset"],
        i2d_args=snakemake.params.i2d,
        processes=snakemake.params.processes,
        threads=snakemake.params.threads,
        log_file=snakemake.log[0],
    )
