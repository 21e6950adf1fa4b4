"""The submissions table: one record per submission, the truth the queue is checked against.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "submissions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("ref", sa.String(255)),
        sa.Column("assignment", sa.String(64), nullable=False),
        sa.Column("submitter", sa.String(255)),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(16)),
        sa.Column("report_path", sa.Text),
        sa.Column("score", sa.Float),
        sa.Column("max_score", sa.Float),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("job_id", sa.String(64)),
        sa.Column("owner", sa.String(255)),
        sa.Column("lease_token", sa.String(64)),
        sa.Column("started_at", sa.DateTime),
        sa.Column("finished_at", sa.DateTime),
    )
    op.create_index("ix_submissions_status", "submissions", ["status"])


def downgrade() -> None:
    op.drop_index("ix_submissions_status", table_name="submissions")
    op.drop_table("submissions")
