"""The fault table: every fault the stand-ins can throw, against every kind of source.

Rows are faults, columns are source kinds; each cell is one test (`test_cell[<fault>-<source>]`)
that runs the real client (requests, boto3, gdown, huggingface_hub, img2dataset) through our
downloader against its stand-in on 127.0.0.1, with one fault switched on:

    drop      the connection closes half-way through the body, once
    5xx       503 instead of the file, once
    429       429 with Retry-After: 1 instead of the file, once
    trickle   one byte, then nothing for 4 s (past the 1 s read timeout), once
    html      an HTML sign-in page instead of the file, every time
    bytes     one byte flipped, same length, every time
    length    the file cut to half, announced as complete (Content-Length agrees), every time
    change    a drop, then another version of the file (same size) from the next request on

A cell reads
    recovered           the final file is there and its bytes are exactly the expected ones
    refused: <line>     an error naming the file or URL (its first line shown, without the
                        entry name it starts with), and nothing at the final path (a resumable
                        `.part` beside it is allowed)
    n/a: <why>          no client can tell the fault from a good answer

The catalog gives size and sha256 of the file; in the change row it is the new version's (the
catalog is current; the first attempt caught the old one), except on the hub, whose listing at
the pinned commit is the old version's, so new bytes there are wrong bytes. The single-file
sources go through vlprep.sources.fetch_entry (vlprep.fetch, vlprep.s3, vlprep.gdrive), the hub
through vlprep.hub.hub_fetch. Web images have no checksum: the img2dataset column runs the
workflow's steps once for all its rows (vlprep.i2d.run_part with MiniGPT-4's arguments, then
retry_failed on the failed rows) and compares each stored image with what a run without faults
stores; a first run must record a failed sample with its reason, never a broken image.

A cell fails on a silent wrong result (success, but other bytes), on anything at the final path
after an error, on an error that names neither file nor URL, and on an outcome other than the
one EXPECTED says. The table is printed when the module finishes (`pytest -s`), and written to
$FAULT_TABLE_OUT if that is set.
"""

import hashlib
import io
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import webdataset as wds
from huggingface_hub import constants as hf_constants
from PIL import Image

from standin.drive import DriveStandin
from standin.hub import LAION_COCO_NAME, HubStandin
from standin.imagehost import ImageHost, make_url_list, render_image
from standin.s3 import S3Standin
from standin.server import StandinServer
from tests.loopback import loopback_only
from vlprep import i2d
from vlprep.errors import VlprepError
from vlprep.hub import MANIFEST, hub_fetch
from vlprep.products.laion import MINIGPT4_I2D
from vlprep.sources import fetch_entry

SIZE = 1 << 20  # over Drive's scan limit (so its confirmation page too), several reads long
OLD = random.Random(1).randbytes(SIZE)
NEW = random.Random(2).randbytes(SIZE)  # the changed version: same size, other bytes
NAME = "data.bin"
NEW_NAME = "data-v2.bin"
BUCKET = "fault-table"
REPO = "laion/laion-coco"
HUB_NAME = LAION_COCO_NAME.format(7)  # a real hub name: longer than huggingface_hub shows whole
DRIVE_OLD, DRIVE_NEW = "1FaultTableOldVersion0000000000", "1FaultTableNewVersion0000000000"
TIMEOUT = 1.0  # every client's read timeout, seconds
STALL_RATE = 0.25  # bytes/s: one byte, then 4 s of nothing, past TIMEOUT
FETCH = {"retries": 3, "timeout": TIMEOUT, "max_backoff": 0.2, "try_original": True}
CELL_WIDTH = 58  # longer cells are cut in the table; the list below it has them whole


@dataclass(frozen=True)
class Fault:
    """One row: rules in standin.server's format, without `path` (and `to`, for change)."""

    label: str
    rules: tuple[dict[str, Any], ...]


FAULTS = {
    "drop": Fault("drop mid-body", ({"kind": "drop", "times": 1},)),
    "5xx": Fault("503", ({"kind": "status", "code": 503, "times": 1},)),
    "429": Fault("429 + Retry-After", ({"kind": "ratelimit", "retry_after": 1, "times": 1},)),
    "trickle": Fault(
        "trickle past timeout", ({"kind": "trickle", "rate": STALL_RATE, "times": 1},)
    ),
    "html": Fault("HTML page", ({"kind": "html"},)),
    "bytes": Fault("wrong bytes", ({"kind": "wrong_bytes"},)),
    "length": Fault("wrong length", ({"kind": "wrong_length"},)),
    "change": Fault("changed between tries", ({"kind": "drop", "times": 1}, {"kind": "change"})),
}
SOURCES = ("http", "hub", "s3", "gdrive", "img2dataset")

