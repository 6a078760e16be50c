"""Any S3-compatible server (AWS, MinIO, SeaweedFS, Ceph, ...) as an object store, through ``minio``.

This is the only module that imports ``minio``: every call to it is made here, with keyword arguments
(its positional order has changed between releases), and every error it raises is translated into the
:mod:`storage.base` errors before it leaves. Uploads stream in bounded parts, so memory stays flat in
the size of a file whether or not its length is known in advance.

Write-once retention uses S3 Object Lock in COMPLIANCE mode, which not even the account owner can
shorten; it needs a bucket created with Object Lock, which :meth:`S3Store.ensure_ready` asks for. Object
Lock turns versioning on, so :meth:`S3Store.delete` removes every version of a key: a plain S3 delete
would only hide the bytes behind a delete marker.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import BinaryIO, NoReturn, TypeVar
from xml.etree import ElementTree

import certifi
import urllib3
from minio import Minio
from minio.commonconfig import COMPLIANCE
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from minio.helpers import check_bucket_name
from minio.retention import Retention

from storage.base import (
    MeteredStream,
    ObjectInfo,
    ObjectLocked,
    ObjectNotFound,
    StorageAuthError,
    StorageError,
    StorageUnavailable,
    UnfinishedUpload,
    validate_key,
    validate_length,
    validate_prefix,
    validate_retain_until,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# Parts of this size are held in memory while they upload (one being filled plus those in flight), so
# memory is bounded by about (parallel uploads + 1) x part size, whatever the object's length.
DEFAULT_PART_SIZE = 16 * 1024 * 1024
DEFAULT_PARALLEL_UPLOADS = 3
# A dead endpoint must fail a health check or a request in seconds, not after minio's default of five
# minutes per attempt and five retries with back-off. Reads get longer: a busy server may pause mid-body.
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 120.0

_AUTH_CODES = frozenset({
    "AccessDenied",
    "AuthorizationHeaderMalformed",
    "ExpiredToken",
    "InvalidAccessKeyId",
    "InvalidToken",
    "SignatureDoesNotMatch",
})
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchVersion"})
_RETAIN_UNTIL_HEADER = "x-amz-object-lock-retain-until-date"
# S3 answers at most 1000 uploads or parts a page.
_LISTING_PAGE = 1000
# What minio and its HTTP layer raise for a failed request.
_CLIENT_ERRORS = (MinioException, urllib3.exceptions.HTTPError)
# Plus what minio raises when a successful answer is not the XML it expects (a web page, a proxy's
# error): only caught around calls that take no caller stream, whose own ValueError must pass.
_ANSWER_ERRORS = (*_CLIENT_ERRORS, ValueError, ElementTree.ParseError)


def _http_client() -> urllib3.PoolManager:
    # Same TLS defaults as minio's own client; only the timeouts and retries are tightened.
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(
            total=3, connect=1, read=1, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
        ),
    )


class S3Store:
    """Objects in one bucket of an S3-compatible server.

    Args:
        endpoint: ``host:port`` of the server (no scheme, no path).
        access_key: the access key id.
        secret_key: the secret key; kept inside the client, never shown by :meth:`describe` or errors.
        bucket: the bucket holding vault's objects.
        secure: use HTTPS (verified against the system CA bundle, or ``SSL_CERT_FILE``).
        region: the bucket's region; ``None`` lets the client ask the server.
        object_lock: create a missing bucket with Object Lock, so that ``retain_until`` can be enforced.
        part_size: multipart part size in bytes (at least 5 MiB, the S3 minimum).
        parallel_uploads: parts uploaded concurrently.
        key_prefix: a folder-like prefix (ending in ``/``) put before every key, for a bucket shared
            with others; keys seen by callers never include it.

    Raises:
        ValueError: invalid endpoint, bucket name, part size or key prefix.
    """

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool = True,
        region: str | None = None,
        object_lock: bool = True,
        *,
        part_size: int = DEFAULT_PART_SIZE,
        parallel_uploads: int = DEFAULT_PARALLEL_UPLOADS,
        key_prefix: str = "",
    ) -> None:
        check_bucket_name(bucket)
        if key_prefix:
            validate_prefix(key_prefix)
            if not key_prefix.endswith("/"):
                raise ValueError(f"key_prefix {key_prefix!r} must end with '/'")
        if part_size < 5 * 1024 * 1024:
            raise ValueError("part_size must be at least 5 MiB, the S3 minimum for multipart uploads")
        if parallel_uploads < 1:
            raise ValueError("parallel_uploads must be at least 1")
        self.endpoint = endpoint
        self.bucket = bucket
        self.secure = secure
        self.object_lock = object_lock
        self.part_size = part_size
        self.parallel_uploads = parallel_uploads
        self.key_prefix = key_prefix
        self._client = Minio(
            endpoint=endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=_http_client(),
        )
        # (Object Lock enabled, versioning ever enabled), learnt from the bucket on first need.
        self._features: tuple[bool, bool] | None = None

    @property
    def supports_retention(self) -> bool:
        """Whether the bucket has Object Lock (asks the server the first time)."""
        return self._bucket_features()[0]

    def describe(self) -> str:
        """Name the bucket and endpoint, and whether retention is enforced once that is known."""
        scheme = "https" if self.secure else "http"
        text = f"S3 bucket {self.bucket!r} at {scheme}://{self.endpoint}"
        if self.key_prefix:
            text += f" under {self.key_prefix!r}"
        if self._features is not None:
            text += ", with Object Lock" if self._features[0] else ", without Object Lock"
        return text

    def __repr__(self) -> str:
        return f"<S3Store {self.describe()}>"

    # -- readiness ---------------------------------------------------------------------------------

    def ensure_ready(self) -> None:
        """Create the bucket if it is missing (with Object Lock if asked and the server allows it).

        A server that refuses Object Lock still gets a bucket, without it: vault works without retention,
        and :attr:`supports_retention` then says so.

        Raises:
            StorageUnavailable: the endpoint cannot be reached.
            StorageAuthError: the credentials are refused.
        """
        try:
            if not self._client.bucket_exists(bucket_name=self.bucket):
                self._make_bucket()
        except _ANSWER_ERRORS as error:
            self._raise(error, None, "create")
        self._features = None
        self._bucket_features()

    def _make_bucket(self) -> None:
        if self.object_lock:
            try:
                self._client.make_bucket(bucket_name=self.bucket, object_lock=True)
                log.info("created %s with Object Lock", self.describe())
                return
            except S3Error as error:
                if error.code == "BucketAlreadyOwnedByYou":
                    return  # created meanwhile by another process: what we wanted
                if error.code in _AUTH_CODES or error.code == "BucketAlreadyExists":
                    raise
                log.warning(
                    "%s refused a bucket with Object Lock (%s); creating it without: retention will not be "
                    "enforced", self.describe(), error.code,
                )
        try:
            self._client.make_bucket(bucket_name=self.bucket)
        except S3Error as error:
            if error.code != "BucketAlreadyOwnedByYou":
                raise
        log.info("created %s", self.describe())

    def check(self) -> None:
        """One HEAD request on the bucket.

        Raises:
            StorageUnavailable: the endpoint cannot be reached or the bucket does not exist.
            StorageAuthError: the credentials are refused.
        """
        try:
            found = self._client.bucket_exists(bucket_name=self.bucket)
        except _ANSWER_ERRORS as error:
            self._raise(error, None, "check")
        if not found:
            raise self._no_bucket()

    def _bucket_features(self) -> tuple[bool, bool]:
        if self._features is None:
            try:
                locked = self._bucket_setting(self._client.get_object_lock_config) is not None
                versioning = self._bucket_setting(self._client.get_bucket_versioning)
            except _ANSWER_ERRORS as error:
                self._raise(error, None, "inspect")
            status = versioning.status if versioning is not None else "Off"
            # A suspended bucket still holds the versions written while versioning was on.
            self._features = (locked, locked or status in ("Enabled", "Suspended"))
        return self._features

    def _bucket_setting(self, fetch: Callable[..., T]) -> T | None:
        """A bucket configuration, or ``None`` if it is not set or the server does not implement it."""
        try:
            return fetch(bucket_name=self.bucket)
        except S3Error as error:
            # AWS answers "not found" for a missing configuration, other servers NotImplemented and the
            # like; but a refusal of our credentials or a missing bucket is an error, not "no setting".
            if error.code in _AUTH_CODES or error.code == "NoSuchBucket":
                raise
            return None

    # -- objects -----------------------------------------------------------------------------------

    def put(
        self,
        key: str,
        stream: BinaryIO,
        length: int | None = None,
        content_type: str = "application/octet-stream",
        retain_until: datetime | None = None,
    ) -> ObjectInfo:
        """Upload ``stream`` in one request if it fits in one part, else as a multipart upload.

        An upload interrupted by the stream (an exception, or the wrong number of bytes) is aborted, so
        the server never publishes a partial object; an exception raised by ``stream`` reaches the caller
        unchanged.

        Raises:
            ValueError: invalid key/length/retention, or the stream did not yield ``length`` bytes.
            ObjectLocked: the current object under ``key`` is under retention.
            StorageUnavailable: the endpoint cannot be reached or the bucket is missing.
            StorageAuthError: the credentials are refused.
            StorageError: any other refusal by the server.
        """
        validate_key(key)
        length = validate_length(length)
        retain_until = validate_retain_until(retain_until)
        locked_bucket = self._bucket_features()[0]
        retention = None
        if locked_bucket:
            # S3 would accept the overwrite as a new version; refuse it like the local store does, so a
            # reader of the key can never be shown a replacement for a retained record.
            self._refuse_if_retained(key, "overwrite")
            if retain_until is not None:
                retention = Retention(COMPLIANCE, retain_until)
        elif retain_until is not None:
            log.warning("%s has no Object Lock: %r is stored without retention", self.describe(), key)
        source = MeteredStream(stream, length)
        try:
            result = self._client.put_object(
                bucket_name=self.bucket,
                object_name=self.key_prefix + key,
                data=source,
                # A known length spares minio the copies it makes to read one byte ahead. It reads no
                # byte at all for an announced 0, so that case is left "unknown" for MeteredStream to
                # see a stream that is not empty.
                length=length or -1,
                content_type=content_type,
                part_size=self.part_size,
                num_parallel_uploads=self.parallel_uploads,
                retention=retention,
            )
        except _CLIENT_ERRORS as error:
            if error is source.failure:
                raise  # the caller's stream failed (it may itself be a network stream): not our error
            self._raise(error, key, "store")
        # S3 returns no Last-Modified on PUT; the response's Date is when the server committed it.
        modified = _http_date(result.http_headers.get("Date") if result.http_headers else None)
        return ObjectInfo(key=key, size=source.total, modified=modified, etag=_etag(result.etag))

    def open(self, key: str) -> BinaryIO:
        """Start a GET and return its body as a stream; closing it returns the connection to the pool.

        Raises:
            ObjectNotFound: no object under ``key``.
        """
        validate_key(key)
        try:
            response = self._client.get_object(bucket_name=self.bucket, object_name=self.key_prefix + key)
        except _CLIENT_ERRORS as error:
            self._raise(error, key, "read")
        return _ObjectReader(response, self, key)  # type: ignore[return-value]

    def stat(self, key: str) -> ObjectInfo:
        """HEAD the object.

        Raises:
            ObjectNotFound: no object under ``key``.
        """
        return self._stat(key)[0]

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        try:
            self._stat(key)
        except ObjectNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        """Remove the object, and on a versioned bucket every version and delete marker of it.

        Raises:
            ObjectNotFound: no object under ``key``.
            ObjectLocked: the object is under retention.
        """
        retained = self._retained_until(key, self._stat(key)[1], "delete")
        if retained is not None:
            raise ObjectLocked(f"cannot delete {key!r}: it is retained until {retained.isoformat()}")
        name = self.key_prefix + key
        try:
            if not self._bucket_features()[1]:
                self._client.remove_object(bucket_name=self.bucket, object_name=name)
                return
            versions = [
                item.version_id
                for item in self._client.list_objects(
                    bucket_name=self.bucket, prefix=name, recursive=True, include_version=True
                )
                if item.object_name == name
            ]
            for version_id in versions:
                self._client.remove_object(bucket_name=self.bucket, object_name=name, version_id=version_id)
        except _CLIENT_ERRORS as error:
            self._raise(error, key, "delete")

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Yield the objects whose key starts with ``prefix``, in key order, one listing page at a time.

        S3 specifies listings in UTF-8 byte order, the order of Python strings. URL-encoded listings are
        not asked for: SeaweedFS sorts those by the encoded form, which puts ``é`` before ``a``; keys are
        free of control characters (see :func:`~storage.base.validate_key`), so plain XML carries them.
        """
        validate_prefix(prefix)
        try:
            items = self._client.list_objects(
                bucket_name=self.bucket,
                prefix=self.key_prefix + prefix or None,
                recursive=True,
                use_url_encoding_type=False,
            )
            for item in items:
                yield ObjectInfo(
                    key=item.object_name[len(self.key_prefix):],
                    size=item.size or 0,
                    modified=item.last_modified,
                    etag=_etag(item.etag),
                )
        except _ANSWER_ERRORS as error:
            self._raise(error, None, f"list {prefix!r} in")

    # -- unfinished multipart uploads --------------------------------------------------------------

    def unfinished_uploads(self) -> Iterator[UnfinishedUpload]:
        """Every multipart upload begun under the key prefix and neither completed nor aborted, each with
        its parts' size and latest upload time (one more request per upload).

        minio offers no public call for these; its own low-level ones (``_list_multipart_uploads``,
        ``_list_parts``) are used, signed and parsed as every other request. Pages follow on from the
        last upload of the previous one (minio drops the server's next upload-id marker, which is that
        upload's id): S3 orders uploads by key, then upload id, and pages on from both markers. A server
        whose truncated page names no next key pages by upload id alone: SeaweedFS lists uploads in
        upload-id order, takes an upload-id marker on its own, and reads a key marker as "this key only",
        so the standard pair ended its listing after the first 1,000. A page that brings nothing new ends
        the listing, so a server that pages in neither way can shorten it but never loop it.

        Raises:
            StorageUnavailable: the endpoint cannot be reached or the bucket is missing.
            StorageAuthError: the credentials are refused.
            StorageError: any other refusal by the server.
        """
        seen: set[tuple[str, str]] = set()
        key_marker: str | None = None
        upload_marker: str | None = None
        while True:
            try:
                page = self._client._list_multipart_uploads(
                    bucket_name=self.bucket, prefix=self.key_prefix or None, key_marker=key_marker,
                    upload_id_marker=upload_marker, max_uploads=_LISTING_PAGE,
                )
            except _ANSWER_ERRORS as error:
                self._raise(error, None, "list the unfinished uploads in")
            fresh = [upload for upload in page.uploads
                     if upload.upload_id and (upload.object_name, upload.upload_id) not in seen]
            for upload in fresh:
                seen.add((upload.object_name, upload.upload_id))
                if not upload.object_name.startswith(self.key_prefix):
                    continue  # another tenant's of a shared bucket: not ours to report nor abort
                found = self._unfinished(upload.object_name[len(self.key_prefix):], upload.upload_id,
                                         upload.initiated_time)
                if found is not None:
                    yield found
            if not page.is_truncated or not fresh:
                return
            last = page.uploads[-1]
            key_marker = last.object_name if page.next_key_marker else None
            upload_marker = last.upload_id

    def abort_upload(self, upload: UnfinishedUpload, active_before: datetime) -> bool:
        """Abort ``upload`` (as :meth:`unfinished_uploads` gave it) unless a part of it was uploaded at or
        after ``active_before``, or it is gone (completed or aborted meanwhile).

        Its parts are listed again first: a slow upload still sending them is left alone, however long
        ago it began. A part sent between that listing and the abort makes the writer's upload fail
        (S3 then refuses its parts and its completion); it never publishes a partial object.

        Returns:
            Whether this call aborted it.

        Raises:
            ValueError: ``upload.key`` is not a valid key.
            StorageUnavailable, StorageAuthError, StorageError: as :meth:`unfinished_uploads`.
        """
        validate_key(upload.key)
        current = self._unfinished(upload.key, upload.upload_id, upload.initiated)
        if current is None or current.last_activity >= active_before:
            return False
        try:
            self._client._abort_multipart_upload(
                bucket_name=self.bucket, object_name=self.key_prefix + upload.key, upload_id=upload.upload_id)
        except S3Error as error:
            if error.code == "NoSuchUpload":
                return False
            self._raise(error, upload.key, "abort an upload of")
        except _ANSWER_ERRORS as error:
            self._raise(error, upload.key, "abort an upload of")
        return True

    def _unfinished(self, key: str, upload_id: str, initiated: datetime | None) -> UnfinishedUpload | None:
        """The upload with its parts' size and latest time; None if the server no longer has it."""
        size = 0
        latest = initiated
        marker: str | None = None  # minio takes the part number as text
        while True:
            try:
                page = self._client._list_parts(
                    bucket_name=self.bucket, object_name=self.key_prefix + key, upload_id=upload_id,
                    max_parts=_LISTING_PAGE, part_number_marker=marker,
                )
            except S3Error as error:
                if error.code == "NoSuchUpload":
                    return None
                self._raise(error, key, "list the parts of an upload of")
            except _ANSWER_ERRORS as error:
                self._raise(error, key, "list the parts of an upload of")
            for part in page.parts:
                size += part.size or 0
                if part.last_modified is not None and (latest is None or part.last_modified > latest):
                    latest = part.last_modified
            if not page.is_truncated or not page.parts or str(page.parts[-1].part_number) == marker:
                break  # the last page, or a server whose pages do not move on
            marker = str(page.parts[-1].part_number)
        # No time at all from the server: taken as begun now, so that nothing is aborted on a guess.
        now = datetime.now(UTC)
        return UnfinishedUpload(key=key, upload_id=upload_id, initiated=initiated or latest or now,
                                last_activity=latest or now, size=size)

    # -- helpers -----------------------------------------------------------------------------------

    def _stat(self, key: str) -> tuple[ObjectInfo, str | None]:
        """The object's info and its retention header as sent (read by :meth:`_retained_until` only
        where retention matters, so an odd one does not stop a mere stat)."""
        validate_key(key)
        try:
            result = self._client.stat_object(bucket_name=self.bucket, object_name=self.key_prefix + key)
        except _CLIENT_ERRORS as error:
            self._raise(error, key, "stat")
        info = ObjectInfo(
            key=key, size=result.size or 0, modified=result.last_modified, etag=_etag(result.etag)
        )
        return info, result.metadata.get(_RETAIN_UNTIL_HEADER) if result.metadata else None

    def _retained_until(self, key: str, header: str | None, action: str) -> datetime | None:
        """The future time the object is retained until, from its retention header; None if it is not.

        Raises:
            StorageError: the header is not an ISO 8601 time with a time zone. The object may well be
                retained, so whatever was to be done is refused rather than done (or, as before, left to
                a bare ValueError that no caller handles as a store's error).
        """
        if not header:
            return None
        try:
            until = datetime.fromisoformat(header.replace("Z", "+00:00"))
        except ValueError:
            until = None
        if until is None or until.tzinfo is None:
            scheme = "https" if self.secure else "http"
            raise StorageError(f"the S3 server sent a retention date that cannot be read, {header!r}, for "
                               f"{key!r} in bucket {self.bucket!r} at {scheme}://{self.endpoint}; "
                               f"refusing to {action} it")
        return until if until > datetime.now(UTC) else None

    def _refuse_if_retained(self, key: str, action: str) -> None:
        try:
            retained = self._retained_until(key, self._stat(key)[1], action)
        except ObjectNotFound:
            return
        if retained is not None:
            raise ObjectLocked(f"cannot {action} {key!r}: it is retained until {retained.isoformat()}")

    def _no_bucket(self) -> StorageUnavailable:
        scheme = "https" if self.secure else "http"
        return StorageUnavailable(
            f"bucket {self.bucket!r} does not exist at {scheme}://{self.endpoint}; "
            "run ensure_ready to create it"
        )

    def _raise(self, error: Exception, key: str | None, action: str) -> NoReturn:
        """Re-raise a minio or urllib3 error as the matching storage error (never with a secret in it)."""
        raise self._translate(error, key, action) from None

    def _translate(self, error: Exception, key: str | None, action: str) -> StorageError:
        scheme = "https" if self.secure else "http"
        where = f"bucket {self.bucket!r} at {scheme}://{self.endpoint}"
        what = f"{action} {key!r} in {where}" if key is not None else f"{action} {where}"
        if isinstance(error, S3Error):
            if error.code in _NOT_FOUND_CODES:
                return ObjectNotFound(f"no object {key!r} in {where}")
            if error.code == "NoSuchBucket":
                return self._no_bucket()
            if error.code in _AUTH_CODES:
                return StorageAuthError(
                    f"the S3 server refused our credentials or signature ({error.code}) trying to {what}; "
                    "check the access key and secret key"
                )
            return StorageError(f"the S3 server refused to {what}: {error.code}: {error.message}")
        if isinstance(error, ServerError):
            return StorageUnavailable(f"the S3 server failed (HTTP {error.status_code}) trying to {what}")
        if isinstance(error, InvalidResponseError | ValueError | ElementTree.ParseError):
            return StorageError(f"unexpected non-S3 answer trying to {what}; is the endpoint an S3 server?")
        reason = getattr(error, "reason", None) or error
        if isinstance(reason, urllib3.exceptions.ResponseError):
            # urllib3 retried 5xx answers and gave up: the server is up but failing.
            return StorageUnavailable(f"the S3 server failed repeatedly trying to {what}: {reason}")
        # Connection refused, DNS failure, timeouts, TLS failure, connection dropped mid-body.
        return StorageUnavailable(
            f"cannot reach the S3 endpoint to {what}: {type(reason).__name__}: {reason}"
        )


class _ObjectReader(io.RawIOBase):
    """A GET response body as a file object whose ``close`` also hands the connection back."""

    def __init__(self, response: urllib3.BaseHTTPResponse, store: S3Store, key: str) -> None:
        super().__init__()
        self._response = response
        self._store = store
        self._key = key

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        # Delegated directly (not through readinto) to avoid copying every chunk once more. The bytes
        # are returned as stored: a Content-Encoding header must never make the client decompress them.
        if self.closed:
            raise ValueError("read from a closed object stream")
        try:
            return self._response.read(None if size is None or size < 0 else size, decode_content=False)
        except urllib3.exceptions.HTTPError as error:
            self._store._raise(error, self._key, "read")

    def readall(self) -> bytes:
        return self.read(-1)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            try:
                self._response.close()
                self._response.release_conn()
            finally:
                super().close()


def _etag(value: str | None) -> str | None:
    return value.strip('"') if value else None


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).astimezone(UTC)
    except (TypeError, ValueError):
        return None
