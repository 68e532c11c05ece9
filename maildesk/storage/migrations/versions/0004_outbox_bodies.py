"""outbox_bodies: the bytes of outgoing mail apart from the outbox row

SQLite rewrites a whole row, overflow pages included, on every UPDATE; an outbox row
changes status two or three times, so its mail was written three or four times.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 02:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outbox_bodies',
    sa.Column('message_id', sa.String(length=998), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('message_id', name=op.f('pk_outbox_bodies'))
    )
    # one body per Message-ID (maildesk's are unique; the first row wins if not)
    op.execute("INSERT INTO outbox_bodies (message_id, raw) SELECT message_id, raw FROM outbox "
               "WHERE id IN (SELECT min(id) FROM outbox GROUP BY message_id)")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('raw')


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('raw', sa.LargeBinary(), nullable=False, server_default=sa.text("''")))
    op.execute("UPDATE outbox SET raw = (SELECT b.raw FROM outbox_bodies b WHERE b.message_id = outbox.message_id) "
               "WHERE message_id IN (SELECT message_id FROM outbox_bodies)")
    op.drop_table('outbox_bodies')
