"""The suite stage's stored name: `tests` becomes `suite`, as the Stage enum and grader/stages/suite.py say.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_submissions = sa.table("submissions", sa.column("stage", sa.String(16)))


def _rename(old: str, new: str) -> None:
    op.execute(_submissions.update().where(_submissions.c.stage == old).values(stage=new))


def upgrade() -> None:
    _rename("tests", "suite")


def downgrade() -> None:
    _rename("suite", "tests")
