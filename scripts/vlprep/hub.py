"""Hugging Face Hub entries: download through the real huggingface_hub client, then verify.

`hub_fetch` lists the repo at its pinned commit (sizes, git blob ids, LFS sha256), lets
`snapshot_download` fetch the matching files into `<dest>.partial/`, checks every file
against the listing and only then renames the directory to `dest`. So:

* nothing unverified ever sits at `dest`; a failed run leaves `dest` absent (or as it was);
* a rerun resumes: `<dest>.partial/` is huggingface_hub's own `local_dir`, and it skips the
  files it finished before (its `.cache/huggingface/download/*.metadata` record the commit).
  huggingface_hub 2.4 resumes a file cut off mid-transfer only within the same process (its
  HTTP retry sends `Range`); a file interrupted by a killed job restarts from byte 0, because
  2.4 writes each attempt to a process-unique `*.incomplete` file (huggingface_hub PR #4228).
  Those leftovers are removed here before the next attempt;
* a file that fails verification is deleted and fetched once more; if it is still wrong,
  FetchError names the repo, file and revision;
* a transient failure of a download pass (5xx, 429, 408, a lost connection or a timeout) is
  retried with vlprep.transfer's backoff (Retry-After honoured, capped by `max_backoff`), up
  to `retries` more passes: huggingface_hub 2.4 retries only 408/429 on a file's GET, so a
  hub's or mirror's passing 502/503/504 would otherwise be final. Each pass skips the files
  finished before (and huggingface_hub resumes a cut-off body itself, within the pass); then
  FetchError names the repo, revision, file and the last status.

The token comes from `$HF_TOKEN` (or the env var the entry names) and is passed explicitly:
huggingface_hub's implicit token lookup may contact huggingface.co (OAuth refresh, OIDC), and
every request must go to `endpoint` only. Telemetry is disabled. The token is scrubbed from
error messages and from huggingface_hub's log records while a download runs.
"""

import hashlib
import json
import logging
import os
import re
import shutil
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlprep import __version__
from vlprep.atomic import remove_path, replace, staged
from vlprep.errors import FetchError
from vlprep.progress import enabled as progress_enabled
from vlprep.transfer import Backoff, hash_file, parse_retry_after

# huggingface_hub reads these when it is imported; set them before anyone imports it.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")

