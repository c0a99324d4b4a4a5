"""One catalog file, from wherever it comes: manual_dir first, then its kind's downloader.

Every single-file catalog entry goes through `fetch_entry`, so the rule that fetches is written
once whatever the host. A file the user put in manual_dir (registration, signed links, a Drive
quota) wins over any download, but only once its size and checksum match the catalog: a wrong
file there is an error, never silently replaced or used. The user's file is never moved.

Where the catalog has no checksum, a file (downloaded or the user's) must start like its
format (vlprep.sniff). An archive that still turns out broken when it is unpacked is dealt with
by `extract_download`: an unverified download is deleted so the next run fetches it again,
and a file from manual_dir is named as the one to replace, so a rerun never loops on it.
"""

import filecmp
import json
import logging
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vlprep.atomic import staged
from vlprep.errors import CatalogError, CorruptArchiveError, FetchError, VlprepError
from vlprep.extract import extract
from vlprep.fetch import candidate_urls, fetch
from vlprep.progress import bar
from vlprep.ranged import DEFAULT_CONNECTIONS
from vlprep.sniff import (
    SNIFF_BYTES,
    describe,
    expected_format,
    format_problem,
    implausibly_small,
)
from vlprep.space import disk_full, is_disk_full
from vlprep.transfer import CHECKSUMS, CHUNK, Digests, catalog_digest

log = logging.getLogger(__name__)

FILE_KINDS = ("http", "s3", "gdrive", "manual")


class ManualFileMissing(VlprepError):
    """A file only a person can download is not in manual_dir."""


def manual_candidate(source: dict, manual_dir: Path) -> Path | None:
    """The file for `source` in manual_dir, by the catalog's file name, if the user put one."""
    path = Path(manual_dir) / source["filename"]
    return path if path.is_file() else None


def where_to_get(entry: str, source: dict, manual_dir: Path) -> str:
    """One paragraph telling a person how to supply `entry` by hand."""
    lines = [f"  {entry}: save it as {Path(manual_dir) / source['filename']}"]
    if source.get("instructions"):
        lines.append(f"    where: {' '.join(source['instructions'].split())}")
    elif source.get("url"):
        lines.append(f"    where: {source['url']}")
    elif source.get("drive_id"):
        lines.append(f"    where: https://drive.google.com/file/d/{source['drive_id']}/view")
    expected = catalog_digest(source)
    if expected:
        lines.append(f"    {expected[0]}: {expected[1]}")
    else:
        lines.append("    checksum: none published")
    if source.get("size") is not None:
        lines.append(f"    size: {source['size']:,} bytes")
    return "\n".join(lines)


def check_file(entry: str, path: Path, source: dict) -> dict[str, str | None]:
    """Verify a local file against the catalog's size and checksum; return its digests
    (sha256, sha1, md5; None for one not computed).

    Without a checksum, the file must start like its format and not be tiny next to the
    catalog's approx_size.
    """
    size = path.stat().st_size
    if source.get("size") is not None and size != source["size"]:
        raise FetchError(
            f"{entry}: {path} has {size:,} bytes, the catalog says {source['size']:,}; "
            "it is not the catalog's file (or is incomplete): replace or remove it"
        )
    expected = catalog_digest(source)
    # sha256 and md5 are always reported; sha1 only when it is the checksum that settles it.
    running = Digests(["sha256", "md5"] + (["sha1"] if expected and expected[0] == "sha1" else []))
    head = b""
    with (
        open(path, "rb") as f,
        running.feeder() as feed,
        bar(total=size, desc=f"verify {path.name}", unit="B") as progress,
    ):
        while chunk := f.read(CHUNK):
            head = head or chunk[:SNIFF_BYTES]
            feed(chunk)
            progress.update(len(chunk))
    digests = {name: running.hexdigest(name) for name in CHECKSUMS}
    if expected and digests[expected[0]] != expected[1]:
        name, value = expected
        raise FetchError(
            f"{entry}: {path} has {name} {digests[name]}, the catalog says {value}; "
            "it is not the catalog's file: replace or remove it"
        )
    if not expected:
        _check_unverified_file(entry, path, source, head, size)
    return digests


