"""add notes.word_count

Revision ID: 9d4b2e6a8c31
Revises: 5a1c9e3f7b20
Create Date: 2026-11-22 12:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '9d4b2e6a8c31'
down_revision = '5a1c9e3f7b20'
branch_labels = None
depends_on = None


def upgrade():
    # server_default so that the NOT NULL column can be added to a table that already has rows
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('word_count', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.drop_column('word_count')
