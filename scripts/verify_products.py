"""Snakemake adapter: re-check built products against their manifests, or compare manifests
(vlprep.verify); fails, naming every drift, if anything drifted."""

import io
from contextlib import redirect_stdout

from vlprep.errors import VlprepError
from vlprep.log import setup_logging, user_errors
from vlprep.verify import main

log = setup_logging(snakemake.log[0])
with user_errors(log):
    params = snakemake.params
    if params.compare_with:
        args = ["--compare", params.manifests, params.compare_with]
    else:
        args = ["--manifests", params.manifests, "--workers", str(snakemake.threads)]
        args += ["--full"] if params.mode == "full" else []
    printed = io.StringIO()
    with redirect_stdout(printed):
        status = main(args)
    log.info("vlprep verify %s\n%s", " ".join(args), printed.getvalue().rstrip())
    if status != 0:
        raise VlprepError(
            f"verify: see above (exit status {status}); the log is {snakemake.log[0]}"
        )
