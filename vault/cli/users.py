"""`vault user ...` and `vault token ...`: an operator's account lifecycle on the server.

The operator (actor None, named in the audit log by `--operator` or the OS account) does what an
administrator does on the pages, through the same services and with the same records: create, disable,
enable, hand over a one-time password link, reset a lost second factor; and manages API tokens, which
are the operator's alone to give to service accounts.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from vault.cli.common import cli, column, echo_err, open_runtime, unit_of_work
from vault.core.context import AccessContext
from vault.mail.accounts import set_email
from vault.mail.render import link
from vault.models import Role, User, utcnow
from vault.runtime import Runtime
from vault.services import accounts, managers

ROLE_CHOICE = click.Choice([r.value for r in Role])
TIME = "%Y-%m-%d %H:%M UTC"
MAX_ID = 2**31 - 1  # ids are 32-bit columns: a larger number is refused as input, not passed to the database


def _when(moment: datetime | None, never: str = "never") -> str:
    return moment.strftime(TIME) if moment is not None else never


@contextmanager
def _account(username: str) -> Iterator[tuple[Runtime, Session, User]]:
    """The runtime, a unit of work, and USERNAME's account in it (a clean error when there is none)."""
    rt = open_runtime()
    with unit_of_work(rt) as session:
        yield rt, session, accounts.get_user(session, username)


def _hand_over(rt: Runtime, username: str, secret: str) -> None:
    """Print a one-time password link, once, as the last line (for the operator to give its owner)."""
    base_url = rt.settings.base_url
    if not base_url:
        echo_err("warning: VAULT_BASE_URL is not set: put this server's public address before the path")
    click.echo(f"one-time link for {username} to set their password, valid {accounts.PASSWORD_LINK_HOURS} hours "
               "(it is not shown again):")
    click.echo(link(base_url, accounts.password_set_path(secret)))


@cli.group("user")
def user_group() -> None:
    """Accounts and roles."""


@user_group.command("add")
@click.argument("username")
@click.option("--role", "roles", multiple=True, type=ROLE_CHOICE, help="Repeat for several roles.")
@click.option("--name", "display_name", default=None, help="Full name shown in pages and reports.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--link", "by_link", is_flag=True,
              help="Choose no password: print a one-time link with which the owner sets theirs.")
@click.option("--manager", default=None, metavar="NAME", help="User name of the person's manager.")
@click.option("--email", default=None, help="Address for notifications.")
def user_add(username: str, roles: tuple[str, ...], display_name: str | None, password_stdin: bool, by_link: bool,
             manager: str | None, email: str | None) -> None:
    """Create an account with the given roles (a password is asked for, unless --link)."""
    if by_link and password_stdin:
        raise click.UsageError("give --link or --password-stdin, not both")
    password: str | None = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif not by_link:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    rt = open_runtime()
    with unit_of_work(rt) as session:
        # The manager is looked up and judged first: a refusal then names no account it rolls back.
        boss = accounts.get_user(session, manager) if manager else None
        managers.refuse_departing_manager(boss, user=None)
        user = accounts.create_user(rt, session, username=username, password=password, by_link=by_link,
                                    display_name=display_name, roles=tuple(Role(r) for r in roles))
        if email:
            set_email(rt, session, user, email, actor=None, ctx=AccessContext.cli())
        if boss is not None:
            managers.set_manager(rt, session, user, boss, actor=None)
        secret = accounts.create_password_link(rt, session, user, actor=None).secret if by_link else None
        click.echo(f"created {user.username} with roles {', '.join(sorted(roles)) or 'none'}"
                   + (f", reporting to {manager}" if manager else ""))
    if secret is not None:  # only once it is committed: a link printed for a rolled-back account would lead nowhere
        _hand_over(rt, username, secret)


@user_group.command("password-link")
@click.argument("username")
def user_password_link(username: str) -> None:
    """Print a new one-time link with which USERNAME sets their password (earlier unused links stop working).

    Also for an account in use whose link an administrator cannot give (no mail, no address on record, or the
    administrator who asked changed the address): the operator, who holds the server, hands it over."""
    with _account(username) as (rt, session, user):
        if not user.can_sign_in:
            raise click.ClickException(f"{username} cannot sign in (disabled, departed or past their last day): "
                                       "a link would lead nowhere")
        secret = accounts.create_password_link(rt, session, user, actor=None).secret
    assert secret is not None  # the operator's link is printed, never mailed
    _hand_over(rt, username, secret)


