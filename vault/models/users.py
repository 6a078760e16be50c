"""People, their roles and their API tokens."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vault.models.base import Base, UTCDateTime, utcnow


class Role(StrEnum):
    ADMIN = "admin"
    APPROVER = "approver"
    AUDITOR = "auditor"
    BORROWER = "borrower"
    COMPILER = "compiler"
    CUSTODIAN = "custodian"


class UserStatus(StrEnum):
    ACTIVE = "active"
    DEPARTING = "departing"
    DEPARTED = "departed"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), unique=True, index=True)
    # The person's own language and time zone (account page); None: the browser's language, the company's zone.
    locale: Mapped[str | None] = mapped_column(String(16))
    timezone: Mapped[str | None] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    status: Mapped[UserStatus] = mapped_column(String(16), default=UserStatus.ACTIVE)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped to end every session of the person at once (log out everywhere, disable, departure).
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when notice is given: the last working day, and the instant it ends in the timezone that was
    # configured then (stored in UTC so the check below needs no settings).
    last_day: Mapped[date | None] = mapped_column(Date)
    access_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The person's manager: managers see the customers their reports own, down the whole chain.
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    # Set by a high-severity directory alert (auto_suspend): customer records are refused until an
    # approver lifts it.
    customers_suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    manager: Mapped[User | None] = relationship(remote_side="User.id", foreign_keys=[manager_id])
    roles: Mapped[list[RoleAssignment]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin",
        foreign_keys="RoleAssignment.user_id",
    )

    @property
    def role_set(self) -> frozenset[Role]:
        return frozenset(Role(r.role) for r in self.roles)

    def has_role(self, role: Role) -> bool:
        return role in self.role_set

    @property
    def can_sign_in(self) -> bool:
        """False once disabled, departed, or past the last working day of a notice period.

        The last-day test is here, where every page, API call and token look-up already asks, so the
        moment the last day ends nothing is readable any more, even before `vault departures run`
        has revoked the person's loans and tokens.
        """
        if self.disabled or self.status == UserStatus.DEPARTED:
            return False
        return not (self.status == UserStatus.DEPARTING and self.access_ends_at is not None
                    and self.access_ends_at <= utcnow())

    @property
    def past_last_day(self) -> bool:
        return self.access_ends_at is not None and self.access_ends_at <= utcnow()

    def __repr__(self) -> str:
        return f"<User {self.username}>"


class RoleAssignment(Base):
    __tablename__ = "role_assignments"
    __table_args__ = (UniqueConstraint("user_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(String(16))
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="roles", foreign_keys=[user_id])


class ApiToken(Base):
    """A bearer token; only its SHA-256 is kept, the secret is shown once at creation."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "read": safe methods only (lists and look-ups); "write": everything the person may do.
    scope: Mapped[str] = mapped_column(String(8), default="write", server_default="write")
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()
