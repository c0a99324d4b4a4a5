"""vlprep: download and prepare vision-language datasets into the trees their consumers open.

The Snakemake rules are thin; every step they run lives in this package so that it can be
imported by `script:` adapters (Snakemake appends `scripts/` to `sys.path`) and by the tests.
"""

__version__ = "0.1.0"
