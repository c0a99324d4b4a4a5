"""Google Drive entries: fetched with gdown, resumable, verified, and never an HTML page.

Drive is not a plain file host. A large file first answers with a virus-scan confirmation
page, a popular one with a quota page, a private or deleted one with a sign-in or error page,
all HTML and often with status 200. gdown (pinned) knows those pages, so it turns the file id
into the file; this module adds what the workflow needs around it:

* gdown writes into its partial file beside `dest` (`<dest>.part` + 8 random characters +
  `.part`) and renames it to `<dest>.part` when the transfer is complete;
* a dropped connection or a timeout is resumed by gdown itself (its `retries`), with Range +
  If-Range on the URL it has just confirmed, so nothing is sent twice. When gdown gives up, or
  Drive will not resume, the next attempt (vlprep.transfer's backoff) resolves the Drive URL
  afresh, as a later run does, and resumes the partial file (gdown's `resume=True`; that
  opens one full response it then drops, so a little is sent twice);
* a 429 or 5xx from Drive is retried like a dropped connection, after its Retry-After if it
  sends one (capped by `max_backoff`). gdown takes any answer without an attachment for a
  Drive page and fails with "Cannot retrieve the public link" whatever the status was, so a
  response hook on gdown's session (`_DriveAnswers`) records what Drive answered; the status
  decides, and the final message reports it;
* a quota, sign-in or not-found page fails at once with a FetchError naming the entry, the
  Drive URL, what the page said (status and title, as gdown received it) and what to do, and
  is never saved as the file;
* the bytes are hashed as they stream (gdown feeds the resumed bytes first), checked against
  the catalog's size and checksum, made 0644 (gdown creates 0600 files) and only then renamed
  to `dest`; without a checksum the file must start like its format and not be tiny next to
  `approx_size` (vlprep.sniff), so a page Drive sends instead is never installed;
* a full disk is a DiskFullError saying how much is needed and free; the partial file is kept
  and the rerun resumes it.

The state across attempts, the checksum, the verified install and the disk-full handling are
vlprep.transfer's, shared with the HTTP and S3 downloaders; the sidecar `<dest>.part.json`
records the Drive file id and the size Drive announced.

gdown fetches every Drive URL as `https://drive.google.com/uc?id=<id>`, whatever Drive host or
scheme it was given, and applies its Drive logic only to Drive hosts, so Drive cannot be moved
to another base URL. The way to point it elsewhere (a TLS-inspecting gateway, the stand-in) is
`proxy` plus `ca_bundle`.
"""

import html
import importlib
import logging
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gdown
import requests
from gdown.exceptions import DownloadError, FileURLRetrievalError

from vlprep.errors import FetchError
from vlprep.progress import bar
from vlprep.sniff import describe, format_problem, implausibly_small, is_page
from vlprep.transfer import (
    PART_SUFFIX,
    Backoff,
    Digests,
    Retry,
    Transfer,
    expected_digest,
    parse_retry_after,
)

log = logging.getLogger(__name__)

DRIVE_URL = "https://drive.google.com"  # gdown sends every Drive request here anyway
QUOTA_MARK = "Too many users have viewed or downloaded this file recently"
RANGE_REFUSED = "did not honor the requested byte range"  # gdown's DownloadError text
PARTIAL_RANDOM = 8  # characters tempfile puts between gdown's prefix and suffix
PAGE_PEEK = 64 << 10  # enough of an error page to find its title


# -- what Drive answered gdown ---------------------------------------------------------------


