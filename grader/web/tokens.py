"""API tokens, and how every secret the web app hands out is made and kept.

Every secret handed out (API token, invitation link, a candidate's status link) is `new_token()`, i.e.
`secrets.token_urlsafe(32)`, and only its `token_hash()` (SHA-256) is stored: the tokens carry 256 bits, so a
plain hash is enough to make a leaked database useless, and it still lets a request find its row with one
lookup. A revoked API token is deleted, so the next request with it answers 401.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, delete, select, update

from grader.db.engine import first_row
from grader.db.schema import api_tokens, users
from grader.db.store import utcnow
from grader.web.users import User, user_from_row


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(BaseModel):
    """An API token as its owner and administrators see it: never the token itself."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: int
    user_id: int
    owner: str
    name: str
    created_at: datetime
    last_used_at: datetime | None


class ApiTokens:
    """Staff users' API tokens, over the SQLAlchemy database engine passed in."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_token(self, user_id: int, name: str) -> str:
        """A new token for the user; returned once, only its hash is kept."""
        token = new_token()
        with self.engine.begin() as conn:
            conn.execute(api_tokens.insert().values(
                user_id=user_id, name=name, token_hash=token_hash(token), created_at=utcnow()))
        return token

    def user_by_token(self, token: str) -> User | None:
        """The owner of a token that exists (a revoked one is gone); its last use is noted."""
        digest = token_hash(token)
        owner = first_row(self.engine, select(users).join(api_tokens, api_tokens.c.user_id == users.c.id)
                          .where(api_tokens.c.token_hash == digest))
        if owner is None:
            return None
        with self.engine.begin() as conn:
            conn.execute(update(api_tokens).where(api_tokens.c.token_hash == digest).values(last_used_at=utcnow()))
        return user_from_row(owner)

    def list_tokens(self, user_id: int | None) -> list[ApiToken]:
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

    def revoke_token(self, token_id: int, user_id: int | None) -> bool:
        """Delete the token if it is the user's (anyone's when `user_id` is None); whether one was deleted."""
        condition = api_tokens.c.id == token_id
        if user_id is not None:
            condition = condition & (api_tokens.c.user_id == user_id)
        with self.engine.begin() as conn:
            return conn.execute(delete(api_tokens).where(condition)).rowcount == 1