# What each cell must come to. A transient fault is recovered where the client tries again;
# what is not the file is refused everywhere.
_RETRIED = {"drop": "recovered", "5xx": "recovered", "429": "recovered",
            "trickle": "recovered", "html": "refused", "bytes": "refused",
            "length": "refused", "change": "recovered"}  # fmt: skip
EXPECTED = {
    "http": _RETRIED,
    "s3": _RETRIED,
    # huggingface_hub retries a 429 on the file's GET, vlprep.hub a 5xx (another download
    # pass); the pinned listing makes a changed file wrong bytes.
    "hub": _RETRIED | {"change": "refused"},
    # gdown takes a 429 or 5xx for a Drive page; vlprep.gdrive sees the status and retries.
    "gdrive": _RETRIED,
    # retry_failed is the second try; no client can tell a wrong but decodable image.
    "img2dataset": _RETRIED | {"bytes": "n/a"},
}


@dataclass
class Cell:
    outcome: str  # "recovered", "refused: <first line>" or "n/a: <why>"
    detail: str = ""  # how it came to that: the reason line of an error, the attempts


RESULTS: dict[tuple[str, str], Cell] = {}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def rules_for(fault: Fault, path: str, to: str) -> list[dict[str, Any]]:
    """The fault's rules for one stand-in: `path` picks the file, `to` is its new version."""
    return [
        {**rule, "path": path, **({"to": to} if rule["kind"] == "change" else {})}
        for rule in fault.rules
    ]


# -- the table ------------------------------------------------------------------------------


def render_table(results: dict[tuple[str, str], Cell]) -> str:
    """Rows fault, columns source kind, fixed width; then every cell whole, with its detail."""

    def cut(text: str) -> str:
        return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"

    cells = {
        key: [cut(results[key, s].outcome) if (key, s) in results else "(not run)" for s in SOURCES]
        for key in FAULTS
    }
    label_width = max(len(fault.label) for fault in FAULTS.values())
    widths = [max(len(s), *(len(row[i]) for row in cells.values())) for i, s in enumerate(SOURCES)]

    def line(label: str, texts: list[str]) -> str:
        padded = [f"{text:<{width}}" for text, width in zip(texts, widths, strict=True)]
        return " | ".join([f"{label:<{label_width}}", *padded]).rstrip()

    header = line("fault", list(SOURCES))
    lines = [header, "-" * len(header)]
    lines += [line(fault.label, cells[key]) for key, fault in FAULTS.items()]
    lines += ["", "Each cell whole:"]
    for key in FAULTS:
        for source in SOURCES:
            if (key, source) in results:
                cell = results[key, source]
                lines.append(f"  [{key}-{source}] {cell.outcome}")
                if cell.detail:
                    lines.append(f"      {cell.detail}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module", autouse=True)
def fault_table():
    """Collects the cells; prints the table (and writes $FAULT_TABLE_OUT) at the module's end."""
    yield RESULTS
    if not RESULTS:
        return
    table = render_table(RESULTS)
    print(f"\n\nFAULT TABLE\n\n{table}")
    if os.environ.get("FAULT_TABLE_OUT"):
        Path(os.environ["FAULT_TABLE_OUT"]).write_text(table)