import httpx2  # noqa: E402  (huggingface_hub's HTTP client)
from huggingface_hub import HfApi, constants, snapshot_download  # noqa: E402
from huggingface_hub.errors import (  # noqa: E402
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile  # noqa: E402
from huggingface_hub.utils import filter_repo_objects  # noqa: E402
from huggingface_hub.utils import tqdm as hf_tqdm  # noqa: E402

# Also when huggingface_hub was imported before us: no telemetry, and no Xet transfers (they go
# to Xet storage hosts, not to the endpoint) unless HF_HUB_DISABLE_XET=0 asks for them.
constants.HF_HUB_DISABLE_TELEMETRY = True
constants.HF_HUB_DISABLE_XET = os.environ["HF_HUB_DISABLE_XET"].lower() not in ("0", "false", "no")

log = logging.getLogger(__name__)

HUB_WEBSITE = "https://huggingface.co"  # where terms are accepted and tokens made, always
TOKENS_PAGE = f"{HUB_WEBSITE}/settings/tokens"
MANIFEST = ".vlprep-hub.json"  # hidden, so `*.tar` / `*.parquet` globs never see it
HF_CACHE_DIR = Path(".cache") / "huggingface"  # huggingface_hub's bookkeeping in local_dir
COMMIT_RE = re.compile(r"[0-9a-f]{40}")
TOKEN_RE = re.compile(r"hf_[A-Za-z0-9]{16,}")
BEARER_RE = re.compile(r"(?i)(bearer\s+)\S+")
ATTEMPTS = 2  # snapshot passes: a file that fails verification is fetched once more
RETRIED_STATUSES = (408, 429)  # and every 5xx: a passing overload or outage
# What huggingface_hub's own retries treat as a lost connection (ProxyError is not one).
RETRIED_ERRORS = (httpx2.TimeoutException, httpx2.NetworkError, httpx2.RemoteProtocolError)
# huggingface_hub's size check names the file (or its URL), cut to its last 40 characters.
WRONG_SIZE_RE = re.compile(r"but has size \d+ \((?:\(…\))?(.*?)\)\.")


class _Quiet(hf_tqdm):
    """huggingface_hub's progress bars, switched off (vlprep.progress.enabled)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        super().__init__(*args, **kwargs)


def hub_fetch(
    entry: str,
    repo_id: str,
    repo_type: str,
    revision: str,
    patterns: list[str] | None,
    dest: Path,
    *,
    endpoint: str | None,
    token_env: str = "HF_TOKEN",
    expected_files: int | None = None,
    retries: int = 5,
    backoff: float = 1.0,
    max_backoff: float = 60.0,
    connections: int = 1,
) -> dict[str, Any]:
    """Download the files of `repo_id` at `revision` matching `patterns` into `dest`, verified.

    `revision` should be a 40-hex commit; a branch or tag is resolved (and a warning logged:
    the result then depends on when it runs). `patterns` are huggingface_hub allow_patterns
    (fnmatch; None: every file). `expected_files`, if given, must equal the number of matching
    files. `retries`, `backoff` and `max_backoff` are the transient-failure policy of the
    other downloaders (vlprep.transfer.Backoff): download passes after the first, the first
    pause and the longest one. Returns a report (also written to `dest/.vlprep-hub.json`):
    repo_id, repo_type, revision, sha, endpoint, files [{path, size, sha256|git_oid}], bytes,
    seconds. Raises FetchError with what to do when the hub refuses or the bytes are wrong.
    """
    dest = Path(dest)
    endpoint = (endpoint or constants.ENDPOINT).rstrip("/")
    token = os.environ.get(token_env) or None
    where = _Where(entry, repo_id, repo_type, revision, endpoint, token_env)
    partial = dest.with_name(dest.name + ".partial")
    started = time.monotonic()
    with _scrubbed_logs(token):
        try:
            api = HfApi(
                endpoint=endpoint,
                token=token or False,
                library_name="vlprep",
                library_version=__version__,
            )
            sha = _pinned(api, where)
            where.sha = sha
            listing = _listing(api, where, patterns)
            if expected_files is not None and len(listing) != expected_files:
                raise FetchError(
                    f"{where}: {len(listing)} files match {patterns}, the catalog expects "
                    f"{expected_files}; check the entry's include patterns and files count"
                )
            log.info(
                "%s: %d files (%.1f MB) of %s %s at %s from %s",
                entry,
                len(listing),
                sum(f.size for f in listing.values()) / 1e6,
                repo_type,
                repo_id,
                sha[:12],
                endpoint,
            )
            policy = Backoff(retries, backoff, max_backoff)
            _fetch_big_files(where, listing, partial, token, policy, connections)
            _download_verified(where, listing, patterns, partial, token, policy)
        except FetchError as exc:
            raise FetchError(_scrub(str(exc), token)) from None
        except Exception as exc:  # noqa: BLE001 - every hub failure becomes a FetchError
            message = _explain(exc, where, token)
            if message is None:
                raise
            raise FetchError(_scrub(message, token)) from None
    report = _report(where, listing, time.monotonic() - started)
    _install(partial, dest, listing, report)
    log.info(
        "%s: %d files verified into %s in %.1f s", entry, len(listing), dest, report["seconds"]
    )
    return report


class _Where:
    """What is being fetched, for messages: `entry (repo_type repo_id @ revision)`."""

    def __init__(
        self, entry: str, repo_id: str, repo_type: str, revision: str, endpoint: str, env: str
    ) -> None:
        self.entry = entry
        self.repo_id = repo_id
        self.repo_type = repo_type or "model"
        self.revision = revision or "main"
        self.endpoint = endpoint
        self.token_env = env
        self.sha: str | None = None

    def __str__(self) -> str:
        return f"{self.entry} ({self.repo_type} {self.repo_id} @ {self.revision})"

    @property
    def page(self) -> str:
        """The repo's page on the Hub website, where gated terms are accepted."""
        prefix = "" if self.repo_type == "model" else f"{self.repo_type}s/"
        return f"{HUB_WEBSITE}/{prefix}{self.repo_id}"


def _pinned(api: HfApi, where: _Where) -> str:
    if COMMIT_RE.fullmatch(where.revision):
        return where.revision
    info = api.repo_info(where.repo_id, repo_type=where.repo_type, revision=where.revision)
    log.warning(
        "%s: revision %r is not a commit; resolved it to %s. Pin that sha in the catalog so "
        "later runs download the same files.",
        where.entry,
        where.revision,
        info.sha,
    )
    return info.sha


def _listing(api: HfApi, where: _Where, patterns: list[str] | None) -> dict[str, RepoFile]:
    """The repo's files at the commit that match `patterns`, as the hub describes them."""
    tree = api.list_repo_tree(
        where.repo_id, recursive=True, revision=where.sha, repo_type=where.repo_type
    )
    files = {item.path: item for item in tree if isinstance(item, RepoFile)}
    wanted = list(filter_repo_objects(items=list(files), allow_patterns=patterns))
    if not wanted:
        raise FetchError(
            f"{where}: no file of the repo matches {patterns} (it has {len(files)} files); "
            "check the entry's include patterns"
        )
    for path in wanted:
        if files[path].xet_hash and not files[path].lfs:
            log.debug("%s: %s is Xet-only; verifying its size only", where.entry, path)
    return {path: files[path] for path in sorted(wanted)}


def _fetch_big_files(
    where: _Where,
    listing: dict[str, RepoFile],
    partial: Path,
    token: str | None,
    policy: Backoff,
    connections: int,
) -> None:
    """Big LFS files over several connections (vlprep.ranged, from the file's resolve URL at
    the pinned commit, verified against the listed sha256) before snapshot_download, which
    then finds them complete: huggingface_hub fetches each file as one stream (its fast path,
    hf_xet, needs Xet storage, which it is kept off)."""
    from huggingface_hub import hf_hub_url

    from vlprep.fetch import fetch
    from vlprep.ranged import SEGMENT

    if connections < 2:
        return
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    for path, remote in listing.items():
        target = partial / path
        if remote.lfs is None or remote.size < 2 * SEGMENT or _check_size(target, remote):
            continue
        url = hf_hub_url(
            where.repo_id, path, repo_type=where.repo_type, revision=where.sha,
            endpoint=where.endpoint,
        )  # fmt: skip
        try:
            fetch(
                where.entry,
                [url],
                target,
                size=remote.size,
                sha256=remote.lfs.sha256,
                retries=policy.retries,
                backoff=policy.base,
                max_backoff=policy.cap,
                connections=connections,
                headers=auth,
            )
        except FetchError as err:
            # snapshot_download tries it once more its own way, and says what is wrong
            log.warning("%s: %s over several connections failed: %s", where.entry, path, err)


def _check_size(path: Path, remote: RepoFile) -> bool:
    return path.is_file() and path.stat().st_size == remote.size


def _download_verified(
    where: _Where,
    listing: dict[str, RepoFile],
    patterns: list[str] | None,
    partial: Path,
    token: str | None,
    policy: Backoff,
) -> None:
    """Let snapshot_download fill `partial`, verify it, retry the bad files once."""
    partial.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(partial)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            _snapshot_retrying(where, listing, patterns, partial, token, policy)
        except OSError as exc:
            if "Consistency check failed" not in str(exc):
                raise
            raise FetchError(_wrong_size(where, exc, listing, partial)) from None
        bad = {path: why for path, f in listing.items() if (why := _check(partial / path, f))}
        if not bad:
            return
        for path, why in bad.items():
            log.warning("%s: %s: %s (attempt %d)", where.entry, path, why, attempt)
            _forget(partial, path)
    detail = "\n".join(f"  {path}: {why}" for path, why in bad.items())
    raise FetchError(
        f"{where}: {len(bad)} file(s) differ from what the hub lists for revision {where.sha} "
        f"at {where.endpoint}, after {ATTEMPTS} attempts:\n{detail}\nWhat to do: retry later "
        "(a mirror or proxy may serve stale bytes); if it persists, report it to the repo owners."
    )


def _snapshot_retrying(
    where: _Where,
    listing: dict[str, RepoFile],
    patterns: list[str] | None,
    partial: Path,
    token: str | None,
    policy: Backoff,
) -> None:
    """snapshot_download into `partial`; after a transient failure, pause as `policy` says
    and run it again (it skips the files finished before), up to `policy.retries` times."""
    quiet = not progress_enabled()  # VLPREP_PROGRESS=0, or a SLURM job log
    for attempt in range(1, policy.retries + 2):
        try:
            snapshot_download(
                where.repo_id,
                repo_type=where.repo_type,
                revision=where.sha,
                allow_patterns=patterns,
                local_dir=partial,
                endpoint=where.endpoint,
                token=token or False,
                library_name="vlprep",
                library_version=__version__,
                tqdm_class=_Quiet if quiet else None,
            )
            return
        except Exception as exc:  # noqa: BLE001 - sorted into transient or not just below
            failure = _transient(exc)
            if failure is None:
                raise
            if attempt > policy.retries:
                raise FetchError(_gave_up(where, listing, partial, failure, attempt)) from None
            delay = policy.delay(attempt, failure.retry_after)
            log.warning(
                "%s: %s for %s; retry %d/%d in %.1f s",
                where.entry,
                failure.what,
                _failed_file(failure, listing, partial),
                attempt,
                policy.retries,
                delay,
            )
            time.sleep(delay)


@dataclass(frozen=True)
class _Transient:
    """A failure that waiting may cure: what happened, to which URL, and the wait the server
    asked for (Retry-After, seconds); `status` is None for a lost connection or a timeout."""

    what: str
    url: str | None
    retry_after: float | None
    status: int | None = None


def _transient(exc: BaseException | None) -> _Transient | None:
    """The transient failure behind `exc` (itself, or what caused it: huggingface_hub wraps a
    failed metadata request in LocalEntryNotFoundError), or None if `exc` is final."""
    for _ in range(10):
        if exc is None:
            return None
        if isinstance(exc, HfHubHTTPError):
            response = exc.response
            status = response.status_code
            if status not in RETRIED_STATUSES and status < 500:
                return None
            return _Transient(
                f"HTTP {status} {response.reason_phrase}".rstrip(),
                str(response.request.url),
                parse_retry_after(response.headers.get("Retry-After")),
                status,
            )
        if isinstance(exc, RETRIED_ERRORS):
            try:
                url = str(exc.request.url)
            except RuntimeError:  # httpx2 raises it when the error has no request
                url = None
            return _Transient(f"{type(exc).__name__}: {_first_line(exc)}", url, None)
        exc = exc.__cause__ or exc.__context__
    return None


def _failed_file(failure: _Transient, listing: dict[str, RepoFile], partial: Path) -> str:
    """The repo file the failed request was for: from its `/resolve/<rev>/<path>` URL, else
    (a CDN URL, a listing request) the listed files not finished yet."""
    path = urllib.parse.unquote(urllib.parse.urlsplit(failure.url or "").path)
    _, resolve, rest = path.partition("/resolve/")
    if resolve and "/" in rest:
        return rest.split("/", 1)[1]
    unfinished = [name for name in listing if not (partial / name).is_file()]
    if len(unfinished) == 1:
        return unfinished[0]
    shown = ", ".join(unfinished[:3]) + (", ..." if len(unfinished) > 3 else "")
    return f"one of {len(unfinished)} unfinished files ({shown})"


def _gave_up(
    where: _Where,
    listing: dict[str, RepoFile],
    partial: Path,
    failure: _Transient,
    attempts: int,
) -> str:
    finished = sum((partial / name).is_file() for name in listing)
    if failure.status is None:
        check = "check the network, proxy and hf_endpoint in the config, then run again"
    else:
        check = "the hub (or the mirror in hf_endpoint) is failing for now: run again later"
    return (
        f"{where}: could not download {_failed_file(failure, listing, partial)} at revision "
        f"{where.sha} from {where.endpoint}: {failure.what} (gave up after {attempts} "
        f"attempts).\nWhat to do: {check}; the {finished} of {len(listing)} files finished "
        f"are kept in {partial} and not downloaded again."
    )


def _wrong_size(where: _Where, exc: OSError, listing: dict[str, RepoFile], partial: Path) -> str:
    """The message for huggingface_hub's size check, naming the file. huggingface_hub names it
    by at most its last 40 characters (`(…)6-b9c6-e6757637749d-c000.snappy.parquet`, the same
    for every LAION-COCO part), so: the files not in `partial` whose path ends that way."""
    match = WRONG_SIZE_RE.search(str(exc))
    tail = match.group(1) if match else ""
    unfinished = [path for path in listing if not (partial / path).is_file()]
    named = [path for path in unfinished if path.endswith(tail) or tail.endswith("/" + path)]
    which = "a file" if not named else named[0] if len(named) == 1 else f"one of {named}"
    return (
        f"{where}: revision {where.sha}: {which} arrived with the wrong size "
        f"({_first_line(exc)}). Rerun; if it persists, the endpoint serves bad bytes."
    )


def _check(path: Path, remote: RepoFile) -> str | None:
    """Why the local file is not the listed one, or None if size and hash match."""
    if not path.is_file():
        return "missing after download"
    size = path.stat().st_size
    if size != remote.size:
        return f"size {size} bytes, the hub lists {remote.size}"
    if remote.lfs is not None:
        got = hash_file(path, hashlib.sha256())
        if got != remote.lfs.sha256:
            return f"sha256 {got}, the hub lists {remote.lfs.sha256}"
    elif remote.blob_id and not remote.xet_hash:
        got = hash_file(path, hashlib.sha1(b"blob %d\0" % size))
        if got != remote.blob_id:
            return f"git blob id {got}, the hub lists {remote.blob_id}"
    return None


def _forget(partial: Path, path: str) -> None:
    """Delete a bad file and huggingface_hub's record of it, so the next pass fetches it."""
    (partial / path).unlink(missing_ok=True)
    (partial / HF_CACHE_DIR / "download" / f"{path}.metadata").unlink(missing_ok=True)


def _remove_leftovers(partial: Path) -> None:
    """Drop `*.incomplete` files of killed runs: huggingface_hub 2.4 never reuses them."""
    download = partial / HF_CACHE_DIR / "download"
    if not download.is_dir():
        return
    for leftover in download.rglob("*.incomplete"):
        log.info("removing %s left by an interrupted download", leftover)
        leftover.unlink(missing_ok=True)


def _report(where: _Where, listing: dict[str, RepoFile], seconds: float) -> dict[str, Any]:
    files = []
    for path, f in listing.items():
        item: dict[str, Any] = {"path": path, "size": f.size}
        if f.lfs is not None:
            item["sha256"] = f.lfs.sha256
        else:
            item["git_oid"] = f.blob_id
        files.append(item)
    return {
        "entry": where.entry,
        "repo_id": where.repo_id,
        "repo_type": where.repo_type,
        "revision": where.revision,
        "sha": where.sha,
        "endpoint": where.endpoint,
        "files": files,
        "bytes": sum(f.size for f in listing.values()),
        "seconds": round(seconds, 3),
    }


def _install(partial: Path, dest: Path, listing: dict[str, RepoFile], report: dict) -> None:
    """Strip huggingface_hub's bookkeeping and stray files; rename `partial` to `dest`."""
    remove_path(partial / HF_CACHE_DIR)
    cache = partial / HF_CACHE_DIR.parent
    if cache.is_dir() and not any(cache.iterdir()):
        cache.rmdir()
    keep = set(listing)
    for path in sorted(partial.rglob("*"), reverse=True):  # children before parents
        rel = path.relative_to(partial).as_posix()
        if path.is_dir() and not path.is_symlink():
            if not any(path.iterdir()):
                path.rmdir()
        elif rel not in keep:
            log.info("removing %s: not part of this download", path)
            path.unlink()
    with staged(partial / MANIFEST) as tmp:
        tmp.write_text(json.dumps(report, indent=1) + "\n")
    dest.parent.mkdir(parents=True, exist_ok=True)
    replace(partial, dest)


# -- errors ----------------------------------------------------------------------------------


def _explain(exc: Exception, where: _Where, token: str | None) -> str | None:
    """A message saying what went wrong and what to do, or None for an unexpected error."""
    first = _first_line(exc)
    if isinstance(exc, GatedRepoError):
        if token:
            return (
                f"{where}: {where.repo_id} is gated and the token in ${where.token_env} has no "
                f"access: accept the terms at {where.page} with the account that owns the token "
                f"(or make a new read token at {TOKENS_PAGE}). Hub said: {first}"
            )
        return (
            f"{where}: {where.repo_id} is gated: accept the terms at {where.page} and set "
            f"{where.token_env} (a read token from {TOKENS_PAGE}). Hub said: {first}"
        )
    if isinstance(exc, RevisionNotFoundError):
        return (
            f"{where}: the pinned revision {where.revision} in the catalog no longer exists in "
            f"{where.repo_type} {where.repo_id} at {where.endpoint} (history rewritten or the "
            f"repo re-created). Check {where.page}/commits and pin a current commit sha."
        )
    if isinstance(exc, RepositoryNotFoundError):
        hint = "" if token else f" If it is private, set {where.token_env}."
        return (
            f"{where}: {where.repo_type} repo {where.repo_id} does not exist at "
            f"{where.endpoint} (or is private). Check repo and repo_type in the catalog.{hint}"
        )
    if isinstance(exc, EntryNotFoundError) and not isinstance(exc, LocalEntryNotFoundError):
        return (
            f"{where}: a listed file is missing on the hub at revision {where.sha}: {first}. "
            "Retry later; if it persists, pin another revision."
        )
    if isinstance(exc, (httpx2.TransportError, LocalEntryNotFoundError)) or _is_connection(exc):
        return (
            f"{where}: could not reach {where.endpoint} (huggingface_hub retried): {first}. "
            "Check the network, proxy and hf_endpoint in the config, then rerun: finished "
            "files are kept and not downloaded again."
        )
    if isinstance(exc, HfHubHTTPError):
        return f"{where}: the hub at {where.endpoint} refused: {first}. Retry later."
    return None


def _is_connection(exc: BaseException) -> bool:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, (httpx2.TransportError, ConnectionError)):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines[:3])[:500] if lines else type(exc).__name__


