"""Snakemake adapter: cc_sbu_align's filter_cap.json as the JSON list VPGTrans reads."""

from vlprep.annotations import annotations_as_list
from vlprep.log import setup_logging, user_errors

log = setup_logging(snakemake.log[0])
with user_errors(log):
    annotations_as_list(snakemake.params.source, snakemake.output.annotations)
