"""Before a long run: what it will download, the disk it needs, and what would stop it.

For every product and bundle: bytes still to download (catalog sizes; hub repositories are
asked for their file sizes; image crawls are estimated from row counts), disk needed (downloads
plus their unpacked trees plus what layouts write), against the free space where data_root
lives. Then what no download can fix: files to fetch by hand missing from manual_dir, hub
repositories that need a token, and sources without a published checksum (verified by size, or
not at all). Nothing is downloaded or written except the report.
"""

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlprep.access import reachable
from vlprep.catalog import load_catalog
from vlprep.errors import VlprepError
from vlprep.transfer import catalog_digest

log = logging.getLogger(__name__)

# Average bytes per image as the consumers' img2dataset settings store them (estimates).
IMAGE_BYTES = {
    "laion115m": 12_000,  # 256 px, border, quality 95
    "cc_sbu": 10_000,  # 224 px, border, quality 95
    "laion_coco": 16_000,  # 256 px, keep_ratio
    "sbu": 60_000,  # original Flickr JPEGs
    "nocaps_val": 250_000,  # original Open Images JPEGs
    "nocaps_test": 250_000,
}
# Layouts that write data rather than link it: the share of a product's download they copy
# (webdataset tars carry a copy of each image).
WRITES_COPY = {"coco_valid": 1.0, "coco_train": 1.0, "openimages_v7_valid": 1.0, "sbu": 1.0}


@dataclass
class Need:
    """What one product (or a bundle of them) still needs."""

    download: int = 0
    disk: int = 0
    unknown: list[str] = field(default_factory=list)  # sources of unknown size
    estimated: list[str] = field(default_factory=list)  # image crawls, sized by estimate

    def add(self, other: "Need") -> None:
        self.download += other.download
        self.disk += other.disk
        self.unknown += [u for u in other.unknown if u not in self.unknown]
        self.estimated += [e for e in other.estimated if e not in self.estimated]


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError


def free_bytes(path: Path) -> int:
    """Free space on the filesystem that holds `path` (or would, once created)."""
    path = path.resolve()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free


