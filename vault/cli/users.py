"""`vault user ...` and `vault token ...`."""

from __future__ import annotations

import sys

import click

from ..models import Role
from ..services import accounts
from .common import cli, open_runtime, unit_of_work

ROLE_CHOICE = click.Choice([r.value for r in Role])


@cli.group("user")
def user_group() -> None:
    """Accounts and roles."""


@user_group.command("add")
@click.argument("username")
@click.option("--role", "roles", multiple=True, type=ROLE_CHOICE, help="Repeat for several roles.")
@click.option("--name", "display_name", default=None, help="Full name shown in pages and reports.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--email", default=None, help="Address for notifications.")
def user_add(username: str, roles: tuple[str, ...], display_name: str | None, password_stdin: bool,
             email: str | None) -> None:
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
            from ..context import AccessContext
            from ..mail.accounts import set_email

            set_email(rt, session, user, email, actor=None, ctx=AccessContext.cli())
        click.echo(f"created {user.username} with roles {', '.join(sorted(roles)) or 'none'}")


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
    from sqlalchemy import select

    from ..models import User

    rt = open_runtime()
    with unit_of_work(rt) as session:
        for user in session.scalars(select(User).order_by(User.username)):
            roles = ", ".join(sorted(map(str, user.role_set)))
            state = "disabled" if user.disabled else str(user.status)
            click.echo(f"{user.username:20} {state:10} {roles}")


@cli.group("token")
def token_group() -> None:
    """API bearer tokens."""


@token_group.command("create")
@click.argument("username")
@click.option("--name", default="cli", show_default=True)
def token_create(username: str, name: str) -> None:
    """Create a token; the secret is printed once, as the last line."""
    rt = open_runtime()
    with unit_of_work(rt) as session:
        user = accounts.get_user(session, username)
        new = accounts.create_token(rt, session, user, name=name)
    click.echo(f"token {new.token.id} for {username} (keep it secret; it is not shown again):")
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
