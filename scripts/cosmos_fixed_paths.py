"""Snakemake adapter: point COSMOS's hard-coded roots at the layout (vlprep.cosmos_paths)."""

from pathlib import Path

from vlprep.atomic import staged
from vlprep.cosmos_paths import fixed_paths
from vlprep.log import setup_logging, user_errors

log = setup_logging(snakemake.log[0])
with user_errors(log):
    lines = fixed_paths(
        snakemake.params.settings, snakemake.params.mmseg, snakemake.params.classification
    )
    for line in lines:
        log.info(line)
    with staged(snakemake.output.report) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