class _DriveAnswers(threading.local):
    """The responses gdown receives in this thread while `watch()` runs, oldest first.

    gdown keeps its responses to itself and reports any answer without an attachment as an
    unusable page; a requests response hook on each session gdown opens (`_hook_gdown`) is
    the only way to learn that the answer was a 503 or a 429 and what Retry-After it had.
    The hook only records: gdown sees every response unchanged.
    """

    def __init__(self) -> None:
        self.seen: list[requests.Response] | None = None

    @contextmanager
    def watch(self) -> Iterator[list[requests.Response]]:
        self.seen = seen = []
        try:
            yield seen
        finally:
            self.seen = None

    def note(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if self.seen is not None:
            self.seen.append(response)


_ANSWERS = _DriveAnswers()


def _hook_gdown() -> None:
    """Make each session gdown opens report its responses to _ANSWERS (once per process)."""
    module = importlib.import_module("gdown.download")  # `gdown.download` is the function
    opener = getattr(module, "_get_session", None)
    if opener is None or getattr(opener, "vlprep_hooked", False):
        return  # another gdown: its answers go unseen, and the messages say less

    def hooked(*args: Any, **kwargs: Any) -> Any:
        session, *rest = opener(*args, **kwargs)
        session.hooks["response"].append(_ANSWERS.note)
        return (session, *rest)

    hooked.vlprep_hooked = True  # type: ignore[attr-defined]
    module._get_session = hooked


_hook_gdown()


def _is_transient(response: requests.Response | None) -> bool:
    """Drive is overloaded or rate-limiting, for now: 429, or any 5xx."""
    return response is not None and (response.status_code == 429 or response.status_code >= 500)


def _transient_failure(response: requests.Response) -> Retry:
    """A Retry that says which status came from which Drive host, with its Retry-After."""
    host = urllib.parse.urlsplit(response.url).hostname or "Drive"
    return Retry(
        f"HTTP {response.status_code} {response.reason or ''}".rstrip() + f" at {host}",
        parse_retry_after(response.headers.get("Retry-After")),
    )


def fetch_gdrive(
    entry: str,
    file_id: str,
    dest: Path,
    *,
    size: int | None = None,
    sha256: str | None = None,
    sha1: str | None = None,
    md5: str | None = None,
    proxy: str | None = None,
    ca_bundle: str | None = None,
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 1.0,
    max_backoff: float = 60.0,
    archive: str | None = None,
    approx_size: int | None = None,
) -> dict[str, Any]:
    """Download Drive file `file_id` (catalog entry `entry`) to `dest`, verified.

    `proxy` is handed to gdown (None: the environment's); `ca_bundle` is the CA file that
    TLS certificates are checked against (None: the system's). `retries` applies twice: gdown resumes a broken transfer up
    to `retries` times within an attempt, and up to `retries` further attempts (which resolve
    the Drive URL again, then resume) follow with vlprep's backoff.

    Without a checksum, the file must start like its format (`archive`, else `dest`'s
    suffix) and not be tiny next to `approx_size`.

    Returns a report like vlprep.fetch.fetch: url, bytes (received into the file by this
    call), resumed_from (where the final transfer started), attempts, sha256, sha1, md5,
    seconds.
    Raises FetchError when Drive will not deliver the file or delivers the wrong one, and
    DiskFullError when the disk fills up.
    """
    download = _DriveDownload(
        entry,
        file_id,
        Path(dest),
        size=size,
        expected=expected_digest(sha256=sha256, sha1=sha1, md5=md5),
        proxy=proxy,
        verify=ca_bundle or True,
        timeout=timeout,
        transfer_retries=retries,
        archive=archive,
        approx_size=approx_size,
    )
    return download.run([download.url], Backoff(retries, backoff, max_backoff))


class _WrongSize(Exception):
    """Drive announces a file of another size than the catalog's."""


class _Changed(Exception):
    """Drive now serves another version of the file than the partial download holds."""


class _Hasher:
    """The `hasher` gdown feeds (resumed bytes first, then each new chunk)."""

    def __init__(self, feed: Any) -> None:
        self.update = feed


class _DriveDownload(Transfer):
    """vlprep.transfer's download state with gdown as the transport; `<dest>.part` is gdown's
    finished output, its partial files lie beside it (`_partials`)."""

    mode = 0o644  # gdown creates its files 0600

    def __init__(
        self,
        entry: str,
        file_id: str,
        dest: Path,
        *,
        size: int | None,
        expected: tuple[str, str] | None,
        proxy: str | None,
        verify: bool | str,
        timeout: float,
        transfer_retries: int,
        archive: str | None = None,
        approx_size: int | None = None,
    ) -> None:
        super().__init__(
            entry, dest, size=size, expected=expected, archive=archive, approx_size=approx_size
        )
        self.file_id = file_id
        self.url = f"{DRIVE_URL}/uc?id={file_id}&export=download"
        self.view_url = f"https://drive.google.com/file/d/{file_id}/view"
        self.proxy = proxy
        self.verify = verify
        self.timeout = timeout
        self.transfer_retries = transfer_retries  # gdown's own resumes within an attempt

    # -- driving -----------------------------------------------------------------------

    def attempt(self, url: str) -> None:
        """Resolve the Drive URL with gdown, resume the partial file, then verify and install."""
        if self.part.is_file():  # finished by an earlier run that stopped before verifying
            log.info("%s: verifying %s left by an earlier run", self.entry, self.part)
            self.resumed_from = self.part.stat().st_size
            self.digests = Digests(self.names)  # nothing hashed yet: install hashes the file
            self.install(url)
            return
        before = self._partial_size()
        self.digests = Digests(self.names)  # gdown feeds it the resumed bytes first
        answers: list[requests.Response] = []
        try:
            with (
                _ANSWERS.watch() as answers,
                self.digests.feeder() as feed,
                self._progress(before) as on_progress,
            ):
                gdown.download(
                    url,
                    output=str(self.part),
                    quiet=True,
                    proxy=self.proxy,
                    use_cookies=False,  # never read or write ~/.cache/gdown/cookies.txt
                    verify=self.verify,
                    resume=True,
                    hasher=_Hasher(feed),
                    timeout=(self.timeout, self.timeout),
                    retries=self.transfer_retries,  # resumes on the confirmed URL
                    progress=on_progress,
                )
        except FileURLRetrievalError as exc:
            raise self._page_error(exc, answers[-1] if answers else None) from None
        except _WrongSize as exc:
            self.discard()
            raise FetchError(f"{self.entry}: wrong file at {self.url}: {exc}") from None
        except _Changed as exc:
            self.discard()
            raise Retry(f"{exc}; restarting from 0", 0.0) from None
        except DownloadError as exc:
            self._count_partial(before)
            raise self._download_error(exc, answers[-1] if answers else None) from None
        except requests.exceptions.SSLError as exc:
            self._count_partial(before)
            raise self._tls_error(exc) from None
        except requests.HTTPError as exc:
            raise self._http_error(exc) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            self._count_partial(before)
            raise Retry(f"connection failed: {exc}") from None
        # Any other OSError (a full disk under gdown, say) is Transfer.run's to handle.
        self.transferred += self.part.stat().st_size - before
        self.resumed_from = before
        self.install(url)

    @contextmanager
    def _progress(self, before: int) -> Iterator[Callable[[int, int | None], None]]:
        """Yield gdown's progress callback: it moves a bar and checks the announced size.

        A fresh transfer records the size Drive announces beside the partial file; a resumed
        one must see the same size, or the partial bytes belong to another version.
        """
        recorded = self.recorded().get("total") if before else None
        self.body_total = recorded
        noted: list[int | None] = []  # the size recorded by this (fresh) transfer
        with bar(
            self.size, self.entry, unit="B", unit_scale=True, unit_divisor=1024, initial=before
        ) as progress:

            def on_progress(done: int, total: int | None) -> None:
                if self.size is not None and (total not in (None, self.size) or done > self.size):
                    announced = total if total not in (None, self.size) else f"over {done:,}"
                    raise _WrongSize(
                        f"Drive announces {announced} bytes, the catalog says {self.size:,}"
                    )
                if before and recorded is not None and total not in (None, recorded):
                    raise _Changed(
                        f"{self.dest.name} changed on Drive ({total:,} bytes, the partial "
                        f"download was of {recorded:,})"
                    )
                if not before and not noted:
                    self.record({"file_id": self.file_id, "total": total})
                    self.body_total = total
                    noted.append(total)
                progress.update(done - progress.n)

            yield on_progress

    # -- failures ----------------------------------------------------------------------

    def _page_error(self, exc: FileURLRetrievalError, last: requests.Response | None) -> Exception:
        """No file from Drive: its quota page (wait a day), a 429 or 5xx (retry soon), or
        a sign-in or not-found page (check). `last` is Drive's answer that gdown gave up on."""
        said = _gdown_reason(str(exc))
        kept = max((path.stat().st_size for path in self._partials()), default=0)
        if QUOTA_MARK in said:
            resume = (
                f"; the {kept:,} bytes received so far are kept and the download resumes"
                if kept
                else ""
            )
            return FetchError(
                f"{self.entry}: Google Drive will not serve {self.dest.name} now: {self.url} "
                f'answered with its quota page: "{said}"\n'
                f"What to do: wait (Drive lifts this limit within 24 hours) and run again"
                f"{resume}; or use a mirror of the file if the config has one; or open "
                f"{self.view_url} in a browser, download the file and save it in manual_dir "
                f"as {self.dest.name}."
            )
        if _is_transient(last):
            return _transient_failure(last)
        return FetchError(
            f"{self.entry}: Google Drive did not give {self.dest.name}: {self.url} answered "
            f"with {self._describe_page(last)} instead of the file (gdown: {said})\n"
            f"What to do: check the catalog's drive_id ({self.file_id}); the file may have "
            f"been deleted or made private (open {self.view_url} in a browser to see); use a "
            f"mirror if the config has one, or download the file by hand and save it in "
            f"manual_dir as {self.dest.name}."
        )

    def _describe_page(self, last: requests.Response | None) -> str:
        """What Drive showed for the file: status, title, and whether it is a sign-in page.

        `last` is the page as gdown received it (gdown has read its body). Without it (a
        gdown whose answers go unseen) the page is fetched once more, same proxy and CA, and
        only its first PAGE_PEEK bytes are read.
        """
        if last is not None:
            try:
                head = last.content[:PAGE_PEEK]
            except (requests.RequestException, RuntimeError):  # a body gdown did not keep
                head = b""
            status, final = last.status_code, last.url
        else:
            try:
                with requests.Session() as session:
                    if self.proxy:
                        session.proxies = {"http": self.proxy, "https": self.proxy}
                    with session.get(
                        self.url, stream=True, verify=self.verify, timeout=self.timeout
                    ) as resp:
                        head = resp.raw.read(PAGE_PEEK, decode_content=True) or b""
                        status, final = resp.status_code, resp.url
            except requests.RequestException as exc:
                return f"a page gdown could not use (fetching it again to quote it failed: {exc})"
        match = re.search(rb"<title>(.*?)</title>", head, re.IGNORECASE | re.DOTALL)
        title = html.unescape(match.group(1).decode("utf-8", "replace")).strip() if match else ""
        where = urllib.parse.urlsplit(final).hostname or "?"
        kind = "a sign-in page" if where.startswith("accounts.") else "a page"
        quoted = f', "{title}"' if title else ""
        return f"{kind} at {where} (HTTP {status}{quoted})"

    def _download_error(self, exc: DownloadError, last: requests.Response | None) -> Exception:
        """gdown's transfer errors: an incomplete body resumes; a refused Range restarts,
        unless Drive refused with a 429 or 5xx (then the partial bytes are kept, and resumed)."""
        if _is_transient(last):
            return _transient_failure(last)
        if RANGE_REFUSED in str(exc):
            # The file changed (or a page answered the Range request): the partial bytes
            # cannot be trusted to continue into what Drive serves now.
            self.discard()
            return Retry(f"Drive would not resume {self.dest.name}; restarting from 0", 0.0)
        return Retry(str(exc).splitlines()[0])

    def _tls_error(self, exc: requests.exceptions.SSLError) -> Exception:
        """A certificate that does not verify is final; a connection torn mid-way is not."""
        if "CERTIFICATE_VERIFY_FAILED" not in str(exc):
            return Retry(f"TLS connection failed: {exc}")
        return FetchError(
            f"{self.entry}: the certificate presented for {self.url} does not verify: {exc}\n"
            "What to do: if a proxy or gateway re-signs HTTPS, set gdrive.ca_bundle to its CA "
            "certificate; otherwise check the system's clock and CA certificates."
        )

    def _http_error(self, exc: requests.HTTPError) -> Exception:
        status = exc.response.status_code if exc.response is not None else 0
        if _is_transient(exc.response):
            return _transient_failure(exc.response)
        return FetchError(f"{self.entry}: {self.url} answered HTTP {status}\n{self.advice()}")

    def failed(self, failures: dict[str, str]) -> FetchError:
        """Drive has one URL: say why it failed, and what to do."""
        ((url, reason),) = failures.items()
        return FetchError(
            f"{self.entry}: could not download {self.dest.name} from {url}: {reason}\n"
            f"{self.advice()}"
        )

    def advice(self) -> str:
        """What to do; the partial download is said to resume only if it still exists."""
        kept = self.part.is_file() or self._partials()
        partial = (
            "the partial download is kept and resumes" if kept else "the partial file was discarded"
        )
        return (
            f"What to do: run again later ({partial}); use a "
            f"mirror if the config has one; or open {self.view_url} in a browser, download "
            f"the file and save it in manual_dir as {self.dest.name}."
        )

    def partial_file(self) -> Path:
        """gdown's partial file while it transfers; `<dest>.part` once it is complete."""
        partials = self._partials()
        return partials[0] if partials else self.part

    # -- the partial and finished files -------------------------------------------------

    def _partials(self) -> list[Path]:
        """gdown's partial files for our output: `<part name>` + 8 random chars + `.part`."""
        prefix, want = self.part.name, len(self.part.name) + PARTIAL_RANDOM + len(PART_SUFFIX)
        return [
            path
            for path in self.dest.parent.iterdir()
            if path.name.startswith(prefix)
            and path.name.endswith(PART_SUFFIX)
            and len(path.name) == want
        ]

    def _partial_size(self) -> int:
        """Size of the partial file to resume; extra ones (gdown refuses to choose) go."""
        partials = sorted(self._partials(), key=lambda path: path.stat().st_size)
        for extra in partials[:-1]:
            log.warning("%s: removing a second partial download %s", self.entry, extra)
            extra.unlink()
        if not partials:
            self.meta.unlink(missing_ok=True)
            return 0
        if self.recorded().get("file_id") != self.file_id:
            log.warning(
                "%s: %s is not known to be of this file; restarting", self.entry, partials[-1]
            )
            self.discard()
            return 0
        have = partials[-1].stat().st_size
        if self.size is not None and have > self.size:
            log.warning("%s: %s is larger than the file; restarting", self.entry, partials[-1])
            self.discard()
            return 0
        return have

    def _count_partial(self, before: int) -> None:
        """Add what a failed attempt received to the bytes transferred."""
        partials = self._partials()
        if partials:
            self.transferred += max(0, partials[0].stat().st_size - before)

    def discard(self) -> None:
        """`<dest>.part`, its sidecar, and gdown's partial files: the next try starts at 0."""
        super().discard()
        for partial in self._partials():
            partial.unlink(missing_ok=True)

    def wrong_file(self, url: str, what: str, problem: str, resumed: int) -> Exception:
        """After a resume the partial bytes may be of another version: restart from 0;
        otherwise Drive serves another file than the catalog's."""
        if resumed:
            return Retry(f"{problem} (after resuming at byte {resumed}); restarting from 0", 0.0)
        return FetchError(
            f"{self.entry}: wrong file at {url}: {problem}; nothing was installed\n{self.advice()}"
        )

    def check_unverified(self, url: str, have: int) -> None:
        """A file no checksum vouches for must start like its format and not be tiny."""
        head = self.part_head()
        problem = format_problem(head, self.fmt, complete=True)
        if problem:
            self.discard()
            what = (
                "an HTML page"
                if is_page(head, self.fmt)
                else f"a file that is not {describe(self.fmt)}"
            )
            raise FetchError(
                f"{self.entry}: {self.url} delivered {what} as {self.dest.name} (a Drive "
                f"error or sign-in page?): {problem}; it was not installed\n{self.advice()}"
            )
        if implausibly_small(have, self.approx_size):
            self.discard()
            raise FetchError(
                f"{self.entry}: {self.url} delivered {have:,} bytes as {self.dest.name}, but "
                f"the catalog puts it at about {self.approx_size:,} (approx_size): that is not "
                f"the file; it was not installed\n{self.advice()}"
            )


def _gdown_reason(message: str) -> str:
    """The part of gdown's FileURLRetrievalError that quotes Drive, on one line."""
    body = message.split("Failed to retrieve file url:", 1)[-1]
    body = body.split("You may still be able to access the file", 1)[0]
    return " ".join(body.split())


def drive_problem(
    entry: str,
    file_id: str,
    *,
    proxy: str | None = None,
    ca_bundle: str | None = None,
    timeout: float = 20.0,
) -> str | None:
    """Why Drive would not serve `file_id` now (its quota page, a sign-in page, not found), or
    None: one GET of the download URL, of which only the first PAGE_PEEK bytes are read (a file
    or the virus-scan confirmation page of a large one both mean it can be had). For preflight,
    before a long run; an unreachable Drive is not judged here (the download says more)."""
    url = f"{DRIVE_URL}/uc?id={file_id}&export=download"
    try:
        with requests.Session() as session:
            if proxy:
                session.proxies = {"http": proxy, "https": proxy}
            with session.get(url, stream=True, verify=ca_bundle or True, timeout=timeout) as resp:
                head = resp.raw.read(PAGE_PEEK, decode_content=True) or b""
                status, final = resp.status_code, resp.url
                html_page = "html" in resp.headers.get("Content-Type", "")
    except requests.RequestException as exc:
        log.warning("%s: Google Drive not asked (%s)", entry, exc)
        return None
    view = f"https://drive.google.com/file/d/{file_id}/view"
    if html_page and QUOTA_MARK.encode() in head:
        return (
            f'{entry}: Google Drive answers {url} with its quota page now ("{QUOTA_MARK}"): '
            f"wait (the limit lifts within 24 hours), or open {view} in a browser and save the "
            "file in manual_dir"
        )
    if status >= 400 or (urllib.parse.urlsplit(final).hostname or "").startswith("accounts."):
        what = "a sign-in page" if status < 400 else f"HTTP {status}"
        return (
            f"{entry}: Google Drive answers {url} with {what}: the file may have been deleted "
            f"or made private (open {view} to see); check the catalog's drive_id, or save the "
            "file in manual_dir"
        )
    return None
