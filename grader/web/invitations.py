"""Invitations (a candidate's link to submit) and candidate links (a candidate's link to one submission's status).

Both links are `new_token()`s of grader.web.tokens, kept only as their hash. An invitation is used once per
submission, atomically: only while unexpired, not used up, and not used within the minimum interval.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, select, update

from grader.db.engine import first_row
from grader.db.schema import candidate_links, invitations
from grader.db.store import utcnow
from grader.web.tokens import new_token, token_hash


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


class Invitations:
    """Invitations and the candidate links of the submissions made with them, over the SQLAlchemy database
    engine passed in."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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
        row = first_row(self.engine, select(invitations).where(invitations.c.id == invitation_id))
        return Invitation.model_validate(row) if row else None

    def invitation_by_token(self, token: str) -> Invitation | None:
        row = first_row(self.engine, select(invitations).where(invitations.c.token_hash == token_hash(token)))
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
        row = first_row(self.engine, select(candidate_links.c.submission_id)
                        .where(candidate_links.c.token_hash == token_hash(token)))
        return row["submission_id"] if row else None