def _scrub(text: str, token: str | None) -> str:
    """Text with the token (and anything that looks like a hub token) replaced."""
    if token:
        text = text.replace(token, "<token>")
    text = TOKEN_RE.sub("hf_<redacted>", text)
    return BEARER_RE.sub(r"\1<token>", text)


class _ScrubFilter(logging.Filter):
    def __init__(self, token: str | None) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is not ours to fix
            return True
        clean = _scrub(message, self.token)
        if clean != message:
            record.msg, record.args = clean, None
        return True


@contextmanager
def _scrubbed_logs(token: str | None) -> Iterator[None]:
    """Scrub the token from records of huggingface_hub's and httpx2's loggers meanwhile."""
    filt = _ScrubFilter(token)
    names = [
        name
        for name in list(logging.root.manager.loggerDict)
        if name.split(".")[0] in ("huggingface_hub", "httpx2", "httpx", "httpcore", "vlprep")
    ]
    loggers = [logging.getLogger(name) for name in names]
    for logger in loggers:
        logger.addFilter(filt)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(filt)


def clear_partial(dest: Path) -> None:
    """Forget a half-finished download of `dest` (its `<dest>.partial/`)."""
    shutil.rmtree(Path(dest).with_name(Path(dest).name + ".partial"), ignore_errors=True)
