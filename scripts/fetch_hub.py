"""Snakemake adapter: download the files of a Hugging Face Hub entry at its revision."""

from pathlib import Path

from vlprep.hub import hub_fetch
from vlprep.log import setup_logging, user_errors

log = setup_logging(snakemake.log[0])
source = snakemake.params.source
# The endpoint says where bytes come from, not what they are: read from the config so that
# switching to a mirror endpoint never discards a verified download.
with user_errors(log):
    hub_fetch(
        snakemake.wildcards.entry,
        source["repo"],
        source["repo_type"],
        source["revision"],
        source["include"],
        Path(snakemake.output.tree),
        endpoint=snakemake.config.get("hf_endpoint"),
        expected_files=source["files"],
        retries=snakemake.config["fetch"]["retries"],
        max_backoff=snakemake.config["fetch"]["max_backoff"],
        connections=snakemake.config["fetch"]["connections"],
    )
