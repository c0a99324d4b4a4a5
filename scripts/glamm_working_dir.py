"""Snakemake adapter: GLaMM's working-directory links in a checkout (vlprep.glamm)."""

from pathlib import Path

from vlprep.atomic import staged
from vlprep.consumers import check_glamm_working_dir
from vlprep.errors import VlprepError
from vlprep.glamm import working_dir_links
from vlprep.log import setup_logging, user_errors

log = setup_logging(snakemake.log[0])
with user_errors(log):
    checkout = snakemake.params.checkout
    if not checkout:
        raise VlprepError("glamm_working_dir: set glamm.checkout in the config to your GLaMM clone")
    # the layout root, from the first of its working-directory folders (coco_2017/train2017)
    glamm = Path(snakemake.input.folders[0]).parents[1]
    lines = working_dir_links(checkout, glamm)
    problems = check_glamm_working_dir(checkout)
    if problems:
        raise VlprepError("GLaMM's working-directory folders:\n" + "\n".join(problems))
    for line in lines:
        log.info(line)
    with staged(snakemake.output.report) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
