"""S3 catalog entries: the same resumable, verified download as HTTP, through boto3, unsigned.

Open Images publishes its tarballs in a public bucket (`s3://open-images-dataset/tar/...`,
12.8 GB for the validation set), which the seed fetched with `aws s3 --no-sign-request cp`.
This module makes the same unsigned GetObject with boto3 and gives it what HTTP downloads
get, by subclassing vlprep.transfer's download state with an S3 transport:

* bytes stream into `<dest>.part`; `<dest>.part.json` records the object's ETag from the
  first response, and a resumed GetObject asks for `Range: bytes=<have>-` with
  `If-Match: <etag>`, so an object replaced in between answers 412 and the download restarts
  from 0 at once;
* the bytes are hashed while they stream and move to `dest` only when size and checksum
  match; wrong bytes are deleted and the error names entry, URL, expected and actual digest;
* botocore's own retries are off, because they would start the object again from byte 0:
  ours resume from the end of `.part` after a dropped connection, with capped backoff; a
  429 or 5xx waits as long as its Retry-After asks (capped by `max_backoff` too), as HTTP does;
* an object the catalog gives no checksum for must start like its format and not be tiny
  next to `approx_size` (vlprep.sniff), and a full disk keeps `.part` for the rerun, as for
  HTTP (the same download state does both);
* missing keys, private objects and an unreachable endpoint fail with what to check.

`endpoint_url` (config `s3_endpoint`) points the client at another S3-compatible server,
such as the stand-in in standin.s3.
"""

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
import urllib3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.response import StreamingBody

from vlprep import __version__
from vlprep.errors import FetchError
from vlprep.ranged import (
    CONTROL_SUFFIX,
    DEFAULT_CONNECTIONS,
    SEGMENT,
    Changed,
    RangedTransfer,
    RangeState,
    overloaded,
    pump,
)
from vlprep.sniff import implausibly_small
from vlprep.transfer import (
    CHUNK,
    Backoff,
    Retry,
    Transfer,
    UrlFailed,
    expected_digest,
    parse_content_range,
    parse_retry_after,
)

log = logging.getLogger(__name__)

RETRYABLE_CODES = frozenset({"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout"})


def parse_s3_url(url: str) -> tuple[str, str]:
    """(bucket, key) of `s3://bucket/key`; the key is kept exactly (it may hold `?` or `#`)."""
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not url.startswith("s3://") or not bucket or not key:
        raise FetchError(f"{url!r} is not an S3 object URL; expected s3://<bucket>/<key>")
    return bucket, key


def s3_client(endpoint_url: str | None, region: str, timeout: float, pool: int = 10) -> Any:
    """An unsigned S3 client that leaves retrying (and so resuming) to us; `pool` connections
    (one per ranged worker)."""
    config = Config(
        max_pool_connections=pool,
        signature_version=UNSIGNED,
        retries={"total_max_attempts": 1},
        connect_timeout=timeout,
        read_timeout=timeout,
        # Our sha256/md5 is the check; botocore's CRC would only duplicate it (and its error).
        response_checksum_validation="when_required",
        request_checksum_calculation="when_required",
        user_agent_appid=f"vlprep-{__version__}",
    )
    session = boto3.session.Session()
    return session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def fetch_s3(
    entry: str,
    url: str | Sequence[str],
    dest: Path,
    *,
    size: int | None,
    sha256: str | None = None,
    sha1: str | None = None,
    md5: str | None = None,
    endpoint_url: str | None = None,
    region: str = "us-east-1",
    retries: int = 5,
    timeout: float = 60.0,
    backoff: float = 1.0,
    max_backoff: float = 60.0,
    archive: str | None = None,
    approx_size: int | None = None,
    connections: int = DEFAULT_CONNECTIONS,
) -> dict[str, Any]:
    """Download the S3 object `url` (or the first of a list of s3:// URLs that delivers) to
    `dest`, verified; the report has the keys of vlprep.fetch.fetch's.

    `endpoint_url` None means AWS itself. `retries` counts attempts per URL after the first.
    Without a checksum, `archive` (else `dest`'s suffix) and `approx_size` say what the object
    must look like. Raises FetchError when no URL delivers the right bytes, DiskFullError
    when the disk fills up. An object of at least two segments comes as ranged GetObjects
    over up to `connections` connections (vlprep.ranged, each range guarded by If-Match).
    """
    urls = [url] if isinstance(url, str) else list(url)
    if not urls:
        raise FetchError(f"{entry}: no s3:// URL to download {dest} from")
    for candidate in urls:
        parse_s3_url(candidate)
    client = s3_client(endpoint_url, region, timeout, pool=max(10, connections))
    policy = Backoff(retries, backoff, max_backoff)
    download = _S3Download(
        entry,
        Path(dest),
        size=size,
        expected=expected_digest(sha256=sha256, sha1=sha1, md5=md5),
        client=client,
        archive=archive,
        approx_size=approx_size,
        connections=connections,
        policy=policy,
    )
    try:
        return download.run(urls, policy)
    finally:
        client.close()


