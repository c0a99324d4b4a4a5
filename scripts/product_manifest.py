"""Snakemake adapter: describe one built product in its manifest (vlprep.manifest)."""

from pathlib import Path

from vlprep.catalog import load_catalog
from vlprep.croissant import write_croissant
from vlprep.licenses import write_licenses
from vlprep.log import setup_logging, user_errors
from vlprep.manifest import write_manifest

log = setup_logging(snakemake.log[0])
with user_errors(log):
    plan = snakemake.params.plan
    catalog = load_catalog(snakemake.config["catalog"])
    header = write_manifest(
        snakemake.wildcards.product,
        plan["paths"],
        plan["roots"],
        Path(snakemake.output.header).parent,
        entries=plan["entries"],
        catalog=catalog,
        config=plan["config"],
        workers=snakemake.threads,
    )
    write_croissant(snakemake.output.header)
    # every product built under the roots this one uses, whichever run built them
    for path in write_licenses(Path(snakemake.output.header).parent, header, catalog):
        log.info("rewrote %s", path)
    totals = header["totals"]
    log.info(
        "%s: %d files, %d links, %d folders, %d bytes, %d samples in tars",
        header["product"],
        totals["files"],
        totals["links"],
        totals["dirs"],
        totals["bytes"],
        totals["samples"],
    )
