"""Users, invitations, API tokens and candidate links: reads and compare-and-set writes, as in grader.db.store.

Every secret handed out (invitation link, API token, a candidate's status link) is
`secrets.token_urlsafe(32)` and only its SHA-256 is stored: the tokens carry 256 bits, so a plain hash
is enough to make a leaked database useless, and it still lets a request find its row with one lookup.
Passwords are salted and stretched by werkzeug.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, delete, func, insert, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from grader.db.store import submissions, utcnow
from grader.db.web_tables import api_tokens, candidate_links, invitations, login_failures, users


class Role(str, Enum):
    admin = "admin"
    reviewer = "reviewer"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def email_key(email: str) -> str:
    """An e-mail as accounts and login failures store and compare it: trimmed, lower case."""
    return email.strip().lower()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


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


class ApiToken(BaseModel):
    """An API token as its owner and administrators see it: never the token itself."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: int
    user_id: int
    owner: str
    name: str
    created_at: datetime
    last_used_at: datetime | None


class Invitation(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    assignment: str
    candidate: str | None
    created_by: int | None
    created_at: datetime
    expires_at: datetime
    max_uses: int
    uses: int
    last_used_at: datetime | None

    def refusal(self, now: datetime) -> str | None:
        """Why this invitation cannot be used now, or None."""
        if now >= self.expires_at:
            return "This invitation has expired; ask the hiring team for a new link."
        if self.uses >= self.max_uses:
            return "This invitation has been used for all the submissions it allows."
        return None


class Accounts:
    """The web app's records; the engine is passed in (the submissions database's own)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _one(self, query: Any) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return dict(row) if row else None

    # --- users -----------------------------------------------------------------------------------

    def create_user(self, email: str, password: str, role: Role) -> User:
        with self.engine.begin() as conn:
            conn.execute(users.insert().values(
                email=email_key(email), password_hash=generate_password_hash(password), role=role.value,
                created_at=utcnow(),
            ))
        user = self.user_by_email(email)
        assert user is not None
        return user

    def _user(self, row: dict[str, Any] | None) -> User | None:
        return User(id=row["id"], email=row["email"], role=Role(row["role"]), created_at=row["created_at"]) if row else None

    def user(self, user_id: int) -> User | None:
        return self._user(self._one(select(users).where(users.c.id == user_id)))

    def user_by_email(self, email: str) -> User | None:
        return self._user(self._one(select(users).where(users.c.email == email_key(email))))

    def authenticate(self, email: str, password: str) -> User | None:
        row = self._one(select(users).where(users.c.email == email_key(email)))
        if row is None:
            check_password_hash(generate_password_hash("x"), password)  # the same work whether or not the user exists
            return None
        return self._user(row) if check_password_hash(row["password_hash"], password) else None

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

    def list_users(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(users).order_by(users.c.email)).mappings().all()
        return [u for u in (self._user(dict(r)) for r in rows) if u]

    # --- API tokens ------------------------------------------------------------------------------

    def create_api_token(self, user_id: int, name: str) -> str:
        """A new token for the user; returned once, only its hash is kept."""
        token = new_token()
        with self.engine.begin() as conn:
            conn.execute(api_tokens.insert().values(
                user_id=user_id, name=name, token_hash=token_hash(token), created_at=utcnow()))
        return token

    def user_by_api_token(self, token: str) -> User | None:
        """The owner of a token that exists (a revoked one is gone); its last use is noted."""
        digest = token_hash(token)
        row = self._one(select(api_tokens.c.user_id).where(api_tokens.c.token_hash == digest))
        if row is None:
            return None
        with self.engine.begin() as conn:
            conn.execute(update(api_tokens).where(api_tokens.c.token_hash == digest).values(last_used_at=utcnow()))
        return self.user(row["user_id"])

    def list_api_tokens(self, user_id: int | None) -> list[ApiToken]:
        """The user's tokens, or every user's when `user_id` is None (administrators), newest first."""
        query = (
            select(api_tokens, users.c.email.label("owner")).join(users, users.c.id == api_tokens.c.user_id)
            .order_by(api_tokens.c.created_at.desc(), api_tokens.c.id.desc())
        )
        if user_id is not None:
            query = query.where(api_tokens.c.user_id == user_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [ApiToken.model_validate(dict(row)) for row in rows]

    def revoke_api_token(self, token_id: int, user_id: int | None) -> bool:
        """Delete the token if it is the user's (anyone's when `user_id` is None); whether one was deleted."""
        condition = api_tokens.c.id == token_id
        if user_id is not None:
            condition = condition & (api_tokens.c.user_id == user_id)
        with self.engine.begin() as conn:
            return conn.execute(delete(api_tokens).where(condition)).rowcount == 1

    # --- invitations -----------------------------------------------------------------------------

    def create_invitation(
        self, assignment: str, *, candidate: str | None, created_by: int | None, days: float, max_uses: int
    ) -> tuple[str, Invitation]:
        """A new invitation; the token (the candidate's link) is returned once, only its hash is kept."""
        token = new_token()
        now = utcnow()
        with self.engine.begin() as conn:
            result = conn.execute(invitations.insert().values(
                token_hash=token_hash(token), assignment=assignment, candidate=candidate, created_by=created_by,
                created_at=now, expires_at=now + timedelta(days=days), max_uses=max_uses, uses=0,
            ))
            invitation_id = result.inserted_primary_key[0]  # type: ignore[index]
        invitation = self.invitation(invitation_id)
        assert invitation is not None
        return token, invitation

    def invitation(self, invitation_id: int) -> Invitation | None:
        row = self._one(select(invitations).where(invitations.c.id == invitation_id))
        return Invitation.model_validate(row) if row else None

    def invitation_by_token(self, token: str) -> Invitation | None:
        row = self._one(select(invitations).where(invitations.c.token_hash == token_hash(token)))
        return Invitation.model_validate(row) if row else None

    def list_invitations(self) -> list[Invitation]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(invitations).order_by(invitations.c.created_at.desc())).mappings().all()
        return [Invitation.model_validate(dict(r)) for r in rows]

    def withdraw_invitation(self, invitation_id: int, user_id: int | None) -> bool:
        """End an unexpired invitation now, if the user created it (any when `user_id` is None, administrators);
        its link then refuses new submissions as expired. Whether one was withdrawn."""
        now = utcnow()
        condition = (invitations.c.id == invitation_id) & (invitations.c.expires_at > now)
        if user_id is not None:
            condition = condition & (invitations.c.created_by == user_id)
        with self.engine.begin() as conn:
            return conn.execute(update(invitations).where(condition).values(expires_at=now)).rowcount == 1

    def use_invitation(self, invitation_id: int, min_interval_s: float) -> bool:
        """Count one submission, atomically: only if unexpired, not used up, and not used in the last interval."""
        now = utcnow()
        rested = (invitations.c.last_used_at.is_(None)) | (
            invitations.c.last_used_at <= now - timedelta(seconds=min_interval_s))
        statement = (
            update(invitations)
            .where((invitations.c.id == invitation_id) & (invitations.c.expires_at > now)
                   & (invitations.c.uses < invitations.c.max_uses) & rested)
            .values(uses=invitations.c.uses + 1, last_used_at=now)
        )
        with self.engine.begin() as conn:
            return conn.execute(statement).rowcount == 1

    # --- candidate links -------------------------------------------------------------------------

    def link_submission(self, submission_id: str, invitation_id: int) -> str:
        """The candidate's unguessable status link for one submission; returned once."""
        token = new_token()
        with self.engine.begin() as conn:
            conn.execute(candidate_links.insert().values(
                submission_id=submission_id, invitation_id=invitation_id, token_hash=token_hash(token)))
        return token

    def submission_for_link(self, token: str) -> str | None:
        row = self._one(select(candidate_links.c.submission_id).where(candidate_links.c.token_hash == token_hash(token)))
        return row["submission_id"] if row else None

    def queue_position(self, submission_id: str) -> int | None:
        """1 for the next queued submission to be graded; None when this one is not queued."""
        mine = self._one(select(submissions.c.created_at, submissions.c.status).where(submissions.c.id == submission_id))
        if mine is None or mine["status"] != "queued":
            return None
        query = select(func.count()).select_from(submissions).where(
            (submissions.c.status == "queued") & (submissions.c.created_at < mine["created_at"]))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0) + 1
