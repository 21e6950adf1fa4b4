"""The cohort: one row per graded submission (its score, categories, tests and code fingerprint), and the
similarity of each pair of submissions of an assignment.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cohort_members",
        sa.Column("submission_id", sa.String(40), primary_key=True),
        sa.Column("assignment", sa.String(64), nullable=False),
        sa.Column("assignment_version", sa.String(64)),
        sa.Column("candidate", sa.String(255)),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("max_score", sa.Float, nullable=False),
        sa.Column("graded_at", sa.DateTime, nullable=False),
        sa.Column("categories", sa.Text, nullable=False),
        sa.Column("tests", sa.Text, nullable=False),
        sa.Column("report_path", sa.Text),
        sa.Column("snapshot_path", sa.Text),
        sa.Column("scheme", sa.String(128)),
        sa.Column("fingerprint", sa.LargeBinary),
    )
    op.create_index("ix_cohort_members_assignment", "cohort_members", ["assignment"])
    op.create_table(
        "similar_pairs",
        sa.Column("a", sa.String(40), primary_key=True),
        sa.Column("b", sa.String(40), primary_key=True),
        sa.Column("assignment", sa.String(64), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("a_in_b", sa.Float, nullable=False),
        sa.Column("b_in_a", sa.Float, nullable=False),
        sa.Column("shared", sa.Integer, nullable=False),
        sa.Column("same_candidate", sa.Boolean, nullable=False),
        sa.Column("computed_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_similar_pairs_assignment", "similar_pairs", ["assignment"])
    op.create_index("ix_similar_pairs_b", "similar_pairs", ["b"])


def downgrade() -> None:
    op.drop_index("ix_similar_pairs_b", table_name="similar_pairs")
    op.drop_index("ix_similar_pairs_assignment", table_name="similar_pairs")
    op.drop_table("similar_pairs")
    op.drop_index("ix_cohort_members_assignment", table_name="cohort_members")
    op.drop_table("cohort_members")
