"""A product's piece of the data report: what was built, how much of it, what was left out and
why, where it came from and under which terms, and what it looks like.

Rule `product_report` writes two files per product under `<data_root>/reports/products/<product>/`,
flagged for Snakemake's own report (`snakemake --report report.html <targets>`), which files them
under the product's layout and name:

* `summary.html`: one self-contained page (no script, nothing loaded from anywhere): files,
  bytes, tar samples, images and annotation records; what was filtered and why, and for URL-list
  sets img2dataset's success rate and failures by reason, as a table and a bar chart drawn here
  in SVG; every source with what the catalog pins and the checksums its download recorded; the
  licences and citations; the config keys that shaped the product.
* `samples.jpg`: a grid of thumbnails with their captions, labels or masks (vlprep.samples).

Both come from the manifest header (vlprep.manifest: counts, reports, sources; small whatever
the product's size) and a bounded sample of the product's files, so a 2 TB product's piece
takes as long as the demo's. Neither says when or where it was built (no clock, no data root,
no download URL): a tree moved or rebuilt elsewhere reports the same.
"""

from collections.abc import Callable, Iterable
from html import escape
from pathlib import Path
from typing import Any

from vlprep.atomic import staged
from vlprep.manifest import read_header
from vlprep.preflight import human
from vlprep.products import PRODUCTS

SUMMARY = "summary.html"
GRID = "samples.jpg"
# Suffixes (as vlprep.manifest tallies them) that are images, and annotation records.
IMAGE_KINDS = frozenset({"jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"})
RECORD_KINDS = frozenset({"json", "jsonl", "tsv", "csv", "parquet"})
# How many of a hub entry's recorded files a summary lists before saying how many more.
LISTED_FILES = 20
CHECKSUMS = ("sha256", "sha1", "md5")
# Who opens each layout.
CONSUMERS = {
    "g3m": "nxtp",
    "cosmos": "COSMOS",
    "lavis": "LAVIS/VPGTrans",
    "minigpt4": "MiniGPT-4",
    "glamm": "GLaMM",
}

DrawGrid = Callable[[str, dict[str, str], Path], list[str]]


def layout_of(product: str) -> str:
    """The layout a product is filed under in the report: its first bundle."""
    return PRODUCTS[product].bundles[0]


def report_files(folder: str | Path, product: str) -> tuple[Path, Path]:
    """The summary and the sample grid of `product`'s piece under `folder`."""
    return Path(folder, product, SUMMARY), Path(folder, product, GRID)


# ---- what a header says -------------------------------------------------------------------


def holdings(header: dict[str, Any]) -> dict[str, int]:
    """Headline counts of a product: tars and their samples, images, annotation records.

    From the header's tally by suffix (`kinds`); a header written before it had one gives
    only what its totals have."""
    totals = header["totals"]
    found = {
        "files": totals["files"],
        "links": totals["links"],
        "folders": totals["dirs"],
        "bytes": totals["bytes"],
        "tar samples": totals["samples"],
    }
    kinds = header.get("kinds")
    if kinds is None:
        return found
    found["tars"] = kinds.get("tar", {}).get("files", 0)
    found["images"] = sum(k["files"] for name, k in kinds.items() if name in IMAGE_KINDS)
    found["annotation records"] = sum(
        k.get("records", 0) for name, k in kinds.items() if name in RECORD_KINDS
    )
    return found


