"""Snakemake adapter: an annotation file, keeping the records whose image its consumer opens."""

import json
from pathlib import Path

from vlprep.annotations import filter_by_images
from vlprep.atomic import staged
from vlprep.log import setup_logging, user_errors
from vlprep.products import ANNOTATION_IMAGES

log = setup_logging(snakemake.log[0])
with user_errors(log):
    path = snakemake.wildcards.path
    layout_root = snakemake.output.annotation[: -len(path)]  # the output is <layout>/<path>
    checks = {
        name: json.loads(Path(path).read_text()) for name, path in snakemake.params.checks.items()
    }
    report = filter_by_images(
        snakemake.params.source,
        snakemake.output.annotation,
        refs=ANNOTATION_IMAGES[path],
        layout_root=layout_root,
        checks=checks,
        allow_truncated=True,  # VPGTrans sets ImageFile.LOAD_TRUNCATED_IMAGES (vlprep.images)
        link_mode=snakemake.params.link_mode,
    )
    with staged(snakemake.output.report) as tmp:
        tmp.write_text(json.dumps(report, indent=1) + "\n")
