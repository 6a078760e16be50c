"""The parts a running vault is made of, built once from the settings and shared by app and CLI."""

from __future__ import annotations

from dataclasses import dataclass

from crypto import Keyring
from storage import LocalStore, ObjectStore, S3Store

from .audit import AuditLog
from .config import Settings
from .db import Database
from .passwords import Passwords


def make_store(settings: Settings) -> ObjectStore:
    if settings.storage == "s3":
        return S3Store(
            endpoint=settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            bucket=settings.s3_bucket,
            secure=settings.s3_secure,
        )
    return LocalStore(settings.objects_dir)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    store: ObjectStore
    keyring: Keyring
    audit: AuditLog
    passwords: Passwords

    @classmethod
    def build(cls, settings: Settings, keyring: Keyring | None = None) -> Runtime:
        """Open the database, object store and keyring named by `settings`.

        Raises:
            crypto.KeyringError: the keyring is missing or readable by others (the app must not start).
        """
        keyring = keyring or Keyring.load(settings.keyring_path)
        return cls(
            settings=settings,
            db=Database(settings.database),
            store=make_store(settings),
            keyring=keyring,
            audit=AuditLog(keyring.audit_key),
            passwords=Passwords(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib),
        )

    def close(self) -> None:
        self.db.dispose()
