"""The second factor: RFC 6238 time-based codes, with single-use recovery codes.

Required for the roles that decide or watch (approver, custodian, auditor, admin): a stolen password
alone must not approve a loan or release a file. Optional for everyone else.

A code is accepted once: the time step of the last accepted code is stored and only later steps
count, so a code read over someone's shoulder (or replayed from a captured request) is refused even
inside its 30-second window. Recovery codes are random (80 bits), so a plain SHA-256 is enough to
keep them useless to someone reading the database.

TOTP secrets are kept encrypted (AES-256-GCM, see `seal`): someone who reads the database, or a backup
of it, learns nothing that would let them compute codes. A secret written in plain text by an older
version (32 base32 characters; sealed ones are 64 base64 characters, so the two cannot be confused)
is sealed the next time it is used (an enrolment page, a code checked); no migration is needed, and
no key reaches the database's migration step.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

import pyotp
import segno
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from vault.core.audit_actions import AuditAction
from vault.core.clock import clock
from vault.core.context import AccessContext
from vault.core.errors import Conflict, ServiceError
from vault.models import RecoveryCode, Role, TotpSecret, User, utcnow
from vault.runtime import Runtime

REQUIRED_FOR = frozenset({Role.ADMIN, Role.APPROVER, Role.AUDITOR, Role.CUSTODIAN})
STEP_SECONDS = 30
DIGITS = 6
# One step either side of now, for clocks a little apart.
DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: codes are typed from paper


_SEAL_LABEL = b"vault totp secret at rest v1"
_NONCE_BYTES = 12
_SECRET_BYTES = 20  # 160 bits, as RFC 4226 recommends: 32 base32 characters
_PLAIN_CHARS = 32


def _aead(rt: Runtime) -> AESGCM:
    return AESGCM(rt.keyring.derive_key(_SEAL_LABEL))


def _aad(user_id: int) -> bytes:
    # The owner's id is bound in: a sealed secret copied onto another person's row does not open.
    return f"totp:{user_id}".encode("ascii")


def seal(rt: Runtime, user_id: int, secret: str) -> str:
    """Encrypt a base32 secret for the database: base64url(nonce || ciphertext || tag), 64 characters."""
    raw = base64.b32decode(secret)
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return base64.urlsafe_b64encode(nonce + _aead(rt).encrypt(nonce, raw, _aad(user_id))).decode("ascii")


def is_sealed(stored: str) -> bool:
    return len(stored) != _PLAIN_CHARS


def secret_of(rt: Runtime, row: TotpSecret) -> str:
    """The base32 secret of `row`. A plain-text one (older versions) is sealed in place as it is read."""
    if not is_sealed(row.secret):
        plain = row.secret
        row.secret = seal(rt, row.user_id, plain)
        return plain
    try:
        blob = base64.urlsafe_b64decode(row.secret.encode("ascii"))
        raw = _aead(rt).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _aad(row.user_id))
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise ServiceError("second_factor_unreadable",
                           _l("The second factor cannot be read with this keyring; an administrator must reset it.")
                           ) from exc
    return base64.b32encode(raw).decode("ascii")


def required(user: User) -> bool:
    return bool(user.role_set & REQUIRED_FOR)


def record(session: Session, user: User, *, lock: bool = False) -> TotpSecret | None:
    query = select(TotpSecret).where(TotpSecret.user_id == user.id).execution_options(populate_existing=True)
    if lock:
        query = query.with_for_update()
    return session.scalar(query)


def enrolled(session: Session, user: User) -> bool:
    row = record(session, user)
    return row is not None and row.confirmed_at is not None


def time_step(at: float | None = None) -> int:
    return int((clock.timestamp() if at is None else at) // STEP_SECONDS)


def code_at(secret: str, step: int) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).at(step * STEP_SECONDS)


def begin_enrolment(rt: Runtime, session: Session, user: User) -> str:
    """The base32 secret being enrolled: the pending one if the person reloads the page, else a new one
    (stored sealed)."""
    row = record(session, user, lock=True)
    if row is not None and row.confirmed_at is not None:
        raise Conflict("already_enrolled", _l("A second factor is already set up."))
    if row is None:
        secret = base64.b32encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii")
        row = TotpSecret(user_id=user.id, secret=seal(rt, user.id, secret))
        session.add(row)
        session.flush()
        return secret
    return secret_of(rt, row)


def provisioning_uri(rt: Runtime, user: User, secret: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=user.username, issuer_name=rt.settings.totp_issuer)


def qr_data_uri(uri: str) -> str:
    """The enrolment QR code as an SVG data: URI, drawn here so the secret never leaves the server."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def _ascii_digits(code: str) -> bool:
    """Digits 0-9 only: `str.isdigit` also takes "²" and "١", which no code holds, and comparing such a
    text with a code in constant time raises (the sign-in then failed uncounted and unrecorded)."""
    return code.isascii() and code.isdigit()


