"""Snakemake adapter: find each part in its unpacked source (vlprep.glamm_refer.locate: inner
layouts are unverified) and place it into glamm/ (symlink, hardlink or copy)."""

from vlprep.glamm_refer import locate
from vlprep.layout import place
from vlprep.log import setup_logging, user_errors

log = setup_logging(snakemake.log[0])
with user_errors(log):
    found = {
        name: locate(store, relative, contains=tuple(contains))
        for name, (store, relative, contains) in snakemake.params.parts.items()
    }
    for name, source in found.items():
        place(source, snakemake.output[name], snakemake.params.link_mode)
