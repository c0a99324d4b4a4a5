"""One catalog file, from wherever it comes: manual_dir first, then its kind's downloader.

Every single-file catalog entry goes through `fetch_entry`, so the rule that fetches is written
once whatever the host. A file the user put in manual_dir (registration, signed links, a Drive
quota) wins over any download, but only once its size and checksum match the catalog: a wrong
file there is an error, never silently replaced or used. The user's file is never moved.
"""

import hashlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from vlprep.atomic import staged
from vlprep.errors import FetchError, VlprepError
from vlprep.fetch import candidate_urls, expected_digest, fetch
from vlprep.progress import bar

log = logging.getLogger(__name__)

FILE_KINDS = ("http", "s3", "gdrive", "manual")
HASH_CHUNK = 4 << 20


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
    if source.get("sha256"):
        lines.append(f"    sha256: {source['sha256']}")
    elif source.get("md5"):
        lines.append(f"    md5: {source['md5']}")
    else:
        lines.append("    checksum: none published")
    if source.get("size") is not None:
        lines.append(f"    size: {source['size']:,} bytes")
    return "\n".join(lines)


def check_file(entry: str, path: Path, source: dict) -> dict[str, str]:
    """Verify a local file against the catalog's size and checksum; return its digests."""
    size = path.stat().st_size
    if source.get("size") is not None and size != source["size"]:
        raise FetchError(
            f"{entry}: {path} has {size:,} bytes, the catalog says {source['size']:,}; "
            "it is not the catalog's file (or is incomplete): replace or remove it"
        )
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f, bar(total=size, desc=f"verify {path.name}", unit="B") as progress:
        while chunk := f.read(HASH_CHUNK):
            sha256.update(chunk)
            md5.update(chunk)
            progress.update(len(chunk))
    digests = {"sha256": sha256.hexdigest(), "md5": md5.hexdigest()}
    expected = expected_digest(source.get("sha256"), source.get("md5"))
    if expected and digests[expected[0]] != expected[1]:
        name, value = expected
        raise FetchError(
            f"{entry}: {path} has {name} {digests[name]}, the catalog says {value}; "
            "it is not the catalog's file: replace or remove it"
        )
    return digests


def install_manual(entry: str, path: Path, source: dict, dest: Path) -> dict[str, Any]:
    """Verify the user's file, then present it at `dest` (hardlink if possible, else copy)."""
    digests = check_file(entry, path, source)
    with staged(dest) as tmp:
        try:
            os.link(path, tmp)
        except OSError:  # another filesystem, or links not allowed: copy
            shutil.copyfile(path, tmp)
        os.chmod(tmp, 0o644)
    log.info("%s: using %s from manual_dir (verified)", entry, path)
    return {"url": str(path), "bytes": 0, "resumed_from": 0, "attempts": 0, **digests}


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
        "sha256": source.get("sha256"),
        "md5": source.get("md5"),
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
        return fetch(entry, urls, dest, **common)
    if kind == "s3":
        from vlprep.s3 import fetch_s3  # boto3 is imported only when an S3 entry is fetched

        return fetch_s3(entry, source["url"], dest, endpoint_url=config["s3_endpoint"], **common)
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