@pytest.fixture(scope="module", autouse=True)
def _loopback_only():
    """No proxy from the environment, short client timeouts, no progress bars, and no socket
    of this process leaving 127.0.0.1 (img2dataset's child inherits the environment)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY",
                     "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "HF_TOKEN"):  # fmt: skip
            mp.delenv(name, raising=False)
            mp.delenv(name.lower(), raising=False)
        mp.setenv("VLPREP_PROGRESS", "0")
        mp.setenv("NO_ALBUMENTATIONS_UPDATE", "1")
        mp.setenv("WANDB_MODE", "disabled")
        # $HF_HUB_DOWNLOAD_TIMEOUT, which huggingface_hub read when it was imported
        mp.setattr(hf_constants, "HF_HUB_DOWNLOAD_TIMEOUT", TIMEOUT)
        with loopback_only():
            yield


# -- the stand-ins --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(tmp_path_factory):
    root = tmp_path_factory.mktemp("http")
    (root / NAME).write_bytes(OLD)
    (root / NEW_NAME).write_bytes(NEW)
    with StandinServer(root) as server:
        yield server


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    repo = root / "datasets" / REPO
    repo.mkdir(parents=True)
    (repo / HUB_NAME).write_bytes(OLD)
    (root / "changed").mkdir()
    (root / "changed" / HUB_NAME).write_bytes(NEW)  # outside any repo: only `change` serves it
    with HubStandin(root) as server:
        yield server


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    root = tmp_path_factory.mktemp("s3")
    (root / BUCKET).mkdir()
    (root / BUCKET / NAME).write_bytes(OLD)
    (root / BUCKET / NEW_NAME).write_bytes(NEW)
    with S3Standin(root) as server:
        yield server


@pytest.fixture(scope="module")
def gdrive(tmp_path_factory):
    root = tmp_path_factory.mktemp("drive")
    for file_id, data in ((DRIVE_OLD, OLD), (DRIVE_NEW, NEW)):
        (root / file_id).mkdir()
        (root / file_id / NAME).write_bytes(data)
    with DriveStandin(root) as server:
        yield server


# -- single files: HTTP, S3 and Google Drive through fetch_entry; the hub --------------------


def refused(entry: str, message: str, names: tuple[str, ...]) -> Cell:
    """The cell of an error: its first line (without the entry name every one starts with),
    and the line after it when the first one ends in a colon (the reason, per URL)."""
    assert any(name in message for name in names), f"the error names none of {names}: {message}"
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    first = lines[0].split(": ", 1)[-1] if lines[0].startswith(entry) else lines[0]
    why = lines[1] if len(lines) > 1 and first.endswith(":") else ""
    return Cell(f"refused: {first}", why)


def settle_file(
    entry: str, dest: Path, expected: bytes, names: tuple[str, ...], download: Callable
) -> Cell:
    """Run `download()`; judge what it left at `dest`, a single file."""
    began = time.monotonic()
    try:
        report = download()
    except VlprepError as err:
        assert not dest.exists(), f"{dest} exists after an error: unverified bytes installed"
        stray = [p.name for p in dest.parent.iterdir() if not p.name.startswith(NAME + ".part")]
        assert stray == [], f"after an error, files other than the partial download: {stray}"
        return refused(entry, str(err), names)
    got = dest.read_bytes()
    assert got == expected, (
        f"SILENT WRONG RESULT: success reported, but {dest} holds {len(got)} bytes with sha256 "
        f"{sha256(got)}, not the expected {len(expected)} bytes with {sha256(expected)}"
    )
    assert [p.name for p in dest.parent.iterdir()] == [NAME], "partial files left after success"
    return Cell(
        "recovered",
        f"{report['attempts']} attempt(s), the last from byte {report['resumed_from']:,}; "
        f"{time.monotonic() - began:.1f} s",
    )


def fetch_config(tmp_path: Path, **where: Any) -> dict[str, Any]:
    """The workflow's config as fetch_entry reads it: no mirrors, an empty manual_dir."""
    (tmp_path / "manual").mkdir(exist_ok=True)
    config = {"manual_dir": str(tmp_path / "manual"), "mirrors": {}, "fetch": dict(FETCH),
              "s3_endpoint": None, "gdrive": {"proxy": None, "ca_bundle": None}}  # fmt: skip
    return config | where


def fetch_cell(
    source: str, where: dict[str, Any], names: tuple[str, ...], config: dict, expected: bytes,
    tmp_path: Path,
) -> Cell:  # fmt: skip
    """fetch_entry of NAME from `where` (the catalog's url or drive_id) into tmp_path/out."""
    entry = f"fault-table/{source}"
    catalog = {"kind": source, **where, "filename": NAME, "size": SIZE, "sha256": sha256(expected)}
    dest = tmp_path / "out" / NAME
    return settle_file(
        entry, dest, expected, names, lambda: fetch_entry(entry, catalog, dest, config)
    )


def run_http(fault: Fault, expected: bytes, tmp_path: Path, http: StandinServer) -> Cell:
    http.set_faults(rules_for(fault, NAME, NEW_NAME))
    url = http.url + NAME
    try:
        return fetch_cell(
            "http", {"url": url}, (url, NAME), fetch_config(tmp_path), expected, tmp_path
        )
    finally:
        http.clear_faults()


