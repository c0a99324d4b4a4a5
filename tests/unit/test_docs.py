"""The docs say what the code does: README's product table is the registry's, and every
product, check, target and relative link the docs name exists."""

import re
from pathlib import Path

import pytest

from vlprep import docs
from vlprep.catalog import load_catalog
from vlprep.consumers import CHECKS
from vlprep.preflight import human
from vlprep.products import BUNDLES, PRODUCTS, URL_LISTS

REPO = Path(__file__).resolve().parents[2]
PAGES = sorted((REPO / "docs").rglob("*.md"))
DOCUMENTS = [REPO / "README.md", REPO / "config" / "README.md", *PAGES]
CATALOG = load_catalog(REPO / "config" / "catalog.yaml")


def test_readme_product_table_is_the_registry_s():
    assert docs.current_table() == docs.product_table(), (
        f"README.md's product table is not what the registry gives: run `{docs.WRITE}`"
    )


def test_every_product_has_one_row_with_its_consumer_page():
    rows = [line for line in docs.product_table().splitlines() if line.startswith("| `")]
    named = [re.match(r"\| `(\w+)`", row).group(1) for row in rows]
    assert named == list(PRODUCTS)
    for row, name in zip(rows, named, strict=True):
        for check in PRODUCTS[name].checks:
            assert f"({docs.CONSUMERS[check][1]})" in row, (name, check)


def test_sizes_are_the_catalog_s():
    """coco_valid downloads two files of exact size: the row says their sum, without `~`;
    flickr30k has an approx_size: marked; cc3m is a hub repo: sized by preflight."""
    table = {
        re.match(r"\| `(\w+)`", line).group(1): line.split(" | ")
        for line in docs.product_table().splitlines()
        if line.startswith("| `")
    }
    exact = CATALOG["coco2017_val"]["size"] + CATALOG["coco2017_annotations"]["size"]
    assert table["coco_valid"][3] == human(exact)
    assert table["flickr30k"][3].startswith("~")
    assert "preflight sizes them" in table["cc3m"][3]
    rows = CATALOG[URL_LISTS["laion115m"].source]["rows"]
    assert f"images crawled from {rows:,} URLs" in table["laion115m"][3]


def test_credentials_say_token_hand_and_drive():
    catalog = {
        "gated": {"kind": "hf", "gated": True, "repo": "org/set"},
        "by_hand": {
            "kind": "manual",
            "filename": "a.zip",
            "instructions": "Register at https://example.org/signup, then download a.zip",
        },
        "drive": {"kind": "gdrive", "filename": "d.zip"},
        "plain": {"kind": "http"},
    }
    said = docs._route_credentials(["gated", "by_hand", "drive", "plain"], catalog)
    assert "`HF_TOKEN`, terms accepted at https://huggingface.co/datasets/org/set" in said
    assert "`a.zip` (register at https://example.org/signup)" in said
    assert "`d.zip` by hand if Drive refuses it" in said
    assert docs._route_credentials(["plain"], catalog) == "none"
    assert docs._route_credentials(["drive"], catalog).startswith("none; ")


def test_write_table_replaces_only_between_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n\n{docs.BEGIN}\n| stale |\n{docs.END}\n\nafter\n")
    assert docs.write_table(readme, table=f"{docs.BEGIN}\n| new |\n{docs.END}\n")
    assert (
        readme.read_text() == f"# title\n\nbefore\n\n{docs.BEGIN}\n| new |\n{docs.END}\n\nafter\n"
    )
    assert not docs.write_table(readme, table=f"{docs.BEGIN}\n| new |\n{docs.END}\n")


def test_readme_without_markers_says_where_and_what_to_run(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# no table here\n")
    with pytest.raises(SystemExit) as err:
        docs.current_table(readme)
    assert str(readme) in str(err.value) and docs.WRITE in str(err.value)


def test_check_command_fails_on_a_stale_table(tmp_path, monkeypatch, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"{docs.BEGIN}\n| stale |\n{docs.END}\n")
    monkeypatch.setattr(docs, "README", readme)
    assert docs.main(["--check"]) == 1
    assert docs.WRITE in capsys.readouterr().out
    assert docs.main(["--write"]) == 0
    assert docs.main(["--check"]) == 0


# ---- the docs name only what exists --------------------------------------------------------


def _targets() -> set[str]:
    """Every target a user can name: products, bundles, retry targets, rules without wildcards."""
    rules = set()
    for smk in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]:
        rules |= set(re.findall(r"^(?:local)?rule (\w+):", smk.read_text(), re.MULTILINE))
    retries = {f"{name}_retry_failed" for name, u in URL_LISTS.items() if u.retry_target}
    return set(PRODUCTS) | set(BUNDLES) | {"all"} | retries | rules


CONSUMER_CHECK = re.compile(r"python -m vlprep\.consumers (\w+) (\S+)((?: [\w.<>]+)*)")
SNAKEMAKE_TARGET = re.compile(r"`snakemake (?:-n )?([a-z]\w*)")


def test_pages_exist_for_every_consumer():
    assert {Path(page).name for _, page in docs.CONSUMERS.values()} <= {p.name for p in PAGES}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_consumer_page_names_every_product_of_its_check(page):
    """A consumer's page lists every product its check covers (and only real ones)."""
    checks = [c for c, (_, p) in docs.CONSUMERS.items() if Path(p).name == page.name]
    text = page.read_text()
    for check in checks:
        for name, product in PRODUCTS.items():
            if check in product.checks:
                assert f"`{name}`" in text, f"{page.name} does not name {name}"


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_named_checks_products_and_targets_exist(path):
    text = path.read_text()
    for layout, _root, products in CONSUMER_CHECK.findall(text):
        assert layout in CHECKS, f"{path.name}: no check `{layout}` in vlprep.consumers"
        for product in products.split():
            if product in {"...", "<root>"} or product.startswith("<"):
                continue
            assert product in PRODUCTS, f"{path.name}: `{product}` is not a product"
    targets = _targets()
    for target in SNAKEMAKE_TARGET.findall(text):
        assert target in targets, f"{path.name}: `snakemake {target}`: no such target"


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors of a document's headings."""
    slugs = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        slugs.add(slug)
    return slugs


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(path):
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)
    for link in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://|mailto:", link):
            continue
        target, _, anchor = link.partition("#")
        file = (path.parent / target).resolve() if target else path
        assert file.exists(), f"{path.relative_to(REPO)}: link {link} goes nowhere"
        if anchor and file.suffix == ".md":
            assert anchor in _anchors(file.read_text()), f"{path.name}: no heading for #{anchor}"
