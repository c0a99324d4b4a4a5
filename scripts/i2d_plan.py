"""Snakemake adapter: count a URL list's rows once and note where each part starts.

The parts were planned from the catalog's row bound; a list with more rows than that would
leave rows without a part, so it fails here with the number to put in the catalog.
"""

import json
from pathlib import Path

from vlprep.errors import ConversionError
from vlprep.i2d import plan_parts
from vlprep.log import setup_logging, user_errors

log = setup_logging(snakemake.log[0])
with user_errors(log):
    plan = plan_parts(
        Path(snakemake.input.url_list), snakemake.params.format, snakemake.params.rows_per_part
    )
    bound = snakemake.params.planned_rows
    log.info("%s: %d rows in %d parts", snakemake.wildcards.dataset, plan["rows"], plan["parts"])
    if plan["rows"] > bound and not snakemake.params.capped:
        raise ConversionError(
            f"{snakemake.input.url_list} has {plan['rows']} rows, more than the {bound} the "
            f"download parts were planned for; raise `rows` of the catalog entry to {plan['rows']}"
        )
    Path(snakemake.output.plan).write_text(json.dumps(plan))
