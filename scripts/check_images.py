"""Snakemake adapter: decode every image of a folder; report the ones that do not open."""

import json

from vlprep.atomic import staged
from vlprep.images import check_folder
from vlprep.log import setup_logging, user_errors

log = setup_logging(snakemake.log[0])
with user_errors(log):
    report = check_folder(snakemake.params.folder, workers=snakemake.threads)
    with staged(snakemake.output.report) as tmp:
        tmp.write_text(json.dumps(report, indent=1) + "\n")
