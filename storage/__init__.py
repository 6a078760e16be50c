"""Object storage for vault: one small interface, a local-folder backend and an S3 backend.

Callers depend on :class:`ObjectStore` and the errors below only; which backend is used is a matter of
configuration.
"""

from storage.base import (
    LeavesTemporaryFiles,
    LeavesUnfinishedUploads,
    Leftover,
    ObjectInfo,
    ObjectLocked,
    ObjectNotFound,
    ObjectStore,
    StorageAuthError,
    StorageError,
    StorageUnavailable,
    UnfinishedUpload,
    validate_key,
    validate_prefix,
)
from storage.local import LocalStore
from storage.s3 import S3Store

__all__ = [
    "LeavesTemporaryFiles",
    "LeavesUnfinishedUploads",
    "Leftover",
    "LocalStore",
    "ObjectInfo",
    "ObjectLocked",
    "ObjectNotFound",
    "ObjectStore",
    "S3Store",
    "StorageAuthError",
    "StorageError",
    "StorageUnavailable",
    "UnfinishedUpload",
    "validate_key",
    "validate_prefix",
]
