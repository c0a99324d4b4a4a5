"""Snakemake adapter: download one catalog entry, verified, resumable."""

from pathlib import Path

from vlprep.errors import FetchError
from vlprep.fetch import candidate_urls, fetch
from vlprep.log import setup_logging, user_errors

log = setup_logging(snakemake.log[0])
source = snakemake.params.source
# Mirrors and retry settings say where bytes come from, not what they are, so they are read
# from the config rather than passed as params: as params, changing a mirror would make
# Snakemake throw away and re-download files that are already verified.
settings = snakemake.config["fetch"]
urls = candidate_urls(source["url"], snakemake.config.get("mirrors"))
if not settings["try_original"]:
    urls = [url for url in urls if url != source["url"]]
with user_errors(log):
    if not urls:
        raise FetchError(
            f"{snakemake.wildcards.entry}: no mirror matches {source['url']} and "
            "fetch.try_original is false; add a mirror or allow the original URL"
        )
    fetch(
        snakemake.wildcards.entry,
        urls,
        Path(snakemake.output.file),
        size=source["size"],
        sha256=source["sha256"],
        md5=source["md5"],
        retries=settings["retries"],
        timeout=settings["timeout"],
        max_backoff=settings["max_backoff"],
    )