def hub_size(entry: dict, endpoint: str | None) -> tuple[int | None, str | None]:
    """(total bytes of the entry's files, a credentials problem), asking the hub."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError

    from vlprep.hub import _listing, _Where

    if not reachable(endpoint or "https://huggingface.co"):
        log.warning("%s: the hub at %s is unreachable; size unknown", entry["id"], endpoint)
        return None, None
    token = os.environ.get("HF_TOKEN")
    api = HfApi(endpoint=endpoint, token=token)
    where = _Where(
        entry["id"], entry["repo"], entry["repo_type"], entry["revision"], endpoint, "HF_TOKEN"
    )
    where.sha = entry["revision"]
    try:
        listing = _listing(api, where, entry.get("include"))
    except GatedRepoError:
        return None, (
            f"{entry['id']}: {entry['repo']} is gated; accept its terms at "
            f"https://huggingface.co/datasets/{entry['repo']} and set HF_TOKEN"
        )
    except RepositoryNotFoundError:
        return None, f"{entry['id']}: {entry['repo']} not found (or private: set HF_TOKEN)"
    except (HfHubHTTPError, VlprepError, Exception) as err:  # noqa: BLE001 - advisory only
        # No hub, no network: the size stays unknown, which the report says.
        log.warning("%s: could not list %s on the hub: %s", entry["id"], entry["repo"], err)
        return None, None
    return sum(f.size or 0 for f in listing.values()), None


def unreachable(urls: list[str], timeout: float = 10.0) -> str | None:
    """Why none of `urls` (a file's candidates: mirrors, then the original) answers, or None.

    One HEAD each, until one answers with anything but 404/410: a host that refuses HEAD (405)
    or wants a login (403) is there, and the download says more.
    """
    import requests

    why = None
    for url in urls:
        try:
            status = requests.head(url, timeout=timeout, allow_redirects=True).status_code
        except requests.RequestException as err:
            why = f"{url}: {type(err).__name__}"
            continue
        if status not in (404, 410):
            return None
        why = f"{url}: HTTP {status}"
    return why


class Preflight:
    """Adds up a workflow plan (rules/common.smk preflight_plan) against the catalog."""

    def __init__(
        self,
        plan: dict,
        catalog_path: str,
        hf_endpoint: str | None,
        http: dict | None = None,
        gdrive: dict | None = None,
    ) -> None:
        self.plan = plan
        self.catalog = load_catalog(catalog_path)
        self.hf_endpoint = hf_endpoint
        # {"mirrors": ..., "try_original": ...}: check that each http source answers (None: don't)
        self.http = http
        # {"proxy": ..., "ca_bundle": ...}: ask Drive whether each file can be had (None: don't)
        self.gdrive = gdrive
        self.problems: list[str] = []
        self.notes: list[str] = []
        self._sizes: dict[str, int | None] = {}

    def entry_size(self, entry_id: str) -> int | None:
        if entry_id not in self._sizes:
            entry = self.catalog[entry_id]
            size = entry.get("size") or entry.get("approx_size")
            if entry["kind"] == "hf":
                size, problem = hub_size(entry, self.hf_endpoint)
                if problem:
                    self.problems.append(problem)
            self._sizes[entry_id] = size
        return self._sizes[entry_id]

    def downloaded(self, entry_id: str) -> bool:
        entry = self.catalog[entry_id]
        base = Path(self.plan["downloads"], entry_id)
        if entry["kind"] == "hf":
            return base.is_dir()
        return (base / entry["filename"]).is_file()

    def extracted(self, entry_id: str) -> bool:
        return Path(self.plan["extracted"], entry_id).is_dir()

    def product_need(self, name: str) -> Need:
        product, need = self.plan["products"][name], Need()
        for entry_id in product["entries"]:
            if entry_id not in self.catalog:
                need.unknown.append(f"{entry_id} (not in the catalog)")
                continue
            size = self.entry_size(entry_id)
            if size is None:
                need.unknown.append(entry_id)
                size = 0
            archive = self.catalog[entry_id]["archive"] != "none"
            if not self.downloaded(entry_id):
                need.download += size
                need.disk += size
            if archive and not self.extracted(entry_id):
                need.disk += size  # images barely compress: unpacked ~ archive size
            need.disk += int(size * WRITES_COPY.get(name, 0.0))
            if self.plan["link_mode"] == "copy":
                need.disk += size
        for dataset, rows in product["url_lists"].items():
            images = rows * IMAGE_BYTES.get(dataset, 50_000)
            need.download += images
            need.disk += images * (2 if name in WRITES_COPY else 1)
            need.estimated.append(f"{dataset} ({rows:,} rows)")
        return need

    def check_sources(self, entries: set[str]) -> None:
        from vlprep.sources import where_to_get

        manual_dir = Path(self.plan["manual_dir"])
        probe: list[str] = []
        for entry_id in sorted(entries):
            entry = self.catalog.get(entry_id)
            if entry is None:
                continue
            by_hand = entry["kind"] == "manual" and not self.downloaded(entry_id)
            if by_hand and not (manual_dir / entry["filename"]).is_file():
                # name, where to get it, checksum and size: all a person needs to fetch it
                self.problems.append(where_to_get(entry_id, entry, manual_dir).strip())
            if entry["kind"] in ("http", "gdrive") and not self.downloaded(entry_id):
                probe.append(entry_id)
            if entry.get("gated") and not self.downloaded(entry_id):
                self.check_gated(entry_id, entry)
            if entry["kind"] != "hf" and catalog_digest(entry) is None:
                how = "checked by size only" if entry.get("size") else "not verifiable"
                self.notes.append(f"{entry_id}: no published checksum ({how})")
            if entry["kind"] == "hf" and not _is_sha(entry["revision"]):
                self.notes.append(
                    f"{entry_id}: revision '{entry['revision']}' is a branch; pin a commit"
                )
        self.check_reachable(probe, manual_dir)

    def check_gated(self, entry_id: str, entry: dict) -> None:
        """A gated hub repo: no HF_TOKEN, or one the hub refuses (terms not accepted), is a
        problem saying what to do (vlprep.access, as the workflow says it when it skips)."""
        from vlprep.access import gated_problem

        problem = gated_problem(entry_id, entry, self.hf_endpoint)
        if problem:
            # hub_size may have said it already, from the listing
            self.problems = [p for p in self.problems if not p.startswith(f"{entry_id}: ")]
            self.problems.append(problem)

    def check_reachable(self, entry_ids: list[str], manual_dir: Path) -> None:
        """A problem per source that cannot be had now (an http file no candidate URL answers,
        a Drive file behind its quota page or gone), unless it is in manual_dir already, with
        how to get it by hand. Probed concurrently."""
        from concurrent.futures import ThreadPoolExecutor

        from vlprep.fetch import candidate_urls
        from vlprep.gdrive import drive_problem
        from vlprep.sources import where_to_get

        wanted = [e for e in entry_ids if not (manual_dir / self.catalog[e]["filename"]).is_file()]

        def urls(entry_id: str) -> list[str]:
            url = self.catalog[entry_id]["url"]
            candidates = candidate_urls(url, self.http.get("mirrors"))
            if not self.http.get("try_original", True):
                candidates = [c for c in candidates if c != url] or candidates
            return candidates

        def problem(entry_id: str) -> str | None:
            entry = self.catalog[entry_id]
            if entry["kind"] == "gdrive":  # a quota page or a deleted file, said before the run
                if self.gdrive is None:
                    return None
                said = drive_problem(entry_id, entry["drive_id"], **self.gdrive)
                return said.split(": ", 1)[1] if said else None
            return unreachable(urls(entry_id)) if self.http is not None else None

        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(problem, wanted))
        for entry_id, why in zip(wanted, answers, strict=True):
            if why:
                self.problems.append(
                    f"{entry_id}: cannot be fetched now ({why}); download it by hand instead:\n"
                    + where_to_get(entry_id, self.catalog[entry_id], manual_dir)
                )

    def check_glamm_root(self) -> None:
        """A glamm layout root GLaMM's path rewriting breaks (vlprep.glamm.root_problem): a
        problem when a glamm product is enabled, else a note (`snakemake glamm` refuses it)."""
        from vlprep.glamm import root_problem

        root = self.plan.get("glamm_root")
        problem = root_problem(root) if root else None
        if problem is None:
            return
        glamm = self.plan["bundles"].get("glamm", [])
        enabled = [n for n in glamm if self.plan["products"].get(n, {}).get("enabled")]
        (self.problems if enabled else self.notes).append(problem)

    def run(self) -> dict[str, Any]:
        products = self.plan["products"]
        needs = {name: self.product_need(name) for name in products}
        targets: dict[str, Need] = {}
        for bundle, members in self.plan["bundles"].items():
            targets[bundle] = Need()
            for member in dict.fromkeys(members):
                targets[bundle].add(needs[member])
        targets["all"] = Need()
        for name, product in products.items():
            if product["enabled"]:
                targets["all"].add(needs[name])
        used = {e for name in products for e in products[name]["entries"]}
        self.check_sources(used)
        self.check_glamm_root()
        free = free_bytes(Path(self.plan["data_root"]))
        rows = {**needs, **targets}
        for name, need in rows.items():
            if name == "all" and need.disk > free:
                self.problems.append(
                    f"all: needs about {human(need.disk)} of disk, {human(free)} free under "
                    f"{self.plan['data_root']}"
                )
        return {
            "free": free,
            "targets": {
                name: {
                    "download": need.download,
                    "disk": need.disk,
                    "fits": need.disk <= free,
                    "unknown_sizes": need.unknown,
                    "estimated": need.estimated,
                }
                for name, need in rows.items()
            },
            "problems": self.problems,
            "notes": self.notes,
            # what a product needs beyond its downloads (GranD's SA-1B images, ...)
            "product_notes": {
                name: product["notes"] for name, product in products.items() if product.get("notes")
            },
        }


def _is_sha(revision: str) -> bool:
    return len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)


def _names(names: list[str], shown: int = 3) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def render(report: dict, enabled: list[str]) -> str:
    """The report as a table and two lists, for a terminal (the JSON report has every name)."""
    lines = [f"{'target':<22}{'download':>12}{'disk':>12}  fits  notes"]
    for name, row in report["targets"].items():
        mark = "*" if name in enabled else " "
        notes = []
        if row["unknown_sizes"]:
            notes.append(f"+ unknown size: {_names(row['unknown_sizes'])}")
        if row["estimated"]:
            notes.append(f"images estimated: {_names(row['estimated'])}")
        fits = "yes " if row["fits"] else "NO  "
        lines.append(
            f"{mark}{name:<21}{human(row['download']):>12}{human(row['disk']):>12}  {fits}  "
            + "; ".join(notes)
        )
    lines.append(f"(* = built by `all`; free space: {human(report['free'])})")
    unpinned = [n for n in report["notes"] if "branch" in n]
    unverified = [n.split(":")[0] for n in report["notes"] if "checksum" in n]
    if unpinned:
        lines.append("\nNot pinned:")
        lines += [f"  - {note}" for note in unpinned]
    if unverified:
        lines.append(
            f"\n{len(unverified)} source(s) publish no checksum (their sha256 is recorded at "
            f"the first download): {', '.join(unverified)}"
        )
    if report.get("product_notes"):
        lines.append("\nBeyond the downloads:")
        for name, notes in report["product_notes"].items():
            lines += [f"  - {name}: {note}" for note in notes]
    if report["problems"]:
        lines.append(f"\n{len(report['problems'])} problem(s) to fix before the run:")
        lines += [f"  - {problem}" for problem in report["problems"]]
    else:
        lines.append("\nNothing blocks the run.")
    return "\n".join(lines)


def write_report(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