class _S3Download(RangedTransfer, Transfer):
    """vlprep.transfer's download state (`.part`, sidecar, hashing, install, report, retry
    loop) with GetObject as the transport; big objects as ranged GetObjects (vlprep.ranged)."""

    def __init__(
        self,
        entry: str,
        dest: Path,
        *,
        size: int | None,
        expected: tuple[str, str] | None,
        client: Any,
        archive: str | None = None,
        approx_size: int | None = None,
        connections: int = 1,
        policy: Backoff | None = None,
    ) -> None:
        super().__init__(
            entry,
            dest,
            size=size,
            expected=expected,
            archive=archive,
            approx_size=approx_size,
            expect_binary=False,  # S3 serves the object or an S3 error, never a login page
        )
        self.client = client  # it carries the timeouts; boto3 clients are thread-safe
        self.endpoint = client.meta.endpoint_url
        self.connections = max(1, connections)
        self.policy = policy or Backoff(5, 1.0, 60.0)
        self.ranges = self.dest.with_name(self.dest.name + CONTROL_SUFFIX)

    def validator(self) -> str | None:
        return self.recorded().get("etag")

    def attempt(self, url: str) -> None:
        """One GetObject: stream what is missing into `.part`, then verify and install it."""
        bucket, key = parse_s3_url(url)
        host = urllib3.util.parse_url(self.endpoint or "").host or "s3"
        state = self.resumable_ranges()
        if state is not None:
            self.ranged(url, host, state, self._range_opener(url, bucket, key, state), None)
            return
        offset = self.resume_offset()
        if offset and offset == self.size:
            # An earlier run got every byte but died before installing: just verify.
            self.resumed_from = offset
        else:
            # a big object: ask for its first range; the answer starts the ranged download
            first_range = not offset and self.may_split(self.size)
            resp = self._get(url, bucket, key, offset, SEGMENT if first_range else None)
            if resp is None:  # `.part` belonged to an older version of the object
                resp = self._get(url, bucket, key, 0)
            body: StreamingBody = resp["Body"]
            try:
                start = self._start_of(url, resp, offset)
                if first_range and start == 0 and resp.get("ContentRange"):
                    self.start_fresh({"url": url, "etag": resp.get("ETag")})
                    state = RangeState(self.ranges, self.body_total, self.validator(), [])

                    def first(begin: int, end: int, write) -> None:
                        pump(lambda n: self._read_arrived(body, n, begin), end - begin, write)

                    opener = self._range_opener(url, bucket, key, state)
                    self.ranged(url, host, state, opener, first)
                    return
                self.receive(url, lambda: self._read(body), start, start + resp["ContentLength"])
            finally:
                body.close()
        self.install(url)

    def _range_opener(self, url: str, bucket: str, key: str, state: RangeState):
        """A worker's ranged GetObject, guarded by the recorded ETag (If-Match)."""

        def serve(start: int, end: int, write) -> None:
            request = {"Bucket": bucket, "Key": key, "Range": f"bytes={start}-{end - 1}"}
            if state.validator:
                request["IfMatch"] = state.validator
            try:
                resp = self.client.get_object(**request)
            except ClientError as exc:
                status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if status in (412, 416):
                    raise Changed(
                        f"{url} changed since the download started (HTTP {status})"
                    ) from None
                refusal = self._refusal(url, exc)
                if isinstance(refusal, Retry) and status in (429, 503):
                    refusal = overloaded(str(refusal), refusal.retry_after)
                raise refusal from exc
            except BotoCoreError as exc:  # closed or timed out before the response headers
                raise Retry(f"request failed: {exc}") from exc
            first, total = parse_content_range(resp.get("ContentRange"))
            body = resp["Body"]
            try:
                if first != start or total != state.size:
                    raise Changed(f"S3 sent bytes from {first} of {total}, asked from {start}")
                write(b"")
                pump(lambda n: self._read_arrived(body, n, start), end - start, write)
            finally:
                body.close()

        return lambda: serve

    def _get(
        self, url: str, bucket: str, key: str, offset: int, length: int | None = None
    ) -> dict[str, Any] | None:
        """GetObject from `offset` on (guarded by the recorded ETag), or its first `length`
        bytes; None if the object changed since `.part` was started, which is discarded."""
        request = {"Bucket": bucket, "Key": key}
        if length:
            request["Range"] = f"bytes=0-{length - 1}"
        if offset:
            request["Range"] = f"bytes={offset}-"
            etag = self.recorded().get("etag")
            if etag:
                request["IfMatch"] = etag
            log.info("%s: resuming at byte %d from %s", self.entry, offset, url)
        try:
            return self.client.get_object(**request)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if offset and status in (412, 416):
                log.info(
                    "%s: %s changed since %s was started (HTTP %d); restarting from 0",
                    self.entry,
                    url,
                    self.part.name,
                    status,
                )
                self.discard()
                return None
            raise self._refusal(url, exc) from exc
        except BotoConnectionError as exc:
            raise Retry(
                f"cannot reach the S3 endpoint {self.endpoint} ({exc}); check the network "
                "and `s3_endpoint` in the config"
            ) from exc
        except BotoCoreError as exc:  # closed or timed out before the response headers
            raise Retry(f"request failed: {exc}") from exc

    def _refusal(self, url: str, exc: ClientError) -> Exception:
        """The exception for an S3 error answer: retry the transient ones, explain the rest."""
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        code = "" if code.isdigit() else code  # moto and some proxies put the status there
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        if code in ("NoSuchKey", "NoSuchBucket") or status == 404:
            what = "bucket" if code == "NoSuchBucket" else "object"
            return UrlFailed(
                f"no such {what} ({code or 'HTTP 404'}) at {self.endpoint}; "
                f"check the URL in catalog entry {self.entry!r}"
            )
        if status == 403:
            return UrlFailed(
                f"access denied (HTTP 403 {code or 'Forbidden'}): the object is not public or needs "
                "credentials (S3 also answers 403 for a missing key in a bucket that cannot "
                "be listed); vlprep sends unsigned requests only, so check the URL in the "
                "catalog, or download the file by hand into manual_dir"
            )
        if status >= 500 or status == 429 or code in RETRYABLE_CODES:
            # botocore gives the answer's headers with lower-case names.
            headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            return Retry(f"HTTP {status} {code}", parse_retry_after(headers.get("retry-after")))
        return UrlFailed(f"HTTP {status} {code}: {error.get('Message', exc)}")

    def _start_of(self, url: str, resp: dict[str, Any], offset: int) -> int:
        """Where the body starts in the object; records the ETag when it starts at 0."""
        if resp.get("ContentRange"):
            start, total = parse_content_range(resp["ContentRange"])
            self._check_size(url, total)
            if start != offset:
                self.discard()
                raise Retry(f"S3 sent bytes from {start}, asked for {offset}", 0.0)
            return start
        if offset:
            log.info("%s: %s sent the whole object; restarting", self.entry, url)
        self._check_size(url, resp["ContentLength"])
        self.start_fresh(
            {"url": url, "etag": resp.get("ETag"), "last_modified": str(resp.get("LastModified"))}
        )
        return 0

    def _check_size(self, url: str, total: int | None) -> None:
        self.body_total = total
        if total is not None and implausibly_small(total, self.approx_size):
            self.discard()
            raise UrlFailed(self.tiny_message(url, total, "holds"))
        if self.size is not None and total is not None and total != self.size:
            self.discard()
            raise UrlFailed(
                f"wrong object: {url} holds {total} bytes, the catalog says {self.size}; "
                f"check the URL and size in catalog entry {self.entry!r}"
            )

    def _read(self, body: StreamingBody, size: int = CHUNK, at: int | None = None) -> bytes:
        """Next chunk of the body; a broken connection becomes a Retry (resume from here)."""
        try:
            return body.read(size)
        except (BotoCoreError, urllib3.exceptions.HTTPError, OSError) as exc:
            where = self.digests.count if at is None else at
            raise Retry(f"connection lost at byte {where}: {exc}") from exc

    @staticmethod
    def _read_arrived(body: StreamingBody, most: int, at: int) -> bytes:
        """What of a range's body has arrived, up to `most` bytes (one recv; empty at its end).
        StreamingBody only blocks for a whole read, so this reads its urllib3 response; the
        range's length is checked by vlprep.ranged instead of by StreamingBody."""
        try:
            return body._raw_stream.read1(most, decode_content=False)
        except (BotoCoreError, urllib3.exceptions.HTTPError, OSError) as exc:
            raise Retry(f"connection lost at byte {at}: {exc}") from exc
