# vlprep: `make demo` builds everything against the stand-in world; `make test` runs the tests.
# Both set up what they need first: a venv in .venv/ with pinned packages, graphviz, and (for
# the tests, as root) a single-node SLURM and the headless chromium from Debian's packages.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)/scripts
# img2dataset's dependencies phone home on import; the stand-in world is offline.
export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: setup system-deps loaders demo test lint bench kill-trials clean-demo

setup: $(INSTALLED) system-deps

$(INSTALLED): requirements.txt requirements-dev.txt scripts/standin/requirements.txt constraints.txt
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 11) <= v < (3, 13) else "vlprep needs Python 3.11 or 3.12 (found %d.%d); set PYTHON=python3.11" % v)'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	@touch $@

# graphviz draws the DAG (`--dag | dot -Tsvg`); unzip is the VG flattening bench's baseline;
# aria2 (aria2c) and curl are the ranged-download bench's. Installed with apt when we are root.
system-deps:
	@command -v dot >/dev/null && command -v unzip >/dev/null && command -v aria2c >/dev/null && command -v curl >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq --no-install-recommends graphviz unzip aria2 curl >/dev/null) || echo "note: graphviz/unzip/aria2/curl not installed (needs root); only DAG drawing and make bench need them"; }

# The consumers' loaders (torchvision, mmsegmentation) that the tests open built trees with, in
# their own venv: torch is gigabytes that the workflow and `make demo` never import.
LOADERS_VENV := .venv-loaders
LOADERS := $(LOADERS_VENV)/.installed

loaders: $(LOADERS)

$(LOADERS): tests/loaders/requirements.txt tests/loaders/constraints.txt
	$(PYTHON) -m venv $(LOADERS_VENV)
	$(LOADERS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r tests/loaders/requirements.txt -c tests/loaders/constraints.txt
	@touch $@

demo: setup
	$(PY) -m standin.demo

lint: setup
	$(VENV)/bin/snakefmt --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/snakemake --lint

test: setup loaders
	@[ "$$(id -u)" != 0 ] || bash .ci/install_slurm.sh
	@[ "$$(id -u)" != 0 ] || bash .ci/install_browser.sh || echo "note: chromium not installed; the browser tests (tests/browser/) will skip"
	$(MAKE) --no-print-directory lint
	$(VENV)/bin/pytest

# Each benchmark exits 1 when it misses a target. All of them run even after a miss, so every
# ratio is shown; then the recipe fails, naming those that missed (or crashed).
bench: setup
	@failed=""; \
	run() { echo "$$*"; "$$@" || failed="$$failed $$2"; }; \
	run $(PY) bench/bench_coco_wds.py; \
	run $(PY) bench/bench_fetch.py; \
	run $(PY) bench/bench_ranged.py; \
	run $(PY) bench/bench_laion_tsv.py --sizes 300,3000; \
	run $(PY) bench/bench_i2d.py; \
	run $(PY) bench/bench_i2d_workflow.py --rows 80000 --parts 2 --repeat 2; \
	run $(PY) bench/bench_vg_flatten.py; \
	run $(PY) bench/bench_coco_stuff.py; \
	run $(PY) bench/bench_verify.py; \
	run $(PY) bench/bench_report.py; \
	[ -z "$$failed" ] || { echo "make bench: missed a target or failed:$$failed" >&2; exit 1; }

# SIGKILL the demo's workflow at 20 random moments; each rerun must finish by itself with the
# clean run's tree (tests/reliability/kill_trials.py; ~1 min per trial, not part of `make test`).
kill-trials: setup
	$(PY) tests/reliability/kill_trials.py

clean-demo:
	rm -rf demo-data
