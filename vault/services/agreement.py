"""The confidentiality agreement every person accepts before using vault, and again when it changes.

The acceptance is kept with its time, address, named place and browser, like an audit record, because
it is what the company will show if a person later says they never agreed. The version is a setting
(`agreement_version`): raising it asks everyone again at their next request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.config.settings import Settings
from vault.core.audit_actions import AuditAction
from vault.core.context import AccessContext
from vault.core.errors import Conflict
from vault.models import AgreementAcceptance, User
from vault.runtime import Runtime

DEFAULT_TEXT = Path(__file__).resolve().parent.parent / "data" / "agreement.md"


@dataclass(frozen=True)
class Block:
    """A piece of the agreement text: a heading, a paragraph, or a list of items."""

    kind: str
    text: str = ""
    items: tuple[str, ...] = field(default_factory=tuple)


def text(settings: Settings, locale: str | None = None) -> str:
    """The agreement in `locale` when a translation sits next to the text (`agreement.ru.md` beside
    `agreement.md`, for the company's own file as for the default), else the text itself. Every
    translation states the same duties: the version accepted is the same whatever the language."""
    source = settings.agreement_path or DEFAULT_TEXT
    if locale:
        translated = source.with_name(f"{source.stem}.{locale}{source.suffix}")
        if translated.is_file():
            return translated.read_text(encoding="utf-8")
    return source.read_text(encoding="utf-8")


def blocks(source: str) -> list[Block]:
    """Split the agreement's plain Markdown (headings, paragraphs, `-` lists) into blocks for the page.

    Only this small subset is understood, and everything is shown as text (escaped by the template),
    so the file cannot inject markup into the page.
    """
    result: list[Block] = []
    for chunk in source.replace("\r\n", "\n").split("\n\n"):
        lines = [line.rstrip() for line in chunk.strip("\n").split("\n") if line.strip()]
        if not lines:
            continue
        if lines[0].startswith("#"):
            result.append(Block("heading", lines[0].lstrip("#").strip()))
            lines = lines[1:]
            if not lines:
                continue
        if lines[0].lstrip().startswith(("- ", "* ")):
            items: list[str] = []
            for line in lines:
                stripped = line.strip()
                if stripped.startswith(("- ", "* ")):
                    items.append(stripped[2:].strip())
                elif items:
                    items[-1] += " " + stripped
            result.append(Block("list", items=tuple(items)))
        else:
            result.append(Block("paragraph", " ".join(line.strip() for line in lines)))
    return result


def accepted(session: Session, user: User, version: str) -> bool:
    return session.scalar(
        select(AgreementAcceptance.id).where(AgreementAcceptance.user_id == user.id,
                                             AgreementAcceptance.version == version).limit(1)
    ) is not None


def acceptance(session: Session, user: User, version: str) -> AgreementAcceptance | None:
    """`user`'s acceptance of `version`, with its time and place, or None."""
    return session.scalar(
        select(AgreementAcceptance).where(AgreementAcceptance.user_id == user.id,
                                          AgreementAcceptance.version == version).limit(1)
    )


def accept(rt: Runtime, session: Session, user: User, ctx: AccessContext, *,
           version: str | None = None) -> AgreementAcceptance:
    """Record that `user` accepts the current version (once: accepting again changes nothing).

    `version` is the one the person was shown, when the text reached them apart from this request (the
    API: read, then accepted): an acceptance covers only a text the person has seen, so a version that
    changed in between is refused (Conflict `agreement_version_stale`) and nothing is recorded.
    """
    current = rt.settings.agreement_version
    if version is not None and version != current:
        raise Conflict("agreement_version_stale",
                       _l("The agreement has changed since the version you were shown (%(shown)s): read the "
                          "current version (%(current)s) and accept that one.", shown=version, current=current))
    version = current
    existing = acceptance(session, user, version)
    if existing is not None:
        return existing
    row = AgreementAcceptance(user_id=user.id, version=version, client_addr=ctx.client_addr,
                              named_place=ctx.named_place, user_agent=(ctx.user_agent or "")[:400] or None)
    session.add(row)
    session.flush()
    rt.audit.record(session, action=AuditAction.AGREEMENT_ACCEPT, actor=user, ctx=ctx, subject_user_id=user.id,
                    detail={"version": version, "acceptance_id": row.id})
    return row
