"""`insert_row`: one Core INSERT, handed back as a persistent object that never needs reading back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import ForeignKey, String, create_engine, event, func, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from vault.db.rows import insert_row, persistent

STAMP = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class Shelf(Base):
    __tablename__ = "shelves"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(20), unique=True)


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    shelf_id: Mapped[int] = mapped_column(ForeignKey("shelves.id"))
    title: Mapped[str] = mapped_column(String(50))
    copies: Mapped[int] = mapped_column(default=1)
    added_at: Mapped[datetime] = mapped_column(default=lambda: STAMP)
    note: Mapped[str | None] = mapped_column(String(50))
    shelf: Mapped[Shelf] = relationship()


class Stamped(Base):
    __tablename__ = "stamped"
    id: Mapped[int] = mapped_column(primary_key=True)
    made: Mapped[str] = mapped_column(String(30), server_default=text("'by the server'"))


@pytest.fixture
def session():
    engine = create_engine("sqlite://")
    event.listen(engine, "connect", lambda connection, _record: connection.execute("PRAGMA foreign_keys=ON"))
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(Shelf(id=1, name="first"))
        session.commit()
        yield session
    engine.dispose()


def statements_during(session: Session, work) -> list[str]:
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    try:
        work()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_the_row_is_written_with_the_columns_defaults_and_comes_back_persistent(session: Session) -> None:
    written: list[Book] = []
    statements = statements_during(session, lambda: written.append(insert_row(session, Book, shelf_id=1, title="A")))
    assert len(statements) == 1 and statements[0].lstrip().upper().startswith("INSERT INTO BOOKS")
    book = written[0]
    assert book in session and not session.new and not session.dirty
    # Every column is set as written: reading them (and flushing) costs no statement.
    assert statements_during(session, lambda: (book.id, book.copies, book.added_at, book.note, session.flush())) == []
    assert (book.copies, book.added_at.replace(tzinfo=UTC), book.note) == (1, STAMP, None)
    session.commit()
    stored = session.execute(select(Book.__table__)).one()
    assert (stored.id, stored.shelf_id, stored.title, stored.copies, stored.note) == (book.id, 1, "A", 1, None)


def test_given_values_win_over_defaults_and_a_relationship_loads_when_asked(session: Session) -> None:
    book = insert_row(session, Book, shelf_id=1, title="B", copies=3, note="kept")
    assert (book.copies, book.note) == (3, "kept")
    assert book.shelf.name == "first"  # not set by the insert: loaded on first use, as for any object
    second = insert_row(session, Book, shelf_id=1, title="C")
    assert second.id == book.id + 1


def test_a_column_it_cannot_know_or_does_not_have_is_refused_before_anything_is_written(session: Session) -> None:
    with pytest.raises(TypeError, match="server default"):
        insert_row(session, Stamped)
    with pytest.raises(TypeError, match="no column"):
        insert_row(session, Book, shelf_id=1, title="D", colour="red")
    assert session.scalar(select(func.count()).select_from(Book)) == 0
    assert session.scalar(select(func.count()).select_from(Stamped)) == 0


def test_a_refused_insert_leaves_no_row_and_no_object(session: Session) -> None:
    with pytest.raises(IntegrityError):
        insert_row(session, Book, shelf_id=99, title="nowhere")  # no such shelf
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Book)) == 0
    assert not [obj for obj in session.identity_map.values() if isinstance(obj, Book)]


def test_persistent_takes_the_values_as_a_load_does_and_a_later_change_is_flushed(session: Session) -> None:
    """`persistent` puts the written values in as loaded, not set one by one: no attribute event, no
    history, nothing to flush; a change made afterwards is an UPDATE of that column alone."""
    book_id = session.execute(Book.__table__.insert().values(shelf_id=1, title="E", copies=2, added_at=STAMP)
                               .returning(Book.__table__.c.id)).scalar_one()
    sets: list[str] = []

    def noted(_target: Book, value: str, *_args: object) -> None:
        sets.append(value)

    event.listen(Book.title, "set", noted)
    try:
        book = persistent(session, Book, {"id": book_id, "shelf_id": 1, "title": "E", "copies": 2,
                                          "added_at": STAMP, "note": None})
        assert sets == [] and book in session and not session.dirty and not session.new
        assert inspect(book).persistent and not inspect(book).attrs.title.history.has_changes()
        assert statements_during(session, lambda: (book.title, book.copies, session.flush())) == []
        book.title = "F"
        assert sets == ["F"]
        (update,) = statements_during(session, session.flush)
        assert update.lstrip().upper().startswith("UPDATE BOOKS SET TITLE")
        with pytest.raises(TypeError, match="no column"):
            persistent(session, Book, {"id": 99, "colour": "red"})
    finally:
        event.remove(Book.title, "set", noted)
