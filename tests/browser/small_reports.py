"""Small Snakemake reports made by the tests themselves, deterministically: each result a file
the test gives, flagged with report() by a two-rule workflow and put in a report by the
pinned Snakemake, the way the workflow's own report is made."""

import io
import subprocess
import sys
from pathlib import Path

from PIL import Image


def jpeg(width: int, height: int, seed: int) -> bytes:
    """A deterministic JPEG: a gradient whose colours depend on `seed`."""
    image = Image.new("RGB", (width, height))
    image.putdata(
        [
            ((x * 255 // width + seed * 40) % 256, (y * 255 // height) % 256, (seed * 70) % 256)
            for y in range(height)
            for x in range(width)
        ]
    )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


SNAKEFILE = """\
RESULTS = {results!r}

wildcard_constraints:
    category="[^/]+",
    subcategory="[^/]+",


rule all:
    input:
        [f"out/{{c}}/{{s}}/{{n}}" for c, s, n in RESULTS],


rule show:
    input:
        "src/{{category}}/{{subcategory}}/{{name}}",
    output:
        report(
            "out/{{category}}/{{subcategory}}/{{name}}",
            category="{{category}}",
            subcategory="{{subcategory}}",{labels}
        ),
    shell:
        "cp {{input}} {{output}}"
"""


# As rules/report.smk labels a product's pieces: two views of one row, which Snakemake's
# table shows one at a time, switched by a toggle.
LABELS = """
            labels={"product": "{subcategory}", "view": "{name}"},"""


def small_report(
    folder: Path, results: dict[tuple[str, str, str], bytes], labelled: bool = False
) -> Path:
    """A Snakemake report of `results` ((category, subcategory, file name) -> bytes), each an
    output flagged with report() (`labelled`: by subcategory and file name, as the workflow
    labels its report pieces); built by the pinned Snakemake as the workflow's is."""
    for (category, subcategory, name), data in results.items():
        source = folder / "src" / category / subcategory / name
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(data)
    labels = LABELS if labelled else ""
    (folder / "Snakefile").write_text(SNAKEFILE.format(results=sorted(results), labels=labels))
    report = folder / "report.html"
    for args in (["--cores", "1"], ["--report", str(report)]):
        run = subprocess.run(
            [sys.executable, "-m", "snakemake", *args, "--snakefile", "Snakefile"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, f"snakemake {' '.join(args)} in {folder}:\n{run.stderr}"
    return report