def _match(rt: Runtime, row: TotpSecret, code: str, at: float | None) -> str:
    """"ok" (and the step is remembered), "code_reused" or "bad_second_factor"."""
    code = "".join(code.split())
    if len(code) != DIGITS or not _ascii_digits(code):
        return "bad_second_factor"
    secret = secret_of(rt, row)
    now = time_step(at)
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if hmac.compare_digest(code_at(secret, step), code):
            if row.last_step is not None and step <= row.last_step:
                return "code_reused"
            row.last_step = step
            return "ok"
    return "bad_second_factor"


def confirm_enrolment(
    rt: Runtime, session: Session, user: User, code: str, ctx: AccessContext, *, at: float | None = None
) -> list[str]:
    """Confirm the pending secret with a code from the person's app; returns the recovery codes (shown once)."""
    row = record(session, user, lock=True)
    if row is None or row.confirmed_at is not None:
        raise Conflict("not_enrolling", _l("There is no second factor being set up."))
    outcome = _match(rt, row, code, at)
    if outcome != "ok":
        rt.audit.record(session, action=AuditAction.TOTP_ENROL, actor=user, ctx=ctx, outcome="denied",
                        reason_code=outcome, subject_user_id=user.id)
        raise ServiceError(outcome, _l("The code does not match; check the time on your phone and try again."))
    row.confirmed_at = utcnow()
    codes = _new_recovery_codes(session, user)
    rt.audit.record(session, action=AuditAction.TOTP_ENROL, actor=user, ctx=ctx, subject_user_id=user.id)
    return codes


def verify(
    rt: Runtime, session: Session, user: User, code: str, *, at: float | None = None
) -> tuple[str, str]:
    """Check a sign-in code: a TOTP code or an unused recovery code.

    Returns (outcome, method): outcome "ok", "code_reused" or "bad_second_factor"; method "totp" or
    "recovery_code". Auditing and failure counting are the sign-in's business.
    """
    row = record(session, user, lock=True)
    if row is None or row.confirmed_at is None:
        return "bad_second_factor", "totp"
    compact = "".join(code.split())
    if _ascii_digits(compact):
        return _match(rt, row, compact, at), "totp"
    return ("ok" if _use_recovery_code(session, user, code) else "bad_second_factor"), "recovery_code"


def remaining_recovery_codes(session: Session, user: User) -> int:
    return len(list(session.scalars(
        select(RecoveryCode.id).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)))))


def new_recovery_codes(rt: Runtime, session: Session, user: User, ctx: AccessContext) -> list[str]:
    """Replace the person's recovery codes (the old ones stop working); returns the new ones, shown once."""
    if not enrolled(session, user):
        raise Conflict("not_enrolled", _l("There is no second factor to make recovery codes for."))
    codes = _new_recovery_codes(session, user)
    rt.audit.record(session, action=AuditAction.TOTP_RECOVERY_CODES, actor=user, ctx=ctx, subject_user_id=user.id)
    return codes


def remove(
    rt: Runtime, session: Session, user: User, *, actor: User | None, ctx: AccessContext, action: AuditAction
) -> bool:
    """Delete the second factor and its recovery codes; returns whether there was one."""
    existed = record(session, user) is not None
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    session.execute(delete(TotpSecret).where(TotpSecret.user_id == user.id))
    rt.audit.record(session, action=action, actor=actor, ctx=ctx, subject_user_id=user.id,
                    detail={"had_second_factor": existed})
    return existed


def _hash_code(code: str) -> str:
    normal = "".join(ch for ch in code.lower() if ch.isalnum())
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()


def _new_recovery_codes(session: Session, user: User) -> list[str]:
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(16))
        code = "-".join(raw[i:i + 4] for i in range(0, 16, 4))
        session.add(RecoveryCode(user_id=user.id, code_hash=_hash_code(code)))
        codes.append(code)
    session.flush()
    return codes


def _use_recovery_code(session: Session, user: User, code: str) -> bool:
    row = session.scalar(
        select(RecoveryCode)
        .where(RecoveryCode.user_id == user.id, RecoveryCode.code_hash == _hash_code(code),
               RecoveryCode.used_at.is_(None))
        .with_for_update()
    )
    if row is None:
        return False
    row.used_at = utcnow()
    session.flush()
    return True
