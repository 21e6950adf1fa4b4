"""Staff accounts (administrators and reviewers), their passwords, and the throttle on password guessing.

Passwords are salted and stretched by werkzeug. Failed logins are rows (`login_failures`), so that every
worker process of the web app counts the same guesses.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, delete, func, insert, select
from werkzeug.security import check_password_hash, generate_password_hash

from grader.db.engine import first_row
from grader.db.schema import login_failures, users
from grader.db.store import utcnow


class Role(str, Enum):
    admin = "admin"
    reviewer = "reviewer"


def email_key(email: str) -> str:
    """An e-mail as accounts and login failures store and compare it: trimmed, lower case."""
    return email.strip().lower()


class User(BaseModel):
    """A staff account; Flask-Login's user object (its `is_*` attributes and `get_id`)."""

    model_config = ConfigDict(frozen=True)

    id: int
    email: str
    role: Role
    created_at: datetime
    is_authenticated: bool = True
    is_active: bool = True
    is_anonymous: bool = False

    def get_id(self) -> str:
        return str(self.id)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin


def user_from_row(row: dict[str, Any] | None) -> User | None:
    """A `users` row (or any row with its id, email, role and created_at) as a User."""
    return User(id=row["id"], email=row["email"], role=Role(row["role"]), created_at=row["created_at"]) if row else None


class Users:
    """Staff accounts and failed logins, over the SQLAlchemy database engine passed in."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_user(self, email: str, password: str, role: Role) -> User:
        """A new account; an e-mail that exists raises sqlalchemy's IntegrityError."""
        with self.engine.begin() as conn:
            conn.execute(users.insert().values(
                email=email_key(email), password_hash=generate_password_hash(password), role=role.value,
                created_at=utcnow(),
            ))
        user = self.user_by_email(email)
        assert user is not None
        return user

    def user(self, user_id: int) -> User | None:
        return user_from_row(first_row(self.engine, select(users).where(users.c.id == user_id)))

    def user_by_email(self, email: str) -> User | None:
        return user_from_row(first_row(self.engine, select(users).where(users.c.email == email_key(email))))

    def authenticate(self, email: str, password: str) -> User | None:
        """The user whose password this is, or None; as slow for an unknown e-mail as for a wrong password."""
        row = first_row(self.engine, select(users).where(users.c.email == email_key(email)))
        if row is None:
            check_password_hash(generate_password_hash("x"), password)  # the same work whether or not the user exists
            return None
        return user_from_row(row) if check_password_hash(row["password_hash"], password) else None

    def list_users(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(users).order_by(users.c.email)).mappings().all()
        return [u for u in (user_from_row(dict(r)) for r in rows) if u]

    # --- the login throttle ----------------------------------------------------------------------

    def login_failures(self, email: str, address: str, window_s: float) -> int:
        """Failed logins of this e-mail from this client address within the last `window_s` seconds."""
        since = utcnow() - timedelta(seconds=window_s)
        with self.engine.connect() as conn:
            return int(conn.execute(
                select(func.count()).select_from(login_failures).where(
                    login_failures.c.email == email_key(email), login_failures.c.address == address,
                    login_failures.c.at >= since,
                )
            ).scalar_one())

    def note_login(self, email: str, address: str, succeeded: bool, window_s: float) -> None:
        """Record a failed login, or forget this pair's failures after a success; failures older than the
        window are dropped as we go."""
        key = (login_failures.c.email == email_key(email)) & (login_failures.c.address == address)
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(delete(login_failures).where(login_failures.c.at < now - timedelta(seconds=window_s)))
            if succeeded:
                conn.execute(delete(login_failures).where(key))
            else:
                conn.execute(insert(login_failures).values(email=email_key(email)[:255], address=address[:64], at=now))
