"""The parts a running vault is made of, built once from the settings and shared by app and CLI."""

from __future__ import annotations

from dataclasses import dataclass

from crypto import Keyring
from storage import LocalStore, ObjectStore, S3Store
from vault.audit import AuditLog
from vault.audit.checkpoints import Checkpointer
from vault.config.settings import Settings
from vault.core.passwords import Passwords
from vault.db.engine import Database


def make_store(settings: Settings) -> ObjectStore:
    """The object store the settings name, the same for the app and every command (`vault fsck` included):
    one place, so that no part of vault can see an S3 bucket outside `VAULT_S3_PREFIX`."""
    if settings.storage == "s3":
        return S3Store(
            endpoint=settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            bucket=settings.s3_bucket,
            secure=settings.s3_secure,
            key_prefix=settings.s3_prefix,
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

    def __post_init__(self) -> None:
        # Every session carries the settings, for look-ups that get only a session (remaining views).
        self.db.sessions.configure(info={"vault_settings": self.settings})

    @classmethod
    def build(cls, settings: Settings, keyring: Keyring | None = None) -> Runtime:
        """Open the database, object store and keyring named by `settings`.

        Raises:
            crypto.KeyringError: the keyring is missing or readable by others (the app must not start).
        """
        keyring = keyring or Keyring.load(settings.keyring_path)
        db = Database(settings.database)
        store = make_store(settings)
        return cls(
            settings=settings,
            db=db,
            store=store,
            keyring=keyring,
            audit=AuditLog(keyring.audit_key, checkpoints=Checkpointer(db, store, keyring, settings),
                           shards=settings.audit_shards),
            passwords=Passwords(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib),
        )

    def close(self) -> None:
        self.db.dispose()