def _check_unverified_file(entry: str, path: Path, source: dict, head: bytes, size: int) -> None:
    """A local file no checksum vouches for: its first bytes and its size must fit."""
    fmt = expected_format(source["filename"], source.get("archive"))
    problem = format_problem(head, fmt, complete=True)
    if problem:
        raise FetchError(
            f"{entry}: {path} is not the catalog's file: {problem}. Replace it with "
            f"{describe(fmt)} (or remove it to have it downloaded, if it can be)"
        )
    if implausibly_small(size, source.get("approx_size")):
        raise FetchError(
            f"{entry}: {path} has {size:,} bytes, but the catalog puts this file at about "
            f"{source['approx_size']:,} (approx_size): it is not the catalog's file (or is "
            "incomplete): replace or remove it"
        )


def install_manual(entry: str, path: Path, source: dict, dest: Path) -> dict[str, Any]:
    """Verify the user's file, then present it at `dest` (hardlink if possible, else copy)."""
    digests = check_file(entry, path, source)
    try:
        with staged(dest) as tmp:
            try:
                os.link(path, tmp)
            except OSError:  # another filesystem, or links not allowed: copy
                shutil.copyfile(path, tmp)
            os.chmod(tmp, 0o644)
    except OSError as err:
        if not is_disk_full(err):
            raise
        raise disk_full(
            err,
            dest,
            entry=entry,
            needed=path.stat().st_size,
            then=(
                f"Nothing was left at {dest} and {path} is untouched: free some space (or move "
                "data_root to a bigger disk) and run the same command again to copy it."
            ),
        ) from None
    log.info("%s: using %s from manual_dir (verified)", entry, path)
    return {"url": str(path), "bytes": 0, "resumed_from": 0, "attempts": 0, **digests}


# Beside each downloaded file: what its download found (the manifests' record of the sha256 of
# sources that publish none, and of where every file came from).
FETCH_RECORD = ".vlprep-fetch.json"


