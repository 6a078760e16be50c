"""Inserting one row on a hot path with a Core statement, handed back as a persistent ORM object.

The ORM's flush of one new object (its unit of work sorting, the identity map, the events) costs several
times the INSERT's own Python; a view opened on every reading of a file paid it on each one. Here the
row's values are completed with the columns' own defaults, inserted by a statement built once per table,
and the object is built from exactly what was written and added to the session as already persistent:
nothing is flushed again, and no attribute of it is loaded back (every column is set).
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from sqlalchemy import Insert, Table, insert, inspect
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_dict

T = TypeVar("T")


@functools.cache
def _statement(table: Table) -> Insert:
    (key,) = table.primary_key.columns
    return insert(table).returning(key)


def completed(table: Table, values: dict[str, Any]) -> dict[str, Any]:
    """Every column but the generated key: the given value, else the column's default, else None."""
    row: dict[str, Any] = {}
    for column in table.columns:
        if column.primary_key:
            continue
        if column.key in values:
            row[column.key] = values[column.key]
            continue
        default = column.default
        if column.server_default is not None:
            raise TypeError(f"{table.name}.{column.key}: a server default cannot be known before the insert")
        if default is None:
            row[column.key] = None
        elif default.is_callable:
            row[column.key] = default.arg(None)  # type: ignore[attr-defined]  # SQLAlchemy wraps it to take a context
        elif default.is_scalar:
            row[column.key] = default.arg  # type: ignore[attr-defined]
        else:
            raise TypeError(f"{table.name}.{column.key}: a SQL default cannot be known before the insert")
    unknown = set(values) - set(row)
    if unknown:
        raise TypeError(f"{table.name} has no column(s) {sorted(unknown)}")
    return row


def insert_row(session: Session, model: type[T], **values: Any) -> T:
    """Insert one `model` row in `session`'s transaction and return it as a persistent object.

    Raises whatever the INSERT raises (a constraint, a lost connection); the session is then as after any
    failed statement. The object's relationships are not loaded: set them with `set_committed_value`
    when the caller knows them.
    """
    table: Table = model.__table__  # type: ignore[attr-defined]
    row = completed(table, values)
    (key,) = table.primary_key.columns
    row[key.key] = session.execute(_statement(table), row).scalar_one()
    return persistent(session, model, row)


@functools.cache
def _column_attributes(model: type) -> frozenset[str]:
    return frozenset(inspect(model).column_attrs.keys())


def persistent(session: Session, model: type[T], row: dict[str, Any]) -> T:
    """The object of a row written by a statement of the caller's (every column in `row`, key included),
    added to `session` as persistent: the ORM neither writes it again nor reads it back.

    The values go straight into the new object's state, as a load does, rather than through the model's
    constructor: that sets each attribute as a change (an event and history per column) only for
    `make_transient_to_detached` to take every one of them back as committed.
    """
    unknown = set(row) - _column_attributes(model)
    if unknown:
        raise TypeError(f"{model.__name__} has no column attribute(s) {sorted(unknown)}")
    instance: T = inspect(model).class_manager.new_instance()
    instance_dict(instance).update(row)
    make_transient_to_detached(instance)
    session.add(instance)
    return instance
