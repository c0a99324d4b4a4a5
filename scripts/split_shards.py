"""Snakemake adapter: split a downloaded set of shards into folders by file-name pattern."""

from pathlib import Path

from vlprep.errors import VlprepError
from vlprep.layout import gather
from vlprep.log import setup_logging, user_errors

log = setup_logging(snakemake.log[0])
store = Path(snakemake.input.store)
with user_errors(log):
    for name, pattern in snakemake.params.patterns.items():
        files = sorted(store.glob(pattern))
        if not files:
            raise VlprepError(f"{store}: no file matches {pattern}; the download is incomplete")
        gather(files, snakemake.output[name], snakemake.params.link_mode)