@user_group.command("disable")
@click.argument("username")
@click.option("--reason", default=None, help="Why (kept in the audit record).")
def user_disable(username: str, reason: str | None) -> None:
    """Disable USERNAME: their sessions and API tokens stop working at once."""
    with _account(username) as (rt, session, user):
        tokens = len(accounts.list_tokens(session, user))
        accounts.disable_user(rt, session, user, None, AccessContext.cli(), reason=reason)
    click.echo(f"{username} is disabled: sessions ended, {tokens} token(s) revoked")


@user_group.command("enable")
@click.argument("username")
def user_enable(username: str) -> None:
    """Enable USERNAME again (a sign-in lockout is lifted too)."""
    with _account(username) as (rt, session, user):
        accounts.enable_user(rt, session, user, None, AccessContext.cli())
        usable = user.can_sign_in
    click.echo(f"{username} is enabled" + ("" if usable else " (but cannot sign in: departed or past their last day)"))


@user_group.command("reset-2fa")
@click.argument("username")
def user_reset_second_factor(username: str) -> None:
    """Remove USERNAME's authenticator and recovery codes (a lost phone); their sessions end."""
    with _account(username) as (rt, session, user):
        had = accounts.reset_second_factor(rt, session, user, None, AccessContext.cli())
    if had:
        click.echo(f"{username}: second factor removed, sessions ended; a new one is set up at the next sign-in")
    else:
        click.echo(f"{username} had no second factor; sessions ended")


@user_group.command("manager")
@click.argument("username")
@click.argument("manager", required=False)
@click.option("--none", "clear", is_flag=True, help="The person reports to nobody.")
def user_manager(username: str, manager: str | None, clear: bool) -> None:
    """Name USERNAME's manager (managers see the customers their reports own); not one on notice, nor one
    below someone on notice (refused and recorded, `manager_departing`)."""
    if bool(manager) == clear:
        raise click.UsageError("give a MANAGER, or --none")
    rt = open_runtime()
    with unit_of_work(rt) as session:
        user = accounts.get_user(session, username)
        managers.set_manager(rt, session, user, accounts.get_user(session, manager) if manager else None,
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
            click.echo(f"{column(user.username, 20)} {state:10} {roles}")


@cli.group("token")
def token_group() -> None:
    """API bearer tokens."""


def _lifetime(text: str | None) -> timedelta | None:
    """"12h" or "30d" (or None: the default, 30 days, 12 hours for a duty role)."""
    if text is None:
        return None
    number, unit = text[:-1], text[-1:].lower()
    # ASCII digits, and no more than a token can live (the longest anyone may set is far below this):
    # "²" passes `isdigit` and fails `int`, and a huge number overflows the date.
    if not (number.isascii() and number.isdigit()) or unit not in ("h", "d") or not 1 <= int(number) <= 36500:
        raise click.BadParameter("a number of hours or days, like 12h or 30d (at most 36500)",
                                 param_hint="--expires")
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


@token_group.command("list")
@click.argument("username")
def token_list(username: str) -> None:
    """USERNAME's tokens that are not revoked, newest first (ids for `token revoke --id`; never a secret)."""
    with _account(username) as (rt, session, user):
        tokens = accounts.list_tokens(session, user)
        now = utcnow()
        ends = {t.id: accounts.token_expires_at(rt.settings, t) for t in tokens}
        rows = [(str(t.id), t.name, t.scope, _when(t.created_at),
                 _when(ends[t.id]) + (" (expired)" if ends[t.id] <= now else ""),
                 _when(t.last_used_at)) for t in tokens]
    if not rows:
        click.echo(f"{username} has no tokens")
        return
    header = ("id", "name", "scope", "created", "expires", "last used")
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header) - 1)]
    for row in (header, *rows):
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])


@token_group.command("revoke")
@click.argument("username")
@click.option("--id", "token_id", type=click.IntRange(1, MAX_ID), default=None,
              help="One token; all of the user's when omitted.")
def token_revoke(username: str, token_id: int | None) -> None:
    """Revoke one or all tokens of a user."""
    rt = open_runtime()
    with unit_of_work(rt) as session:
        user = accounts.get_user(session, username)
        count = accounts.revoke_tokens(rt, session, user, token_id=token_id)
    click.echo(f"revoked {count} token(s) of {username}")
