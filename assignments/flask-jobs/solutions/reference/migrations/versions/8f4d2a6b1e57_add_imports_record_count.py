"""add imports.record_count, filled for existing imports

The column arrives NOT NULL with a server default (existing rows get 0, never NULL), then a data
migration sets each import's count to its number of records.

Revision ID: 8f4d2a6b1e57
Revises: 3b7e1c90a4d2
Create Date: 2026-12-01 11:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '8f4d2a6b1e57'
down_revision = '3b7e1c90a4d2'
branch_labels = None
depends_on = None

# Frozen views of the tables as this revision knows them; never import the app's models in a migration.
imports = sa.table('imports', sa.column('id', sa.Integer()), sa.column('record_count', sa.Integer()))
records = sa.table('records', sa.column('import_id', sa.Integer()))


def upgrade():
    with op.batch_alter_table('imports', schema=None) as batch_op:
        batch_op.add_column(sa.Column('record_count', sa.Integer(), server_default=sa.text('0'), nullable=False))

    count = (
        sa.select(sa.func.count())
        .select_from(records)
        .where(records.c.import_id == imports.c.id)
        .scalar_subquery()
    )
    op.execute(imports.update().values(record_count=count))


def downgrade():
    with op.batch_alter_table('imports', schema=None) as batch_op:
        batch_op.drop_column('record_count')