def record_fetch(entry: str, dest: Path, result: dict[str, Any]) -> None:
    """Write what fetch_entry returned for `dest` to FETCH_RECORD beside it."""
    record = {
        "entry": entry,
        "filename": dest.name,
        "size": dest.stat().st_size,
        **{name: result[name] for name in CHECKSUMS if result.get(name)},
        "source_url": result.get("url"),
        "fetched": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with staged(dest.parent / FETCH_RECORD) as tmp:
        tmp.write_text(json.dumps(record, indent=1) + "\n")


def fetch_entry(entry: str, source: dict, dest: Path, config: dict) -> dict[str, Any]:
    """Deliver catalog entry `entry` (its `source` fields) to `dest`, verified.

    `config` is the workflow's config: manual_dir (resolved), mirrors, fetch settings,
    s3_endpoint and gdrive.
    """
    dest = Path(dest)
    manual_dir = Path(config["manual_dir"])
    local = manual_candidate(source, manual_dir)
    if local is not None:
        return install_manual(entry, local, source, dest)
    kind = source["kind"]
    if kind == "manual":
        raise ManualFileMissing(
            f"{entry} must be downloaded by hand:\n{where_to_get(entry, source, manual_dir)}"
        )
    try:
        return _download(entry, kind, source, dest, config)
    except FetchError as err:
        raise FetchError(
            f"{err}\nOr download it by hand:\n{where_to_get(entry, source, manual_dir)}"
        ) from None


def _download(entry: str, kind: str, source: dict, dest: Path, config: dict) -> dict[str, Any]:
    settings = config["fetch"]
    common = {
        "size": source.get("size"),
        **{name: source.get(name) for name in CHECKSUMS},
        "archive": source.get("archive"),
        "approx_size": source.get("approx_size"),
        "retries": settings["retries"],
        "timeout": settings["timeout"],
        "max_backoff": settings["max_backoff"],
    }
    if kind == "http":
        urls = candidate_urls(source["url"], config.get("mirrors"))
        if not settings["try_original"]:
            urls = [url for url in urls if url != source["url"]]
        if not urls:
            raise FetchError(
                f"{entry}: no mirror matches {source['url']} and fetch.try_original is false; "
                "add a mirror or allow the original URL"
            )
        connections = settings.get("connections", DEFAULT_CONNECTIONS)  # schema default
        return fetch(entry, urls, dest, connections=connections, **common)
    if kind == "s3":
        from vlprep.s3 import fetch_s3  # boto3 is imported only when an S3 entry is fetched

        return fetch_s3(
            entry,
            source["url"],
            dest,
            endpoint_url=config["s3_endpoint"],
            connections=settings.get("connections", DEFAULT_CONNECTIONS),
            **common,
        )
    if kind == "gdrive":
        from vlprep.gdrive import fetch_gdrive

        gdrive = config["gdrive"]
        return fetch_gdrive(
            entry,
            source["drive_id"],
            dest,
            proxy=gdrive["proxy"],
            ca_bundle=gdrive["ca_bundle"],
            **common,
        )
    raise FetchError(f"{entry}: unknown source kind {kind!r}; expected one of {FILE_KINDS}")


def extract_download(
    entry: str,
    archive: Path,
    dest: Path,
    source: dict,
    manual_dir: Path,
    **options: Any,
) -> dict:
    """Unpack the store's download of `entry` (vlprep.extract.extract with `options`); if it
    is not a sound archive, do and say what makes the next run right (`bad_archive`).

    `archive` is the downloaded file or, for an `hf` entry, the folder its repository files
    were downloaded into, which holds the archive at its `archive_file` path.
    """
    archive = stored_archive(entry, Path(archive), source)
    try:
        return extract(archive, Path(dest), entry=entry, **options)
    except CorruptArchiveError as err:
        raise bad_archive(entry, archive, source, Path(manual_dir), err) from None


def stored_archive(entry: str, download: Path, source: dict) -> Path:
    """The archive file of a download: the download itself, or for an `hf` entry its
    `archive_file` inside the download folder (already verified against the hub's listing by
    vlprep.hub, so nothing is checked again here)."""
    if source.get("kind") != "hf":
        return download
    archive = download / source["archive_file"]
    if not archive.is_file():
        raise CatalogError(
            f"{entry}: the hub download {download} has no {source['archive_file']}, the file "
            f"the catalog says to unpack (archive_file). Either the repository {source['repo']} "
            "has no such file at the pinned revision, or the entry's include patterns "
            f"({source.get('include') or 'all files'}) did not fetch it: fix archive_file or "
            "include in the catalog; a changed include downloads the entry again."
        )
    return archive


def flatten_downloads(
    downloads: dict[str, Path],
    dest: Path,
    sources: dict[str, dict],
    manual_dir: Path,
    **options: Any,
) -> dict:
    """Flatten the store's downloads {entry: archive} into `dest` (vlprep.flatten, `options`);
    if one of them is not a sound archive, act on that one as `bad_archive` says."""
    from vlprep.flatten import flatten_archives

    archives = {Path(archive): entry for entry, archive in downloads.items()}
    try:
        return flatten_archives(list(archives), Path(dest), **options)
    except CorruptArchiveError as err:
        entry = archives.get(Path(err.archive)) if err.archive else None
        if entry is None:  # two archives clash: neither alone is to blame
            raise
        raise bad_archive(entry, Path(err.archive), sources[entry], Path(manual_dir), err) from None


def bad_archive(
    entry: str, archive: Path, source: dict, manual_dir: Path, err: CorruptArchiveError
) -> CorruptArchiveError:
    """The error for a download that turned out not to be a sound archive, after acting on it.

    Deleting the file is what makes a rerun fetch it again (Snakemake deletes a failed job's
    outputs, never its inputs), but only where that can help:

    * the catalog's checksum matched: the file is exactly what upstream publishes, and a new
      download would bring the same bytes; it is kept;
    * the file came from manual_dir: the store's copy goes, and the user's file is named as the
      one to replace (deleting the copy alone would only link the same file again);
    * otherwise it was never verified: it is deleted so the next run downloads it again.

    A hub file (kind hf) was verified against the hub's own listing when it was fetched, so it
    is kept as well (`_bad_hub_archive`).
    """
    if source.get("kind") == "hf":
        return _bad_hub_archive(entry, archive, source, err)
    cause = err.__cause__ or err
    fmt = expected_format(archive.name, source.get("archive"))
    archive_kind = source.get("archive") or "none"
    what = f"{archive} (catalog entry {entry}) is not a sound " + (
        f"{archive_kind} archive" if archive_kind != "none" else "archive"
    )
    sniffed = _sniffed(archive, fmt)
    found = f"{what}: {cause}{sniffed}. Nothing was extracted."
    expected = catalog_digest(source)
    if expected:
        return CorruptArchiveError(
            f"{found} It matches the catalog's {expected[0]}, so it is exactly the file "
            "upstream publishes, and downloading it again would bring the same bytes: it was "
            "kept. Check upstream for a fixed or newer file and update the catalog entry's "
            "url, size and checksum."
        )
    manual = Path(manual_dir) / source.get("filename", archive.name)
    from_manual = _same_file(archive, manual)
    archive.unlink(missing_ok=True)
    if from_manual:
        return CorruptArchiveError(
            f"{found} It is your file {manual} from manual_dir (the catalog has no checksum "
            f"to check it against): replace {manual} with a good copy"
            + ("" if source.get("kind") == "manual" else ", or delete it to download the file")
            + ", then run again. The store's copy was deleted."
        )
    return CorruptArchiveError(
        f"{found} The catalog has no checksum for it, so nothing proved the download right: it "
        "was deleted from the store, and the next run downloads it again. If that fails the "
        "same way, the host serves something else (an error page, a cut-off file): use a "
        f"mirror, or download the file by hand and save it as {manual}."
    )


def _bad_hub_archive(
    entry: str, archive: Path, source: dict, err: CorruptArchiveError
) -> CorruptArchiveError:
    """A hub file that is not a sound archive: it is the repository's file as the hub lists it
    at the downloaded commit (vlprep.hub checked its size and hash), so it is kept."""
    from vlprep.hub import MANIFEST  # (imports huggingface_hub: only on this failure path)

    cause = err.__cause__ or err
    sniffed = _sniffed(archive, expected_format(archive.name, source.get("archive")))
    folder = archive.parents[len(Path(source["archive_file"]).parts) - 1]
    return CorruptArchiveError(
        f"{archive} (catalog entry {entry}) is not a sound {source.get('archive')} archive: "
        f"{cause}{sniffed}. Nothing was extracted. It is {source['archive_file']} of the hub "
        f"repository {source['repo']} exactly as the hub lists it at the downloaded commit "
        f"(see {folder / MANIFEST}), so downloading it again would bring the same "
        "bytes: it was kept. Check the repository for a fixed file and pin that revision in "
        "the catalog entry."
    )


def _sniffed(archive: Path, fmt: str | None) -> str:
    """What the archive's first bytes say it is instead, as a clause; empty if they fit."""
    try:
        with open(archive, "rb") as f:
            problem = format_problem(f.read(SNIFF_BYTES), fmt, complete=True)
    except OSError:
        return ""
    return f"; {problem}" if problem else ""


def _same_file(store: Path, manual: Path) -> bool:
    """True if the store's file is (a hard link to, or a copy of) the one in manual_dir.

    install_manual links it when it can and copies it across filesystems; a copy is
    compared byte for byte, which costs a read of both only on this failure path.
    """
    try:
        if os.path.samefile(store, manual):
            return True
        if store.stat().st_size != manual.stat().st_size:
            return False
        return filecmp.cmp(store, manual, shallow=False)
    except OSError:
        return False
