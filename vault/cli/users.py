"""`vault user ...` and `vault token ...`."""

from __future__ import annotations

import sys
from datetime import timedelta

import click
from sqlalchemy import select

from vault.cli.common import cli, open_runtime, unit_of_work
from vault.core.context import AccessContext
from vault.mail.accounts import set_email
from vault.models import Role, User, utcnow
from vault.services import accounts

ROLE_CHOICE = click.Choice([r.value for r in Role])


@cli.group("user")
def user_group() -> None:
    """Accounts and roles."""


@user_group.command("add")
@click.argument("username")
@click.option("--role", "roles", multiple=True, type=ROLE_CHOICE, help="Repeat for several roles.")
@click.option("--name", "display_name", default=None, help="Full name shown in pages and reports.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--manager", default=None, metavar="NAME", help="User name of the person's manager.")
@click.option("--email", default=None, help="Address for notifications.")
def user_add(username: str, roles: tuple[str, ...], display_name: str | None, password_stdin: bool,
             manager: str | None, email: str | None) -> None:
    """Create an account with the given roles."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    rt = open_runtime()
    with unit_of_work(rt) as session:
        user = accounts.create_user(rt, session, username=username, password=password,
                                    display_name=display_name, roles=tuple(Role(r) for r in roles))
        if email:
            set_email(rt, session, user, email, actor=None, ctx=AccessContext.cli())
        if manager:
            accounts.set_manager(rt, session, user, accounts.get_user(session, manager), actor=None)
        click.echo(f"created {user.username} with roles {', '.join(sorted(roles)) or 'none'}"
                   + (f", reporting to {manager}" if manager else ""))


@user_group.command("manager")
@click.argument("username")
@click.argument("manager", required=False)
@click.option("--none", "clear", is_flag=True, help="The person reports to nobody.")
def user_manager(username: str, manager: str | None, clear: bool) -> None:
    """Name USERNAME's manager (managers see the customers their reports own)."""
    if bool(manager) == clear:
        raise click.UsageError("give a MANAGER, or --none")
    rt = open_runtime()
    with unit_of_work(rt) as session:
        user = accounts.get_user(session, username)
        accounts.set_manager(rt, session, user, accounts.get_user(session, manager) if manager else None,
                             actor=None)
        click.echo(f"{user.username} reports to {manager or 'nobody'}")


@user_group.command("role")
@click.argument("username")
@click.option("--add", "add", multiple=True, type=ROLE_CHOICE)
@click.option("--remove", "remove", multiple=True, type=ROLE_CHOICE)
def user_role(username: str, add: tuple[str, ...], remove: tuple[str, ...]) -> None:
    """Add or remove roles (static conflicts are refused with the reason)."""
    rt = open_runtime()
    with unit_of_work(rt) as session:
        user = accounts.get_user(session, username)
        for role in remove:
            accounts.remove_role(rt, session, user, Role(role), actor=None)
        for role in add:
            accounts.assign_role(rt, session, user, Role(role), actor=None)
        click.echo(f"{user.username}: {', '.join(sorted(map(str, user.role_set))) or 'no roles'}")


@user_group.command("list")
def user_list() -> None:
    """Every account with its status and roles."""
    rt = open_runtime()
    with unit_of_work(rt) as session:
        for user in session.scalars(select(User).order_by(User.username)):
            roles = ", ".join(sorted(map(str, user.role_set)))
            state = "disabled" if user.disabled else str(user.status)
            click.echo(f"{user.username:20} {state:10} {roles}")


@cli.group("token")
def token_group() -> None:
    """API bearer tokens."""


def _lifetime(text: str | None) -> timedelta | None:
    """"12h" or "30d" (or None: the default, 30 days, 12 hours for a duty role)."""
    if text is None:
        return None
    number, unit = text[:-1], text[-1:].lower()
    if not number.isdigit() or unit not in ("h", "d") or int(number) < 1:
        raise click.BadParameter("a number of hours or days, like 12h or 30d", param_hint="--expires")
    return timedelta(hours=int(number)) if unit == "h" else timedelta(days=int(number))


@token_group.command("create")
@click.argument("username")
@click.option("--name", default="cli", show_default=True)
@click.option("--expires", default=None, metavar="12h|30d",
              help="Lifetime (default 30 days; duty roles at most 12 hours; others at most VAULT_TOKEN_MAX_DAYS).")
@click.option("--scope", type=click.Choice(accounts.TOKEN_SCOPES), default="write", show_default=True,
              help="read: GET only (lists and look-ups); write: everything the account may do.")
def token_create(username: str, name: str, expires: str | None, scope: str) -> None:
    """Create a token (for service accounts above all); the secret is printed once, as the last line."""
    lifetime = _lifetime(expires)
    rt = open_runtime()
    with unit_of_work(rt) as session:
        user = accounts.get_user(session, username)
        new = accounts.create_token(rt, session, user, name=name, scope=scope,
                                    expires_at=utcnow() + lifetime if lifetime else None,
                                    ctx=AccessContext.cli())
    expiry = new.token.expires_at.strftime("%Y-%m-%d %H:%M UTC") if new.token.expires_at else "never"
    click.echo(f"token {new.token.id} for {username}, scope {scope}, expires {expiry} "
               "(keep it secret; it is not shown again):")
    click.echo(new.secret)


@token_group.command("revoke")
@click.argument("username")
@click.option("--id", "token_id", type=int, default=None, help="One token; all of the user's when omitted.")
def token_revoke(username: str, token_id: int | None) -> None:
    """Revoke one or all tokens of a user."""
    rt = open_runtime()
    with unit_of_work(rt) as session:
        user = accounts.get_user(session, username)
        count = accounts.revoke_tokens(rt, session, user, token_id=token_id)
    click.echo(f"revoked {count} token(s) of {username}")
