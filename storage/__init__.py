"""Object storage for vault: one small interface, a local-folder backend and an S3 backend.

Callers depend on :class:`ObjectStore` and the errors below only; which backend is used is a matter of
configuration.
"""

from storage.base import (
    LeavesTemporaryFiles,
    Leftover,
    ObjectInfo,
    ObjectLocked,
    ObjectNotFound,
    ObjectStore,
    StorageAuthError,
    StorageError,
    StorageUnavailable,
    validate_key,
    validate_prefix,
)
from storage.local import LocalStore
from storage.s3 import S3Store

__all__ = [
    "LeavesTemporaryFiles",
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
    "validate_key",
    "validate_prefix",
]