def crawls(header: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The header's image-crawl reports (img2dataset's, summed over a URL list's shards)."""
    return {name: r for name, r in sorted(header["filtered"].items()) if "attempted" in r}


def annotation_reports(header: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The header's annotation-file reports: records kept and dropped, by reason."""
    return {name: r for name, r in sorted(header["filtered"].items()) if "dropped" in r}


def failures(crawl: dict[str, Any]) -> dict[str, int]:
    """A crawl's failed rows by reason, most first (ties by name); a crawl that recorded no
    reasons has its download and resize failures."""
    reasons = crawl.get("failed_by_kind") or {
        "failed to download": crawl.get("failed_to_download", 0),
        "failed to resize": crawl.get("failed_to_resize", 0),
    }
    return dict(sorted(((k, v) for k, v in reasons.items() if v), key=lambda kv: (-kv[1], kv[0])))


# ---- HTML pieces --------------------------------------------------------------------------


def table(head: Iterable[str], rows: Iterable[Iterable[Any]], numeric: Iterable[int] = ()) -> str:
    """An HTML table, every cell escaped; columns in `numeric` right-aligned."""
    right = set(numeric)

    def cell(tag: str, i: int, value: Any) -> str:
        text = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value
        align = ' class="n"' if i in right else ""
        return f"<{tag}{align}>{escape(str(text))}</{tag}>"

    head = list(head)
    lines = ["<table>"]
    if any(head):  # a table of name/value rows has no header
        lines.append("<tr>" + "".join(cell("th", i, h) for i, h in enumerate(head)) + "</tr>")
    for row in rows:
        lines.append("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def bar_chart(counts: dict[str, int], title: str, *, width: int = 720) -> str:
    """A horizontal bar chart of `counts` as inline SVG: one bar per label, in order, the
    label left (cut to fit; whole in its tooltip), the count right. Longest bar: the largest."""
    row, label_width, number_width = 22, 300, 70
    bar_room = width - label_width - number_width
    top = max(counts.values(), default=0) or 1
    height = row * len(counts) + 8
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, count) in enumerate(counts.items()):
        y = 4 + i * row
        shown = label if len(label) <= 45 else label[:44] + "\u2026"
        length = max(1, round(bar_room * count / top)) if count else 0
        colour = "#3a7d44" if label == "succeeded" else "#b5483b"
        parts += [
            f"<g><title>{escape(label)}: {count:,}</title>",
            f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end">{escape(shown)}</text>',
            f'<rect x="{label_width}" y="{y + 3}" width="{length}" height="{row - 6}" '
            f'fill="{colour}"/>',
            f'<text x="{label_width + length + 4}" y="{y + 15}">{count:,}</text></g>',
        ]
    parts.append("</svg>")
    return "\n".join(parts)


STYLE = """
body { font-family: sans-serif; margin: 1em 2em; color: #222; max-width: 60em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.6em; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
code, .hash { font-family: monospace; font-size: 0.9em; word-break: break-all; }
.warn { color: #9b2c1f; font-weight: bold; }
.about { color: #555; margin-top: 0; }
"""


def _holdings_section(header: dict[str, Any]) -> list[str]:
    rows: list[tuple[str, Any]] = [
        (what, f"{human(n)} ({n:,} B)" if what == "bytes" and n >= 1000 else n)
        for what, n in holdings(header).items()
    ]
    out = ["<h2>What it holds</h2>", table(("", "count"), rows, numeric=(1,))]
    if "annotation records" in dict(rows):
        out.append(
            "<p>Annotation records: the records of its .json, .jsonl, .tsv, .csv and .parquet "
            "files (a JSON list's items, each top-level list of a JSON object, lines, rows), "
            "build reports included.</p>"
        )
    kinds = header.get("kinds") or {}
    if kinds:
        out.append("<p>By file suffix (links counted as the files they show):</p>")
        out.append(
            table(
                ("suffix", "files", "bytes", "tar samples", "records"),
                (
                    (
                        f".{name}" if name and name != "other" else name or "(none)",
                        k["files"],
                        human(k["bytes"]),
                        k.get("samples", ""),
                        k.get("records", ""),
                    )
                    for name, k in kinds.items()
                ),
                numeric=(1, 2, 3, 4),
            )
        )
    out.append("<p>Paths, over the layout roots:</p><ul>")
    out += [f"<li><code>{escape(path)}</code></li>" for path in header["paths"]]
    out.append("</ul>")
    return out


def _crawl_section(header: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for name, crawl in crawls(header).items():
        attempted, succeeded = crawl["attempted"], crawl["succeeded"]
        rate = crawl.get("success_rate", succeeded / attempted if attempted else 0.0)
        reasons = failures(crawl)
        out += [
            f"<h2>Images downloaded from the URL list (<code>reports/{escape(name)}</code>)</h2>",
            f"<p><b>{rate:.1%}</b> of {attempted:,} rows arrived: {succeeded:,} succeeded, "
            f"{attempted - succeeded:,} failed"
            + (f", in {crawl['shards']:,} shards" if "shards" in crawl else "")
            + ".</p>",
            table(
                ("outcome", "rows", "share"),
                [("succeeded", succeeded, f"{rate:.1%}")]
                + [
                    (reason, n, f"{n / attempted:.1%}" if attempted else "")
                    for reason, n in reasons.items()
                ],
                numeric=(1, 2),
            ),
            bar_chart(
                {"succeeded": succeeded, **reasons}, f"{name}: rows by outcome ({attempted:,})"
            ),
        ]
    return out


def _annotation_section(header: dict[str, Any]) -> list[str]:
    reports = annotation_reports(header)
    if not reports:
        return []
    rows = []
    for name, report in reports.items():
        dropped = report.get("dropped", {})
        why = ", ".join(f"{reason}: {n:,}" for reason, n in sorted(dropped.items())) or "-"
        rows.append(
            (
                name,
                report.get("records", ""),
                report.get("kept", ""),
                sum(dropped.values()),
                why,
                "yes" if report.get("eval_set") else "",
            )
        )
    out = [
        "<h2>Records left out of annotation files</h2>",
        "<p>Records whose image does not open the way the consumer opens it are left out "
        "(examples in the report files under <code>reports/</code>).</p>",
        table(
            ("file (under reports/)", "records", "kept", "dropped", "why", "evaluation set"),
            rows,
            numeric=(1, 2, 3),
        ),
    ]
    shrank = [
        name for name, r in reports.items() if r.get("eval_set") and sum(r["dropped"].values())
    ]
    if shrank:
        out.append(
            '<p class="warn">Evaluation sets shrank ('
            + escape(", ".join(shrank))
            + "): scores on them are not comparable with published results.</p>"
        )
    return out


def _source_rows(entry: str, source: dict[str, Any]) -> list[tuple[str, str]]:
    pinned = source.get("catalog") or {}
    rows = [("kind", pinned.get("kind", ""))]
    if "url" in pinned:
        rows.append(("url", pinned["url"]))
    if "repo" in pinned:
        rows.append(("repository", f"{pinned['repo']} ({pinned.get('repo_type', 'dataset')})"))
        rows.append(("revision (catalog)", pinned.get("revision", "unpinned")))
    if "size" in pinned:
        rows.append(("size (catalog)", f"{pinned['size']:,} B"))
    rows += [(f"{name} (catalog)", pinned[name]) for name in CHECKSUMS if name in pinned]
    recorded = source.get("recorded") or {}
    rows += [
        (f"{name} (found at download)", recorded[name]) for name in CHECKSUMS if name in recorded
    ]
    if "sha" in recorded:
        rows.append(("revision (downloaded)", recorded["sha"]))
    files = recorded.get("files") or []
    for item in files[:LISTED_FILES]:
        rows.append(
            (
                f"file {item.get('path', '')}",
                f"{item.get('size', 0):,} B, sha256 {item.get('sha256', '?')}",
            )
        )
    if len(files) > LISTED_FILES:
        rows.append(("", f"and {len(files) - LISTED_FILES:,} more files (the manifest lists all)"))
    if not recorded:
        rows.append(("found at download", "no record (fetched before vlprep kept one)"))
    return rows


def _sources_section(header: dict[str, Any]) -> list[str]:
    out = ["<h2>Sources</h2>"]
    sources = header.get("sources") or {}
    if not sources:
        out.append("<p>No catalog entry: built from other products' files.</p>")
    for entry, source in sources.items():
        out.append(f"<h3><code>{escape(entry)}</code></h3>")
        out.append(table(("", ""), _source_rows(entry, source)))
    return out


def _terms_section(header: dict[str, Any]) -> list[str]:
    terms: dict[tuple[str, str], list[str]] = {}
    for entry, source in (header.get("sources") or {}).items():
        key = (source.get("license") or "not stated", source.get("citation") or "not stated")
        terms.setdefault(key, []).append(entry)
    if not terms:
        return []
    out = ["<h2>Licence and citation</h2>"]
    for (licence, citation), entries in terms.items():
        out += [
            f"<p><b>{escape(', '.join(entries))}</b></p>",
            table(("", ""), [("licence / terms", licence), ("cite", citation)]),
        ]
    return out


def _config_section(header: dict[str, Any]) -> list[str]:
    config = header.get("config") or {}
    if not config:
        return []
    rows = []
    for key, value in config.items():
        if isinstance(value, dict):
            rows += [(f"{key}.{inner}", _plain(v)) for inner, v in value.items()]
        else:
            rows.append((key, _plain(value)))
    return ["<h2>Built with</h2>", table(("config key", "value"), rows)]


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_plain(v)}" for k, v in value.items())
    return "-" if value is None else str(value)


def _where(product: Any) -> str:
    if product is None:
        return ""
    layouts = ", ".join(
        f"<code>{escape(layout)}</code> for {escape(CONSUMERS.get(layout, layout))}"
        for layout in product.bundles
    )
    return f" (layout {layouts})"


def summary_html(header: dict[str, Any], captions: list[str]) -> str:
    """The summary page of the product a manifest header describes, `captions` being those of
    its sample grid."""
    name = header["product"]
    product = PRODUCTS.get(name)
    about = product.about if product else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(name)}: vlprep</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{escape(name)}</h1>",
        f'<p class="about">{escape(about)}{_where(product)}</p>',
        f"<p>vlprep {escape(str(header.get('vlprep_version', '')))}; manifest "
        f"<code>manifests/{escape(name)}.json</code>, file list sha256 "
        f'<span class="hash">{escape(header.get("files_sha256", ""))}</span>.</p>',
    ]
    parts += _holdings_section(header)
    parts += _crawl_section(header)
    parts += _annotation_section(header)
    parts += _sources_section(header)
    parts += _terms_section(header)
    parts += _config_section(header)
    if captions:
        parts.append("<h2>In the sample grid</h2><ol>")
        parts += [f"<li>{escape(caption)}</li>" for caption in captions]
        parts.append("</ol>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ---- the piece ---------------------------------------------------------------------------


def draw_samples(product: str, roots: dict[str, str], out: Path) -> list[str]:
    """The product's sample grid (vlprep.samples), imported when drawn."""
    from vlprep.samples import draw_grid

    return draw_grid(product, roots, out)


def write_report(
    header_path: str | Path,
    roots: dict[str, str],
    summary: str | Path,
    grid: str | Path,
    *,
    draw: DrawGrid = draw_samples,
) -> dict[str, Any]:
    """Write the report piece of the product whose manifest header is at `header_path`: its
    sample grid (drawn by `draw` from the product under `roots`), then its summary. Returns
    the headline counts."""
    header = read_header(header_path)
    captions = draw(header["product"], roots, Path(grid))
    with staged(summary) as tmp:
        tmp.write_text(summary_html(header, captions), encoding="utf-8")
    return holdings(header)
