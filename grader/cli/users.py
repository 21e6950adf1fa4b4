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