def run_s3(fault: Fault, expected: bytes, tmp_path: Path, s3: S3Standin) -> Cell:
    s3.set_faults(rules_for(fault, f"{BUCKET}/{NAME}", f"{BUCKET}/{NEW_NAME}"))
    url = f"s3://{BUCKET}/{NAME}"
    config = fetch_config(tmp_path, s3_endpoint=s3.endpoint_url)
    try:
        return fetch_cell("s3", {"url": url}, (url, NAME), config, expected, tmp_path)
    finally:
        s3.clear_faults()


def run_gdrive(fault: Fault, expected: bytes, tmp_path: Path, gdrive: DriveStandin) -> Cell:
    gdrive.set_faults(rules_for(fault, DRIVE_OLD, DRIVE_NEW))
    where = {"proxy": gdrive.proxy, "ca_bundle": str(gdrive.ca_file)}
    config = fetch_config(tmp_path, gdrive=where)
    try:
        return fetch_cell(
            "gdrive", {"drive_id": DRIVE_OLD}, (DRIVE_OLD, NAME), config, expected, tmp_path
        )
    finally:
        gdrive.set_faults({})


def run_hub(fault: Fault, tmp_path: Path, hub: HubStandin) -> Cell:
    """The hub's file is what its listing names at the pinned commit: OLD, whatever the row."""
    sha = hub.sha(REPO)
    path = f"datasets/{REPO}/resolve/*/{HUB_NAME}"
    # Faults hit the GET that carries the bytes; the metadata HEAD is answered as it should be.
    rules = rules_for(fault, path, f"changed/{HUB_NAME}")
    hub.set_faults([{**rule, "method": "GET"} for rule in rules])
    dest = tmp_path / "out" / "laion_coco"
    dest.parent.mkdir()
    began = time.monotonic()
    try:
        hub_fetch("fault-table/hub", REPO, "dataset", sha, [HUB_NAME], dest, endpoint=hub.url)
    except VlprepError as err:
        assert not dest.exists(), f"{dest} exists after an error: unverified bytes installed"
        return refused("fault-table/hub", str(err), (HUB_NAME,))
    finally:
        hub.clear_faults()
    got = (dest / HUB_NAME).read_bytes()
    assert got == OLD, (
        f"SILENT WRONG RESULT: success reported, but {dest / HUB_NAME} has sha256 {sha256(got)}, "
        f"not the listed {sha256(OLD)}"
    )
    assert sorted(p.name for p in dest.iterdir()) == sorted([HUB_NAME, MANIFEST])
    return Cell("recovered", f"verified against the listing; {time.monotonic() - began:.1f} s")


# -- img2dataset: all rows in one run, as the workflow runs them ----------------------------

I2D_KEYS = list(FAULTS)  # row i of the URL list has fault I2D_KEYS[i]; one clean row after them
I2D_SEED = 13
I2D_ARGS = i2d.job_args(
    MINIGPT4_I2D, {"image_size": 32, "timeout": TIMEOUT, "samples_per_shard": 16}
)


def image_path(row: int) -> str:
    return f"img/{row:07d}.jpg"  # the URL path make_url_list gives row `row`


def new_image_path(row: int) -> str:
    return f"img/{row:07d}-v2.jpg"


def read_shards(folder: Path) -> tuple[dict[str, dict], dict[str, bytes]]:
    """({url: parquet row}, {url: stored jpg}) of img2dataset's shards in `folder`, once every
    image in them is read back whole and every success row has its image (and only those)."""
    rows: dict[str, dict] = {}
    for parquet in sorted(folder.glob("*.parquet")):
        if parquet.stem.isdigit():
            rows |= {row["url"]: row for row in pq.read_table(parquet).to_pylist()}
    images: dict[str, bytes] = {}
    for tar in sorted(folder.glob("*.tar")):
        for sample in wds.WebDataset(str(tar), shardshuffle=False):
            url = json.loads(sample["json"])["url"]
            with Image.open(io.BytesIO(sample["jpg"])) as img:
                img.load()  # raises on a truncated or corrupt image
                assert max(img.size) <= I2D_ARGS["image_size"], (url, img.size)
            images[url] = sample["jpg"]
    succeeded = {url for url, row in rows.items() if row["status"] == "success"}
    assert set(images) == succeeded, f"{folder}: images {sorted(images)}, success {succeeded}"
    return rows, images


