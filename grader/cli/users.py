"""`grader users create`: the staff accounts of the web app."""

from __future__ import annotations

import typer
from sqlalchemy.exc import IntegrityError

from grader.cli.helpers import EXIT_REJECTED, fail, load_settings, open_store_or_fail

app = typer.Typer(no_args_is_help=True, help="Staff accounts of the web app.")


@app.command("create")
def users_create(
    email: str = typer.Argument(..., help="The user's e-mail, which is their login."),
    role: str = typer.Option(..., "--role", help="admin or reviewer."),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=True,
                                 help="Asked for when not given (at least 8 characters)."),
) -> None:
    """Create an administrator or reviewer account."""
    from grader.web.users import Role, Users

    if role not in (r.value for r in Role):
        raise fail(f"--role must be admin or reviewer, not {role!r}", EXIT_REJECTED)
    if len(password) < 8:
        raise fail("the password needs at least 8 characters", EXIT_REJECTED)
    staff = Users(open_store_or_fail(load_settings()).engine)
    try:
        user = staff.create_user(email, password, Role(role))
    except IntegrityError:
        raise fail(f"a user {email!r} exists already", EXIT_REJECTED) from None
    typer.echo(f"{user.email}: {user.role.value}")


@app.command("token")
def users_token(
    email: str = typer.Argument(..., help="The staff account the token acts as."),
    name: str = typer.Option("", "--name", help="What the token is for, shown on the account's tokens page."),
) -> None:
    """Make an API token for a staff account and print it (once: only its hash is stored), e.g. for a script or CI
    where nobody opens the tokens page."""
    from grader.web.tokens import ApiTokens
    from grader.web.users import Users

    engine = open_store_or_fail(load_settings()).engine
    user = Users(engine).user_by_email(email)
    if user is None:
        raise fail(f"no staff account {email!r}; create it with `grader users create`", EXIT_REJECTED)
    typer.echo(ApiTokens(engine).create_token(user.id, name))
