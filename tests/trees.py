"""A built tree, compared with another: what two clean runs of the same inputs must share.

Used by the e2e tests (a killed run resumed to the uninterrupted run's tree) and by the kill
trials (tests/reliability/kill_trials.py). Compared: every path under the data root, its kind
(file, folder, symlink with its target) and its content, except where the data itself varies
between two clean runs:

- logs/, the data report (report.html, made on demand with its clock) and Snakemake's
  `.snakemake_timestamp` markers are not data;
- JSON files vlprep writes about a run (under reports/ and i2d/: reports, plans,
  img2dataset's `_stats.json`; the hub download records `.vlprep-hub.json`) are compared as
  data, with the data root itself written as `<data_root>` (two trees live in two places) and
  the clock's keys and the hub's address removed (TIMING_KEYS); other JSON byte for byte;
- img2dataset's own shards (tars and parquets under `i2d/`): its threads finish samples in any
  order, so a tar compares as {member name: bytes} and a parquet as its rows sorted by `key`;
- the data report's pieces (reports/products/): only that they are there;
- manifests (manifests/): the header as a report is, without what follows from the file list;
  the file list line by line, a file with a `content` digest by that digest.
"""

import gzip
import json
import os
import tarfile
from pathlib import Path

import pyarrow.parquet as pq

TIMING_KEYS = {
    "seconds",
    "duration",
    "start_time",
    "end_time",
    "images_per_s",
    "shard_seconds",
    "sample_per_sec",
    "elapsed",
    # where the bytes came from, not what they are: the hub's address (a stand-in's port
    # changes from run to run, a mirror endpoint from site to site), a download's URL
    "endpoint",
    "source_url",
    # when a download, a manifest or its Croissant export was made
    "fetched",
    "built",
    "datePublished",
}
# A manifest's header keys that follow from its file list, compared line by line instead.
LISTING_KEYS = {"files_sha256", "totals", "kinds"}


def without_timing(value):
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def content(path: Path, rel: str, root: Path):
    """What a file holds, with img2dataset's and the clock's variation taken out."""
    if path.suffix == ".json" and (
        rel.split("/", 1)[0] in ("reports", "i2d") or path.name.startswith(".vlprep-")
    ):
        try:
            text = path.read_bytes().replace(str(root).encode(), b"<data_root>")
            return ("json", without_timing(json.loads(text)))
        except ValueError:
            pass
    if rel.startswith("reports/products/"):
        # the data report's pieces show what the manifests hold (compared below); an
        # img2dataset shard's bytes, and so its sample grid, vary from crawl to crawl
        return ("report piece", None)
    if rel.startswith("manifests/") and path.name.endswith(".files.jsonl.gz"):
        return ("manifest", [_manifest_line(line) for line in read_lines(path)])
    if rel.startswith("manifests/") and path.suffix == ".json":
        text = path.read_bytes().replace(str(root).encode(), b"<data_root>")
        header = without_timing(json.loads(text))
        return ("manifest header", {k: v for k, v in header.items() if k not in LISTING_KEYS})
    if rel.startswith("i2d/") and path.suffix == ".tar":
        with tarfile.open(path) as tf:
            return ("tar", {m.name: tf.extractfile(m).read() for m in tf if m.isfile()})
    if rel.startswith("i2d/") and path.suffix == ".parquet":
        table = pq.read_table(path)
        rows = sorted(table.to_pylist(), key=lambda row: str(row.get("key")))
        return ("parquet", rows)
    return ("bytes", path.read_bytes())


def read_lines(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as lines:
        return [json.loads(line) for line in lines]


def _manifest_line(line: dict) -> dict:
    """A manifest line as two runs share it: files with a `content` digest (img2dataset's
    shards, run records) by that alone, as vlprep.verify --compare takes them."""
    if "content" in line:
        return {k: v for k, v in line.items() if k not in ("sha256", "size")}
    return line


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under `root` (logs, report.html and Snakemake's markers left out) and what
    it is."""
    found: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == root:
            dirnames[:] = [d for d in dirnames if d != "logs"]
            filenames = [f for f in filenames if f != "report.html"]
        dirnames.sort()
        for name in dirnames + sorted(filenames):
            if name == ".snakemake_timestamp":
                continue
            path = here / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                found[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                found[rel] = ("dir",)
            else:
                found[rel] = content(path, rel, root)
    return found


def differences(expected: dict, got: dict) -> list[str]:
    stray = sorted(set(got) - set(expected))
    missing = sorted(set(expected) - set(got))
    changed = sorted(k for k in set(got) & set(expected) if got[k] != expected[k])
    lines = [f"stray: {p}" for p in stray] + [f"missing: {p}" for p in missing]
    return lines + [f"differs: {p}" for p in changed]


def main(argv: list[str] | None = None) -> int:
    """`python -m tests.trees BEFORE AFTER [--new PREFIX ...]`: the differences of two data
    roots, paths under a --new prefix (a product only AFTER has) left out; exit 1 if any."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--new", action="append", default=[], help="path prefix only AFTER has")
    args = parser.parse_args(argv)
    before, after = snapshot(args.before), snapshot(args.after)
    new = {path for path in after if path.startswith(tuple(args.new))} if args.new else set()
    found = differences(before, {k: v for k, v in after.items() if k not in new})
    for line in found:
        print(line)
    print(
        f"{len(before)} paths before, {len(after)} after ({len(new)} new), {len(found)} differences"
    )
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
