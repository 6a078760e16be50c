"""The schema the migrations build is the one the models describe, on both databases: an index or a column
added to a model without its migration (or the other way round) is found here, not in production."""

from __future__ import annotations

import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from vault.db import schema
from vault.db.engine import Database
from vault.models import Base


def test_the_migrated_schema_is_the_models(empty_database: Database) -> None:
    schema.upgrade(empty_database)
    with warnings.catch_warnings():
        # An index on an expression (0024's lower(trim(declared_place))) cannot be reflected on SQLite.
        warnings.simplefilter("ignore")
        with empty_database.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    # PostgreSQL reflects an expression as it normalised it (`lower(TRIM(BOTH FROM ...))`), which alembic
    # tells as the index removed and added again: such a pair, of the same name, is the same index.
    pairs = {(d[0], d[1].name) for d in differences if d[0] in {"add_index", "remove_index"}}
    rewritten = {name for kind, name in pairs if kind == "add_index" and ("remove_index", name) in pairs}
    assert [d for d in differences if not (d[0] in {"add_index", "remove_index"} and d[1].name in rewritten)] == []
