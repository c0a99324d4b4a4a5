"""Snakemake adapter: VQA's official questions/answers without what its eval file dropped."""

import json
from pathlib import Path

from vlprep.annotations import filter_by_ids
from vlprep.log import setup_logging, user_errors

log = setup_logging(snakemake.log[0])
with user_errors(log):
    companion = snakemake.params.companion
    dropped = json.loads(Path(snakemake.input.report).read_text())["dropped_ids"]
    filter_by_ids(
        companion["source"],
        snakemake.output.annotation,
        list_key=companion["list_key"],
        id_field=companion["id_field"],
        dropped=dropped,
        link_mode=snakemake.params.link_mode,
    )
