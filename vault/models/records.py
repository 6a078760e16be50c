"""The structured customer record: company facts in clear, contacts, terms and notes encrypted.

Only facts that say nothing a competitor could call (legal name, address, city, industry, size, business
status) are kept in clear columns, so lists can show and sort them. Contacts, commercial terms, notes, every
version's snapshot and every contact-log entry are sealed with AES-GCM under the customer's own data key,
which is stored only wrapped by the keyring's master key (`vault.services.record_crypto`): a dump of the
database names no phone, e-mail or messaging ID.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Integer, LargeBinary, String, UniqueConstraint, event
from sqlalchemy.orm import Mapped, mapped_column

from vault.models.base import Base, UTCDateTime, utcnow
from vault.models.customers import name_key


class CustomerRecord(Base):
    """The current record of one customer (one row per customer, made at its first edit or demo load)."""

    __tablename__ = "customer_records"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    legal_name: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str] = mapped_column(String(300), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    # The city folded like customer names ("München" → "munchen"), so search finds it alike on SQLite and
    # PostgreSQL; kept by the model itself (`_fold_city`).
    city_key: Mapped[str] = mapped_column(String(100), index=True, default="")
    industry: Mapped[str] = mapped_column(String(100), default="")
    size: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[str] = mapped_column(String(32), default="")
    # The customer's data key, wrapped by the master key `key_id` (context: the customer id).
    key_id: Mapped[str] = mapped_column(String(16))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    # nonce ‖ AES-GCM ciphertext ‖ tag of each group's JSON; associated data: customer id + group name.
    contacts: Mapped[bytes | None] = mapped_column(LargeBinary)
    terms: Mapped[bytes | None] = mapped_column(LargeBinary)
    notes: Mapped[bytes | None] = mapped_column(LargeBinary)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The owner saw the record and found it current without changing anything (the cadence restarts).
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


@event.listens_for(CustomerRecord, "before_insert")
@event.listens_for(CustomerRecord, "before_update")
def _fold_city(_mapper: object, _connection: object, record: CustomerRecord) -> None:
    # Written on every save, so no path that changes the city can leave the search key stale.
    record.city_key = name_key(record.city)[:100]


class CustomerRecordVersion(Base):
    """One saved state of a record: who, when, which fields changed (names only), and the whole record
    sealed. Diffs are computed on read by opening two neighbouring snapshots, so no changed value ever
    sits in a clear column."""

    __tablename__ = "customer_record_versions"
    __table_args__ = (UniqueConstraint("customer_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    changed: Mapped[str] = mapped_column(String(300), default="")  # field names, comma-separated
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class ContactLogEntry(Base):
    """A visit, call or meeting with the customer. Date, channel, author and the two flags are clear (the
    cadence and the handover rule count them); the contact person, topic, result and next step are
    sealed like the notes."""

    __tablename__ = "customer_contact_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    happened_on: Mapped[date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(16))
    # A manager's visit to check the file and keep the relationship with the company.
    verification: Mapped[bool] = mapped_column(Boolean, default=False)
    # The entry names the record's main contact (the first contact) as the person reached.
    main_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    logged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class RevealUsage(Base):
    """Reveals spent by one person in one period: per customer (`scope` "customer", `target` its id,
    `period` = days since 1970 // window) or across customers (`scope` "day", `target` 0, `period` =
    days since 1970); and look-ups by name (`scope` "lookup", `target` 0, `period` = the local day of the
    working-hours timezone, as days since 1970). Spent by a conditional UPDATE, like the view quota
    (`vault.services.reveal_quota`)."""

    __tablename__ = "reveal_usage"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    scope: Mapped[str] = mapped_column(String(16), primary_key=True)
    target: Mapped[int] = mapped_column(Integer, primary_key=True)
    period: Mapped[int] = mapped_column(Integer, primary_key=True)
    used: Mapped[int] = mapped_column(Integer, default=0)
