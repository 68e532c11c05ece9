"""inbox_raw: the bytes of an accepted mail apart from its inbox row

SQLite rewrites a whole row, overflow pages included, on every UPDATE: marking a 25 MB
mail processed cost the processing worker two 25 MB copies in SQLite. With the bytes in a
table of their own, as the row's last column, the intake writes them in pieces (a
zero-filled blob filled through incremental blob I/O) and the inbox row's updates never
touch them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 17:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbox_raw',
    sa.Column('inbox_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['inbox_id'], ['inbox.id'], name=op.f('fk_inbox_raw_inbox_id_inbox')),
    sa.PrimaryKeyConstraint('inbox_id', name=op.f('pk_inbox_raw'))
    )
    op.execute("INSERT INTO inbox_raw (inbox_id, raw) SELECT id, raw FROM inbox WHERE raw IS NOT NULL")
    # (SQLite: the table is copied without the column; its ids still never come back)
    with op.batch_alter_table('inbox', schema=None, table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.drop_column('raw')


def downgrade() -> None:
    with op.batch_alter_table('inbox', schema=None, table_kwargs={'sqlite_autoincrement': True}) as batch_op:
        batch_op.add_column(sa.Column('raw', sa.LargeBinary(), nullable=False, server_default=sa.text("''")))
    op.execute("UPDATE inbox SET raw = (SELECT r.raw FROM inbox_raw r WHERE r.inbox_id = inbox.id) "
               "WHERE id IN (SELECT inbox_id FROM inbox_raw)")
    op.drop_table('inbox_raw')
