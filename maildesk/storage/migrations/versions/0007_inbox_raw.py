"""inbox_raw: the bytes of an accepted mail apart from its inbox row

SQLite rewrites a whole row, overflow pages included, on every UPDATE: marking a 25 MB
mail processed cost the processing worker two 25 MB copies in SQLite. With the bytes in a
table of their own, as the row's last column, the intake writes them in pieces (a
zero-filled blob filled through incremental blob I/O) and the inbox row's updates never
touch them. (No foreign key to ``inbox``: SQLite's copy of the inbox table, below and in
any later migration, would have to drop a table it references.)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 17:00:00
"""

import contextlib

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


@contextlib.contextmanager
def _ids_never_reused():
    """SQLite: the copy of ``inbox`` starts its AUTOINCREMENT counter at the highest id left,
    so the ids of deleted rows would come back; the old counter is put back."""
    bind = op.get_bind()
    seq = bind.execute(sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'inbox'")).scalar() \
        if bind.dialect.name == "sqlite" else None
    yield
    if seq is not None:
        bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = 'inbox' AND seq < :seq"), {"seq": seq})
        bind.execute(sa.text("INSERT INTO sqlite_sequence (name, seq) SELECT 'inbox', :seq "
                             "WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'inbox')"), {"seq": seq})


def upgrade() -> None:
    op.create_table('inbox_raw',
    sa.Column('inbox_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('inbox_id', name=op.f('pk_inbox_raw'))
    )
    op.execute("INSERT INTO inbox_raw (inbox_id, raw) SELECT id, raw FROM inbox WHERE raw IS NOT NULL")
    # SQLite copies the table without the column
    with _ids_never_reused(), op.batch_alter_table('inbox', schema=None, table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.drop_column('raw')


def downgrade() -> None:
    with _ids_never_reused(), op.batch_alter_table('inbox', schema=None, table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.add_column(sa.Column('raw', sa.LargeBinary(), nullable=False, server_default=sa.text("''")))
    op.execute("UPDATE inbox SET raw = (SELECT r.raw FROM inbox_raw r WHERE r.inbox_id = inbox.id) "
               "WHERE id IN (SELECT inbox_id FROM inbox_raw)")
    op.drop_table('inbox_raw')
