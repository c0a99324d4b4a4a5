"""`verify`: is a built tree still what its manifests say, offline; do two manifests agree?

    python -m vlprep.verify [--full] [--data-root D] [--root NAME=PATH ...] [PRODUCT ...]
    python -m vlprep.verify --compare A B

(run with `PYTHONPATH=<vlprep>/scripts`, or as `snakemake verify`). The tree is walked as the
manifest was written (vlprep.manifest.walk) and the two are merged path by path, so memory stays
flat whatever the size:

* quick (default): what a stat shows: every path is there with its type, a file with its size,
  a link with its target; nothing is there that was not;
* `--full`: also every file's sha256, read in parallel (`--workers`), each inode once.

Each drift is one line, `changed`, `missing`, `extra` or `broken` (a link whose target is gone),
with the path over its root and, when it differs, the file on disk it is: a store file that
several products show is named once. A missing or extra folder is one line with its count of
entries. Exit status: 0 if nothing drifted, 1 if something did, 2 if a manifest is unusable.

`--compare A B` compares two manifests (files, or manifest folders: each product in both) line
by line, without touching any tree: two machines, or two dates, hold the same data exactly when
it prints `equal`.
"""

import argparse
import hashlib
import os
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlprep.manifest import (
    CHUNK,
    FileReader,
    ManifestError,
    Node,
    ordered_map,
    read_header,
    read_lines,
    resolve,
    walk,
)
from vlprep.progress import bar

DRIFTS = ("changed", "missing", "extra", "broken")


@dataclass
class Drift:
    """One way a tree left its manifest. `where` is the file system path that identifies it
    (the file a changed path shows; a missing, extra or broken path's own location)."""

    kind: str
    path: str
    where: str
    detail: str = ""
    products: list[str] = field(default_factory=list)
    inside: int = 0  # entries under a missing or extra folder, not listed one by one

    def line(self) -> str:
        text = f"{self.kind:8} {self.path}"
        if self.detail:
            text += f" ({self.detail})"
        if self.inside:
            text += f" and the {self.inside} entries under it"
        return text


def _key(path: str) -> tuple[str, ...]:
    return tuple(path.split("/"))


def _under(path: str, folder: str | None) -> bool:
    return folder is not None and path.startswith(folder + "/")


def _location(real: str | Path) -> str:
    """Where a path is, its last component not followed (a link is itself, not its target)."""
    return os.path.join(os.path.realpath(os.path.dirname(real)), os.path.basename(real))


def _is_file(node: Node) -> bool:
    return node.st is not None and stat.S_ISREG(node.st.st_mode)


