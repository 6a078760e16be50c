"""Customer files and their encrypted versions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Integer, LargeBinary, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vault.models.base import Base, UTCDateTime, utcnow
from vault.models.customers import Customer, name_key
from vault.models.users import User


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (CheckConstraint("grade BETWEEN 1 AND 3", name="grade_range"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    # The title folded like a customer's name ("Contrato Ibérica" → "contrato iberica"), so search
    # matches alike on SQLite and PostgreSQL; kept by the model (see `_fold_title`).
    title_key: Mapped[str] = mapped_column(String(200), index=True, default="")
    grade: Mapped[int] = mapped_column(Integer)
    compiler_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    custodian_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Per-document override of the grade's views-per-person, set by a custodian.
    view_quota: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer: Mapped[Customer] = relationship()
    compiler: Mapped[User] = relationship(foreign_keys=[compiler_id])
    custodian: Mapped[User | None] = relationship(foreign_keys=[custodian_id])
    versions: Mapped[list[DocumentVersion]] = relationship(
        back_populates="document", order_by="DocumentVersion.number", cascade="all, delete-orphan"
    )

    @property
    def latest(self) -> DocumentVersion | None:
        return self.versions[-1] if self.versions else None


@event.listens_for(Document, "before_insert")
@event.listens_for(Document, "before_update")
def _fold_title(_mapper: object, _connection: object, document: Document) -> None:
    # Kept by the model itself, so no path that titles a document can leave the key stale.
    document.title_key = name_key(document.title)


class DocumentVersion(Base):
    """One encrypted object. The data key is kept only wrapped, beside the id of the key that wraps it."""

    __tablename__ = "document_versions"
    __table_args__ = (UniqueConstraint("document_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    object_key: Mapped[str] = mapped_column(String(255), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    wrapped_dek: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(64), index=True)
    content_type: Mapped[str] = mapped_column(String(127))
    original_name: Mapped[str] = mapped_column(String(255))
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The viewer's rendition, made once at upload: "ready" (pages stored), "none" (kept, no preview; the
    # reason says why), or NULL for a version stored before renditions existed (treated as "none").
    preview: Mapped[str | None] = mapped_column(String(16))
    preview_reason: Mapped[str | None] = mapped_column(String(300))
    page_count: Mapped[int] = mapped_column(Integer, default=0)

    document: Mapped[Document] = relationship(back_populates="versions")
    uploaded_by: Mapped[User] = relationship()
    pages: Mapped[list[VersionPage]] = relationship(
        back_populates="version", order_by="VersionPage.number", cascade="all, delete-orphan"
    )

    @property
    def has_preview(self) -> bool:
        return self.preview == PREVIEW_READY and self.page_count > 0


PREVIEW_READY = "ready"
PREVIEW_NONE = "none"


class VersionPage(Base):
    """One rendered page of a version: an encrypted object beside the version's, under the same data key.

    The page's ciphertext is bound to the document id, version number and page number (see
    `services.renditions.page_context`), so a page object swapped for another page or another version's
    page fails authentication.
    """

    __tablename__ = "version_pages"
    __table_args__ = (UniqueConstraint("version_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("document_versions.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    object_key: Mapped[str] = mapped_column(String(255), unique=True)
    media_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))

    version: Mapped[DocumentVersion] = relationship(back_populates="pages")
