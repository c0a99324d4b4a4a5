"""The product registry is the one place a product is written down: what Snakemake plans for
each product is exactly what the registry declares, and everything derived agrees with it."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from standin.demo import DEMO_PRODUCTS
from vlprep.catalog import load_catalog
from vlprep.products import (
    ANNOTATION_IMAGES,
    ANNOTATION_SOURCES,
    BUNDLES,
    COMPANIONS,
    IMAGE_CHECKS,
    LINKED_DIRS,
    PRODUCTS,
    URL_LISTS,
    sources_of,
)

REPO = Path(__file__).resolve().parents[2]
CATALOG = load_catalog(REPO / "config" / "catalog.yaml")
FETCH_JOB = re.compile(r"^(?:local)?rule (fetch_file|fetch_hub):$")


def planned_fetches(target: str, data_root: Path) -> set[str]:
    """The catalog entries a dry run of `target` would download (no network is touched)."""
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", target, "--config", f"data_root={data_root}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    entries, in_fetch = set(), False
    for line in result.stdout.splitlines():
        if FETCH_JOB.match(line):
            in_fetch = True
        elif in_fetch and (match := re.match(r"\s+wildcards: entry=(\w+)", line)):
            entries.add(match.group(1))
            in_fetch = False
    return entries


@pytest.mark.slow
@pytest.mark.parametrize("product", list(PRODUCTS))
def test_the_dag_fetches_exactly_what_the_product_declares(product, tmp_path):
    """Both ways: nothing planned that the registry does not declare (preflight would not
    count it), nothing declared that the DAG does not fetch (preflight would overcount).
    The product's manual files are put in manual_dir first (empty: a dry run reads none), as
    without them the run stops before planning, naming them."""
    manual = tmp_path / "data" / "manual"
    manual.mkdir(parents=True)
    for entry in sources_of(product):
        if CATALOG[entry]["kind"] == "manual":
            (manual / CATALOG[entry]["filename"]).touch()
    assert planned_fetches(product, tmp_path / "data") == sources_of(product)


def test_bundles_and_the_demo_come_from_the_registry():
    assert set(BUNDLES) == {"g3m", "cosmos", "minigpt4", "lavis", "glamm"}
    # every product is in its bundles, but an opt-in one (built only by name or `all`)
    in_bundles = {name for members in BUNDLES.values() for name in members}
    assert in_bundles == {name for name, p in PRODUCTS.items() if not p.opt_in}
    for name, product in PRODUCTS.items():
        assert all((name in BUNDLES[b]) != product.opt_in for b in product.bundles)
    assert set(DEMO_PRODUCTS) == {name for name, p in PRODUCTS.items() if p.demo}


def test_config_yaml_lists_every_product_with_its_default():
    listed = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["products"]
    assert listed == {name: product.in_all for name, product in PRODUCTS.items()}


def test_every_declared_source_is_in_the_catalog():
    for name in PRODUCTS:
        assert sources_of(name) <= CATALOG.keys(), name
    for path, (_, entry, *_) in ANNOTATION_SOURCES.items():
        assert entry in CATALOG, path
    for check, (kind, where, *_) in IMAGE_CHECKS.items():
        assert kind == "layout" or where in CATALOG or where == "vg_images", check
    for path, (_, entry, _) in LINKED_DIRS.items():
        assert entry in CATALOG or entry == "vg_images", path


def test_tables_refer_to_each_other():
    for path, refs in ANNOTATION_IMAGES.items():
        assert path in ANNOTATION_SOURCES
        assert set(refs.folders.values()) <= IMAGE_CHECKS.keys(), path
    for path, (follows, _, id_field) in COMPANIONS.items():
        assert path in ANNOTATION_SOURCES and ANNOTATION_IMAGES[follows].id_field == id_field
    for name, url_list in URL_LISTS.items():
        owners = [p for p, product in PRODUCTS.items() if name in product.url_lists]
        assert owners, f"URL list {name} belongs to no product"
        assert all(url_list.source in PRODUCTS[p].entries for p in owners), name
    # every lavis/ file a product declares is made by one of the tables' rules
    lavis_files = {
        path.removeprefix("{lavis}/")
        for product in PRODUCTS.values()
        for path in product.files
        if path.startswith("{lavis}/") and path.endswith(".json")
    }
    assert lavis_files == set(ANNOTATION_SOURCES)


def test_a_product_not_asked_for_costs_nothing_at_parse_time(tmp_path):
    """URL-list parts are planned only when a rule asks for them: a setting that cannot be
    planned (rows_per_part not a multiple of the shard size) stops only the products that use
    it, with a message naming the key, where it used to break every run while parsing."""
    bad = 'url_lists={"laion115m": {"rows_per_part": 3}}'

    def run(target: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "snakemake", "-n", target, "--config", f"data_root={tmp_path}"]
        return subprocess.run([*cmd, bad], cwd=REPO, capture_output=True, text=True, timeout=300)

    assert run("coco_valid").returncode == 0, run("coco_valid").stderr[-2000:]
    refused = run("laion115m")
    assert refused.returncode != 0
    said = refused.stdout + refused.stderr
    assert "url_lists.laion115m" in said and "multiple" in said


def test_every_consumer_check_a_product_names_exists():
    from vlprep.consumers import CHECKS

    for name, product in PRODUCTS.items():
        assert set(product.checks) <= CHECKS.keys(), name
