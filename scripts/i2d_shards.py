"""Snakemake adapter: gather the shards of every part into the folder the consumer reads."""

from pathlib import Path

from vlprep.layout import gather
from vlprep.log import setup_logging, user_errors

log = setup_logging(snakemake.log[0])
with user_errors(log):
    files = [
        path
        for part in sorted(snakemake.input.parts)
        for path in sorted(Path(part).iterdir())
        if path.name != ".snakemake_timestamp"
    ]
    gather(files, snakemake.output.shards, snakemake.params.link_mode)
