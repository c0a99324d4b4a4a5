"""Snakemake adapter: the readiness report before a long run (prints it; fails on blockers)."""

from pathlib import Path

from vlprep.errors import VlprepError
from vlprep.log import setup_logging, user_errors
from vlprep.preflight import Preflight, render, write_report

log = setup_logging(snakemake.log[0])
with user_errors(log):
    plan = snakemake.params.plan
    config = snakemake.config
    http = {"mirrors": config["mirrors"], "try_original": config["fetch"]["try_original"]}
    gdrive = {"proxy": config["gdrive"]["proxy"], "ca_bundle": config["gdrive"]["ca_bundle"]}
    report = Preflight(plan, config["catalog"], config["hf_endpoint"], http, gdrive).run()
    write_report(report, Path(snakemake.params.report))
    enabled = [name for name, product in plan["products"].items() if product["enabled"]]
    text = render(report, enabled)
    log.info("preflight report (%s):\n%s", snakemake.params.report, text)
    if report["problems"]:
        raise VlprepError(f"preflight: {len(report['problems'])} problem(s); see above")
