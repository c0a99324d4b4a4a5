"""LICENSES.md at each layout root: what binds the data there, what to cite, what it came from.

Each product's manifest job rewrites the file of every layout root the product's paths use,
from all the manifest headers in the manifests folder (vlprep.manifest), so it lists what every
run built under that root without one product's target depending on another's. Per product:
the licence or terms, the citation (BibTeX where the catalog has it), the source URLs and the
revision or checksum the data was built from; registration-only files (`kind: manual`) and gated
hub repositories say where their terms are accepted.

The header is the record of what was built (licence, citation, URLs, checksums, what each
download recorded); the catalog adds only what the header does not keep (BibTeX, gated, a manual
file's instructions, a Drive id). The text holds no path, date or host, and products and sources
come in a fixed order, so two builds of the same data write the same bytes. Consumers open fixed
sub-paths of their roots (none lists a root), so one Markdown file there reaches no loader.
"""

import fcntl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vlprep.atomic import staged
from vlprep.products.base import LAYOUTS

FILENAME = "LICENSES.md"
# Beside the manifests (never in a layout): serializes the manifest jobs that rewrite one file.
LOCK_NAME = ".licenses.lock"

PREAMBLE = """\
# Licences of the data in this folder

vlprep rewrites this file each time it builds a product here, from the product manifests
(`<data_root>/manifests/<product>.json`). For each product: the licence or terms that bind its
data, what to cite, and the sources it was built from, each with the revision or checksum used.
Images crawled from the web belong to their owners.
"""


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on `folder`'s lock file (flock; held until the block ends)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_NAME, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def headers_under(manifests: str | Path, layout: str, root: str | Path) -> list[dict[str, Any]]:
    """The manifest headers of the products with paths under `root` (as layout `layout`), by
    product name. A header being replaced or not a vlprep manifest is skipped: verify says it."""
    from vlprep.manifest import ManifestError, read_header

    root = str(Path(root).resolve())
    found = []
    for path in sorted(Path(manifests).glob("*.json")):
        if path.name.endswith(".croissant.json"):
            continue
        try:
            header = read_header(path)
        except ManifestError:
            continue
        if header.get("roots", {}).get(layout) == root:
            found.append(header)
    return sorted(found, key=lambda header: header["product"])


def _hub_page(repo: str, repo_type: str | None) -> str:
    kind = "" if repo_type == "model" else "datasets/"
    return f"https://huggingface.co/{kind}{repo}"


def source_line(entry: str, record: dict[str, Any], catalog_entry: dict[str, Any]) -> str:
    """One source of a product: where it comes from and the revision or checksum used."""
    pinned = record.get("catalog") or {}
    recorded = record.get("recorded") or {}
    kind = pinned.get("kind") or catalog_entry.get("kind")
    if kind == "hf":
        revision = recorded.get("sha") or pinned.get("revision") or "unknown"
        where = f"{_hub_page(pinned.get('repo', '?'), pinned.get('repo_type'))}"
        return f"- `{entry}`: {where}, revision `{revision}`"
    if pinned.get("url"):
        where = pinned["url"]
    elif catalog_entry.get("drive_id"):
        where = f"https://drive.google.com/file/d/{catalog_entry['drive_id']}/view"
    elif kind == "manual":
        where = f"`{pinned.get('filename', entry)}`, downloaded by hand"
    else:
        where = "(no URL recorded)"
    for name in ("sha256", "sha1", "md5"):
        if pinned.get(name):
            return f"- `{entry}`: {where}, {name} `{pinned[name]}` (the catalog's)"
        if recorded.get(name):
            return f"- `{entry}`: {where}, {name} `{recorded[name]}` (recorded at first download)"
    return f"- `{entry}`: {where}, no checksum (none published, none recorded yet)"


def terms_line(record: dict[str, Any], catalog_entry: dict[str, Any]) -> str | None:
    """Where a gated or registration-only source's terms are accepted, or None."""
    pinned = record.get("catalog") or {}
    kind = pinned.get("kind") or catalog_entry.get("kind")
    if kind == "hf" and catalog_entry.get("gated"):
        page = _hub_page(pinned.get("repo", "?"), pinned.get("repo_type"))
        return (
            f"Gated: accept the terms at {page} (logged in), then set HF_TOKEN to a read token "
            "of that account."
        )
    if kind == "manual":
        how = " ".join(str(catalog_entry.get("instructions", "")).split())
        return f"Registration or download by hand: {how}" if how else "Download by hand."
    return None


def product_section(header: dict[str, Any], catalog: dict[str, dict]) -> list[str]:
    """The lines of one product: its sources grouped by licence, citation and terms."""
    groups: dict[tuple, list[str]] = {}
    for entry, record in header.get("sources", {}).items():
        catalog_entry = catalog.get(entry, {})
        key = (
            record.get("license") or catalog_entry.get("license") or "not stated in the catalog",
            record.get("citation") or catalog_entry.get("citation") or "",
            (catalog_entry.get("bibtex") or "").strip(),
            terms_line(record, catalog_entry),
        )
        groups.setdefault(key, []).append(source_line(entry, record, catalog_entry))
    lines = [f"## {header['product']}", ""]
    if not groups:
        lines += ["No catalog source recorded in its manifest.", ""]
    for (license_text, citation, bibtex, terms), sources in groups.items():
        lines.append(f"Licence: {' '.join(license_text.split())}")
        if terms:
            lines.append(f"Terms: {terms}")
        if citation:
            lines.append(f"Cite: {' '.join(citation.split())}")
        lines.append("")
        if bibtex:
            lines += ["```bibtex", bibtex, "```", ""]
        lines += ["Sources:", "", *sources, ""]
    return lines


def render(headers: Iterable[dict[str, Any]], catalog: dict[str, dict]) -> str:
    """The text of one root's LICENSES.md, listing the products of `headers`."""
    headers = list(headers)
    lines = [PREAMBLE]
    names = ", ".join(header["product"] for header in headers)
    lines += [f"Products: {names or 'none yet'}", ""]
    for header in headers:
        lines += product_section(header, catalog)
    return "\n".join(lines).rstrip() + "\n"


def write_licenses(
    manifests: str | Path, header: dict[str, Any], catalog: dict[str, dict]
) -> list[Path]:
    """Rewrite LICENSES.md at each layout root `header`'s product uses, from every manifest
    header in `manifests`; return the files that changed. Under a lock, so the last of several
    manifest jobs sees every header written before it; a file is replaced only when its text
    changes (its mtime says when a product last changed it)."""
    manifests = Path(manifests)
    changed = []
    with _locked(manifests):
        for layout in LAYOUTS:
            root = header.get("roots", {}).get(layout)
            if root is None:
                continue
            text = render(headers_under(manifests, layout, root), catalog)
            path = Path(root) / FILENAME
            try:
                if path.read_text(encoding="utf-8") == text:
                    continue
            except OSError:
                pass
            with staged(path) as tmp:
                tmp.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed
