"""Schema migrations (Alembic) applied from inside the package, so `vault init` works from a wheel."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from vault.db.engine import Database

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(db: Database, revision: str = "head", *, seal_notes: Callable[[Connection], None] | None = None,
            zone: str | None = None) -> None:
    """Bring the schema to `revision` in one transaction. `seal_notes` seals the customers' old clear notes
    into their records on the migration's connection (revision 0014 needs it when any customer has some;
    only a caller holding the keyring can give it). `zone`: the working-hours timezone's name, whose days
    revision 0023 tallies the recent views by (UTC's without it)."""
    cfg = alembic_config(db.url)
    with db.engine.begin() as connection:
        cfg.attributes["connection"] = connection
        if seal_notes is not None:
            cfg.attributes["seal_notes"] = seal_notes
        if zone is not None:
            cfg.attributes["zone"] = zone
        command.upgrade(cfg, revision)


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(db: Database) -> str | None:
    return ScriptDirectory.from_config(alembic_config(db.url)).get_current_head()


def is_current(db: Database) -> bool:
    return current_revision(db) == head_revision(db)