def sha256_of(node: Node) -> dict[str, str]:
    """The sha256 of the file a node shows."""
    digest = hashlib.sha256()
    with open(node.real, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return {"sha256": digest.hexdigest()}


def _differences(want: dict[str, Any], node: Node, digest: str | None) -> list[str]:
    """What differs between a manifest line and the node now at its path."""
    if node.kind == "broken":
        return ["broken"]
    if want["type"] != node.kind:
        return [f"was a {want['type']}, now a {node.kind}"]
    found = []
    if want.get("target") != node.target:
        found.append(f"link target {node.target!r}, was {want.get('target')!r}")
    is_file = _is_file(node)
    if "size" in want:
        size = node.st.st_size if is_file else None
        if size is None:
            found.append("no longer a file")
        elif size != want["size"]:
            found.append(f"{size:,} bytes, was {want['size']:,}")
        elif digest is not None and digest != want["sha256"]:
            found.append("sha256 differs")
    elif is_file:
        found.append("now a file, was a folder")
    return found


def verify_product(
    header_path: str | Path,
    *,
    hasher: FileReader | None = None,
    workers: int = 2,
    roots: dict[str, str] | None = None,
    progress: Callable[[Node], None] = lambda node: None,
) -> Iterator[Drift]:
    """The drifts of one product's tree from the manifest at `header_path`; with a `hasher`
    (a FileReader of sha256_of: each inode read once per run, however many products show it),
    the full check, else the quick one. `progress` is told of every node walked."""
    header = read_header(header_path)
    used = {**header["roots"], **(roots or {})}
    nodes = _told(walk(header["paths"], used, missing_ok=True), progress)
    if hasher is not None:
        hashed = (
            (node, (fields or {}).get("sha256"))
            for node, fields in ordered_map(hasher, nodes, workers)
        )
    else:
        hashed = ((node, None) for node in nodes)
    yield from _merge(read_lines(header_path), hashed, used)


def _told(nodes: Iterable[Node], progress: Callable[[Node], None]) -> Iterator[Node]:
    for node in nodes:
        progress(node)
        yield node


def _merge(
    lines: Iterable[dict[str, Any]],
    disk: Iterable[tuple[Node, str | None]],
    roots: dict[str, str],
) -> Iterator[Drift]:
    """Walk the manifest's lines and the tree's nodes together (both in walk order)."""
    lines, disk = iter(lines), iter(disk)
    want = next(lines, None)
    have = next(disk, None)
    gone: Drift | None = None  # the missing folder whose entries are being counted
    new: Drift | None = None  # the extra folder whose entries are being counted
    while want is not None or have is not None:
        if have is None or (want is not None and _key(want["path"]) < _key(have[0].path)):
            if gone is not None and _under(want["path"], gone.path):
                gone.inside += 1
            else:
                if gone is not None:
                    yield gone
                where = _location(resolve(want["path"], roots))
                gone = Drift("missing", want["path"], where, _what(want))
            want = next(lines, None)
            continue
        node, digest = have
        if want is None or _key(node.path) < _key(want["path"]):
            if new is not None and _under(node.path, new.path):
                new.inside += 1
            else:
                if new is not None:
                    yield new
                new = Drift("extra", node.path, node.real, node.kind)
            have = next(disk, None)
            continue
        # the same path on both sides
        if gone is not None:
            yield gone
            gone = None
        if new is not None:
            yield new
            new = None
        problems = _differences(want, node, digest)
        if problems == ["broken"]:
            drift = Drift("broken", node.path, node.real, f"-> {node.target}")
            if "size" not in want:  # a folder's link: its entries are missing with it
                gone = drift
            else:
                yield drift
        elif problems:
            where = os.path.realpath(node.real) if "size" in want else node.real
            yield Drift("changed", node.path, where, "; ".join(problems))
        want, have = next(lines, None), next(disk, None)
    for pending in (gone, new):
        if pending is not None:
            yield pending


def _what(line: dict[str, Any]) -> str:
    kind = line["type"]
    return (
        "a folder"
        if kind == "dir"
        else f"a {kind}" + (f", {line['size']:,} bytes" if "size" in line else "")
    )


def resolve_roots(
    header: dict[str, Any], data_root: Path | None, overrides: dict[str, str]
) -> dict[str, str]:
    """The roots to verify at: the recorded ones, those under the recorded data root moved
    under `data_root` (a tree copied elsewhere), then `--root NAME=PATH`."""
    roots = dict(header["roots"])
    old = roots.get("data_root")
    if data_root is not None and old:
        for name, value in list(roots.items()):
            if Path(value) == Path(old) or Path(value).is_relative_to(old):
                roots[name] = str(data_root / Path(value).relative_to(old))
    return {**roots, **overrides}


def verify(
    manifests: Path,
    products: list[str] | None = None,
    *,
    full: bool = False,
    workers: int = 2,
    data_root: Path | None = None,
    overrides: dict[str, str] | None = None,
) -> tuple[list[str], list[Drift]]:
    """Verify each product with a manifest in `manifests` (or those named); return the products
    checked and the drifts, one per distinct place (a store file shown by several products is
    one drift, listing them)."""
    headers = _headers(manifests, products)
    drifts: dict[tuple[str, str], Drift] = {}
    hasher = FileReader(sha256_of) if full else None
    try:
        # full: bytes to hash, as the manifests count them; quick: paths to look at
        totals = [read_header(path)["totals"] for path in headers.values()]
        if full:
            total, unit = sum(t["bytes"] for t in totals), "B"
            told = lambda node: progress.update(node.st.st_size if _is_file(node) else 0)  # noqa: E731
        else:
            total, unit = sum(t["files"] + t["links"] + t["dirs"] for t in totals), "path"
            told = lambda node: progress.update(1)  # noqa: E731
        with bar(total, "verify", unit=unit, unit_scale=True) as progress:
            for product, header_path in headers.items():
                header = read_header(header_path)
                roots = resolve_roots(header, data_root, overrides or {})
                found = verify_product(
                    header_path, hasher=hasher, workers=workers, roots=roots, progress=told
                )
                for drift in found:
                    known = drifts.setdefault((drift.kind, drift.where), drift)
                    known.products.append(product)
    finally:
        if hasher is not None:
            hasher.close()
    return list(headers), list(drifts.values())


def _headers(manifests: Path, products: list[str] | None) -> dict[str, Path]:
    if manifests.is_file():
        header = read_header(manifests)
        return {header["product"]: manifests}
    if not manifests.is_dir():
        raise ManifestError(
            f"{manifests}: no manifests here; build a product first (snakemake <product>) "
            "or give the data root the products were built in (--data-root)"
        )
    found = {
        path.name.removesuffix(".json"): path
        for path in sorted(manifests.glob("*.json"))
        if not path.name.endswith(".croissant.json")
    }
    if products:
        unknown = [name for name in products if name not in found]
        if unknown:
            raise ManifestError(
                f"no manifest in {manifests} for {', '.join(unknown)}; "
                f"manifests there: {', '.join(found) or 'none'}"
            )
        found = {name: found[name] for name in products}
    return found


# ---- comparing two manifests -------------------------------------------------------------


def compare_product(a: Path, b: Path) -> Iterator[str]:
    """Lines naming each path whose manifest lines differ between `a` and `b`."""
    header_a, header_b = read_header(a), read_header(b)
    if header_a["files_sha256"] == header_b["files_sha256"]:
        return
    left, right = read_lines(a), read_lines(b)
    one, two = next(left, None), next(right, None)
    while one is not None or two is not None:
        if two is None or (one is not None and _key(one["path"]) < _key(two["path"])):
            yield f"only in A  {one['path']}"
            one = next(left, None)
        elif one is None or _key(two["path"]) < _key(one["path"]):
            yield f"only in B  {two['path']}"
            two = next(right, None)
        else:
            keys = sorted(k for k in set(one) | set(two) if one.get(k) != two.get(k))
            if "content" in one and "content" in two:
                # their bytes differ by what is not data (times, order): compare the content
                keys = [k for k in keys if k not in ("sha256", "size")]
            if keys:
                yield f"differs    {one['path']} ({', '.join(keys)})"
            one, two = next(left, None), next(right, None)


def compare(a: Path, b: Path) -> list[str]:
    """Every difference between manifests `a` and `b` (files or folders); [] if equal."""
    if a.is_file() and b.is_file():
        return list(compare_product(a, b))
    found_a, found_b = _headers(a, None), _headers(b, None)
    lines = [f"only in A  product {name}" for name in found_a if name not in found_b]
    lines += [f"only in B  product {name}" for name in found_b if name not in found_a]
    for name in found_a:
        if name in found_b:
            lines += [f"{name}: {line}" for line in compare_product(found_a[name], found_b[name])]
    return lines


# ---- command line ------------------------------------------------------------------------


def _root_override(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"{text!r}: give NAME=PATH, e.g. lavis=/data/lavis")
    return name, path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="vlprep verify", description=__doc__.splitlines()[0].strip("`")
    )
    parser.add_argument("products", nargs="*", help="default: every product with a manifest")
    parser.add_argument(
        "--data-root",
        type=Path,
        help="the data root the products were built in (default: as recorded; give it when "
        "the tree was moved or copied: the roots under the recorded one move with it)",
    )
    parser.add_argument("--manifests", type=Path, help="default: <data-root>/manifests")
    parser.add_argument("--full", action="store_true", help="also re-hash every file")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--root", type=_root_override, action="append", default=[])
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    args = parser.parse_args(argv)
    try:
        if args.compare:
            differences = compare(*args.compare)
            for line in differences:
                print(line)
            a, b = args.compare
            print(
                f"{a} and {b}: "
                + ("equal" if not differences else f"{len(differences)} difference(s)")
            )
            return 1 if differences else 0
        manifests = args.manifests or (args.data_root or Path("data")) / "manifests"
        products, drifts = verify(
            manifests,
            args.products or None,
            full=args.full,
            workers=args.workers,
            data_root=args.data_root.resolve() if args.data_root else None,
            overrides=dict(args.root),
        )
    except ManifestError as err:
        print(f"vlprep verify: {err}", file=sys.stderr)
        return 2
    for drift in drifts:
        print(drift.line() + f"  [{', '.join(drift.products)}]")
    mode = "full (sizes, links and sha256)" if args.full else "quick (sizes and links)"
    print(
        f"vlprep verify, {mode}: {len(products)} product(s), "
        + ("no drift" if not drifts else f"{len(drifts)} drift(s)")
    )
    return 1 if drifts else 0


if __name__ == "__main__":
    sys.exit(main())