@pytest.fixture(scope="module")
def i2d_runs(tmp_path_factory):
    """All rows through run_part with the faults on, then retry_failed (the workflow's second
    try), then run_part without faults: what each stored image must be."""
    tmp = tmp_path_factory.mktemp("i2d")
    urls = tmp / "urls.tsv"
    run = {"processes": 1, "threads": len(I2D_KEYS) + 1, "i2d_args": I2D_ARGS,
           "log_file": tmp / "img2dataset.log"}  # fmt: skip
    with ImageHost(seed=I2D_SEED, mix={"ok": 1.0}) as host:
        make_url_list(urls, host.url, len(I2D_KEYS) + 1)
        rules = []
        for row, key in enumerate(I2D_KEYS):
            rules += rules_for(FAULTS[key], image_path(row), new_image_path(row))
        for rule in rules:
            if rule["kind"] == "wrong_bytes":
                # Into the entropy-coded data, where a flip changes pixels and still decodes
                # (the middle of these small JPEGs is a table whose flip changes nothing).
                rule["offset"] = len(render_image(I2D_SEED, rule["path"])) - 16
        host.set_faults(rules)
        i2d.run_part(urls, tmp / "first", shard_offset=0, **run)
        i2d.retry_failed(tmp / "first", tmp / "retry", **run)
        # A run without faults; the changed row's image is then the new version's.
        changed = I2D_KEYS.index("change")
        host.set_faults([{"kind": "change", "after": 0, "path": image_path(changed),
                          "to": new_image_path(changed)}])  # fmt: skip
        i2d.run_part(urls, tmp / "reference", shard_offset=0, **run)
        base = host.url
    first, first_images = read_shards(tmp / "first")
    retried, retried_images = read_shards(tmp / "retry")
    reference, reference_images = read_shards(tmp / "reference")
    assert all(row["status"] == "success" for row in reference.values()), reference
    clean = base + image_path(len(I2D_KEYS))
    assert first_images[clean] == reference_images[clean]  # the same image, the same bytes
    return {"base": base, "first": first, "first_images": first_images, "retried": retried,
            "retried_images": retried_images, "reference": reference_images}  # fmt: skip


def run_img2dataset(key: str, runs: dict[str, Any]) -> Cell:
    url = runs["base"] + image_path(I2D_KEYS.index(key))
    first = runs["first"][url]
    if first["status"] == "success":
        got, how = runs["first_images"][url], "stored by the first run"
    else:
        assert first["error_message"], f"{url} failed in the first run without a reason: {first}"
        how = f"first run: {first['status']} ({first['error_message']})"
        again = runs["retried"][url]
        if again["status"] != "success":
            assert again["error_message"], f"{url} failed again without a reason: {again}"
            return Cell(
                f"refused: {again['status']}: {again['error_message']}",
                f"{how}; retry_failed: the same, for {again['url']}",
            )
        got, how = runs["retried_images"][url], f"{how}; retry_failed stored it"
    want = runs["reference"][url]
    if key == "bytes":
        differs = "other pixels than" if got != want else "the same pixels as"
        return Cell(
            "n/a: no checksum exists for a web image; a flipped byte that decodes is an image",
            f"{how}; it decodes, to {differs} a run without faults",
        )
    assert got == want, (
        f"SILENT WRONG RESULT: {url} is in a shard, but its image (sha256 {sha256(got)}) is "
        f"not what a run without faults stores ({sha256(want)})"
    )
    return Cell("recovered", how)


# -- the cells -------------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("key", list(FAULTS))
def test_cell(key, source, request, tmp_path):
    fault = FAULTS[key]
    # The catalog follows the new version; the hub's listing pins the old one (see the top).
    expected = NEW if key == "change" else OLD
    try:
        if source == "http":
            cell = run_http(fault, expected, tmp_path, request.getfixturevalue("http"))
        elif source == "s3":
            cell = run_s3(fault, expected, tmp_path, request.getfixturevalue("s3"))
        elif source == "gdrive":
            cell = run_gdrive(fault, expected, tmp_path, request.getfixturevalue("gdrive"))
        elif source == "hub":
            cell = run_hub(fault, tmp_path, request.getfixturevalue("hub"))
        else:
            cell = run_img2dataset(key, request.getfixturevalue("i2d_runs"))
    except Exception as exc:
        RESULTS[key, source] = Cell(f"FAILED: {type(exc).__name__}", str(exc).split("\n")[0])
        raise
    RESULTS[key, source] = cell
    assert cell.outcome.split(":")[0] == EXPECTED[source][key], f"{key} x {source}: {cell}"
