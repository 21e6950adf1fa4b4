"""notes.word_count, filled in for the notes that already exist

Revision ID: 7e4d0b5c6a12
Revises: 1f3b7c2a9e01
Create Date: 2026-11-23 10:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7e4d0b5c6a12'
down_revision = '1f3b7c2a9e01'
branch_labels = None
depends_on = None


def upgrade():
    # The server default lets the NOT NULL column be added to a table with rows;
    # the loop below then gives every existing note its real count.
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('word_count', sa.Integer(), server_default='0', nullable=False))

    bind = op.get_bind()
    rows = bind.execute(sa.text('SELECT id, body FROM notes')).all()
    for note_id, body in rows:
        bind.execute(
            sa.text('UPDATE notes SET word_count = :n WHERE id = :id'),
            {'n': len((body or '').split()), 'id': note_id},
        )


def downgrade():
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.drop_column('word_count')
