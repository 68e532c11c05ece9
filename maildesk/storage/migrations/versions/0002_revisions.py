"""revisions: the state counter for optimistic processing

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 22:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table('revisions',
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_revisions'))
    )
    op.bulk_insert(table, [{'name': 'state', 'value': 0}])


def downgrade() -> None:
    op.drop_table('revisions')
