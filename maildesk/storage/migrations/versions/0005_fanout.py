"""notified, held_notifications: agent notifications bounded per sender and per ticket

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('notified',
    sa.Column('id', _ID, nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('sender', sa.String(length=320), nullable=False),
    sa.Column('ticket_id', _ID, nullable=False),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_notified_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notified'))
    )
    op.create_index('ix_notified_sender_at', 'notified', ['sender', 'at'], unique=False)
    op.create_index('ix_notified_ticket_at', 'notified', ['ticket_id', 'at'], unique=False)
    op.create_table('held_notifications',
    sa.Column('id', _ID, nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('recipient', sa.String(length=320), nullable=False),
    sa.Column('ticket_id', _ID, nullable=False),
    sa.Column('sender', sa.String(length=320), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('event', sa.String(length=50), nullable=False),
    sa.Column('why', sa.String(length=20), nullable=False),
    sa.Column('digest_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_held_notifications_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_held_notifications'))
    )
    op.create_index('ix_held_notifications_digest', 'held_notifications', ['digest_at', 'recipient'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_held_notifications_digest', table_name='held_notifications')
    op.drop_table('held_notifications')
    op.drop_index('ix_notified_ticket_at', table_name='notified')
    op.drop_index('ix_notified_sender_at', table_name='notified')
    op.drop_table('notified')
