"""Every table of the grader's one database, on one `metadata`, so that one Alembic history covers them all.

`submissions` is the queue's truth (grader.db.store); the others are the web app's: staff `users`, their
`api_tokens`, candidates' `invitations` and `candidate_links`, `login_failures` for the password throttle,
and `webhooks` with their `webhook_deliveries`; the cohort's (grader.cohort.store): `cohort_members`, one per graded
submission, and `similar_pairs`. The migrations in grader/db/migrations build exactly these
(a unit test compares them at head).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

submissions = Table(
    "submissions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("source", Text, nullable=False),
    Column("ref", String(255)),
    Column("assignment", String(64), nullable=False),
    Column("submitter", String(255)),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("stage", String(16)),
    Column("report_path", Text),
    Column("score", Float),
    Column("max_score", Float),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("job_id", String(64)),
    Column("owner", String(255)),
    Column("lease_token", String(64)),
    Column("started_at", DateTime),
    Column("finished_at", DateTime),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(255), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

invitations = Table(
    "invitations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("assignment", String(64), nullable=False),
    Column("candidate", String(255)),
    Column("created_by", Integer, ForeignKey("users.id")),
    Column("created_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("max_uses", Integer, nullable=False),
    Column("uses", Integer, nullable=False, default=0),
    Column("last_used_at", DateTime),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False),
    Column("last_used_at", DateTime),
)

candidate_links = Table(
    "candidate_links",
    metadata,
    Column("submission_id", String(40), primary_key=True),
    Column("invitation_id", Integer, ForeignKey("invitations.id"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("assignment", String(64), primary_key=True),
    Column("url", Text, nullable=False),
    Column("secret", String(128), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("email", String(255), nullable=False),
    Column("address", String(64), nullable=False),
    Column("at", DateTime, nullable=False, index=True),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("assignment", String(64), nullable=False),
    Column("submission_id", String(40), nullable=False),
    Column("finished_at", DateTime, nullable=False),
    Column("url", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime),
    Column("last_error", Text),
    Column("last_status_code", Integer),
    Column("created_at", DateTime, nullable=False),
    Column("delivered_at", DateTime),
    UniqueConstraint("submission_id", "finished_at", name="uq_delivery_grading"),
)

cohort_members = Table(
    "cohort_members",
    metadata,
    Column("submission_id", String(40), primary_key=True),
    Column("assignment", String(64), nullable=False, index=True),
    Column("assignment_version", String(64)),
    Column("candidate", String(255)),
    Column("score", Float, nullable=False),
    Column("max_score", Float, nullable=False),
    Column("graded_at", DateTime, nullable=False),
    Column("categories", Text, nullable=False),
    Column("tests", Text, nullable=False),
    Column("report_path", Text),
    Column("snapshot_path", Text),
    Column("scheme", String(128)),
    Column("fingerprint", LargeBinary),
)

similar_pairs = Table(
    "similar_pairs",
    metadata,
    Column("a", String(40), primary_key=True),
    Column("b", String(40), primary_key=True),
    Column("assignment", String(64), nullable=False, index=True),
    Column("score", Float, nullable=False),
    Column("a_in_b", Float, nullable=False),
    Column("b_in_a", Float, nullable=False),
    Column("shared", Integer, nullable=False),
    Column("same_candidate", Boolean, nullable=False),
    Column("computed_at", DateTime, nullable=False),
    Index("ix_similar_pairs_b", "b"),
)
