"""add notes.word_count and fill it for existing notes

Three steps, so that existing rows never violate NOT NULL:
1. add the column as nullable;
2. data migration: word_count = number of whitespace-separated words of body;
3. make the column NOT NULL (SQLite rebuilds the table in batch mode).

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

# A frozen view of the table as this revision knows it; never import the app's
# models in a migration, they describe the newest schema, not this one.
notes = sa.table(
    'notes',
    sa.column('id', sa.Integer()),
    sa.column('body', sa.Text()),
    sa.column('word_count', sa.Integer()),
)

BATCH_SIZE = 1000


def count_words(text):
    return len((text or '').split())


def upgrade():
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('word_count', sa.Integer(), nullable=True))

    connection = op.get_bind()
    set_count = (
        notes.update()
        .where(notes.c.id == sa.bindparam('note_id'))
        .values(word_count=sa.bindparam('count'))
    )
    last_id = None
    while True:
        query = sa.select(notes.c.id, notes.c.body).order_by(notes.c.id).limit(BATCH_SIZE)
        if last_id is not None:
            query = query.where(notes.c.id > last_id)
        rows = connection.execute(query).all()
        if not rows:
            break
        connection.execute(
            set_count,
            [{'note_id': note_id, 'count': count_words(body)} for note_id, body in rows],
        )
        last_id = rows[-1][0]

    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.alter_column('word_count', existing_type=sa.Integer(), nullable=False)


def downgrade():
    with op.batch_alter_table('notes', schema=None) as batch_op:
        batch_op.drop_column('word_count')
