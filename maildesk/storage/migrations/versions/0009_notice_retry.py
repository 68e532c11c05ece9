"""notice_retry: a notice that cannot be rendered is kept and tried again, not dropped

A notice (an agent notification decided by processing, rendered by the delivery worker)
now has a ``status`` (``pending``, or ``failed`` after ``[outbound] notice_max_attempts``),
the failed ``attempts`` so far, when it is due again (``next_attempt_at``, exponential
backoff) and the ``last_error``. Existing notices are pending and due at once (their
``created_at``). A downgrade drops the columns: a failed notice becomes pending again for
the older code, which tries it once more.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 07:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite adds the columns with ALTER TABLE (a NOT NULL column needs a default there)
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=20), nullable=False, server_default='pending'))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('last_error', sa.Text(), nullable=True))
    op.execute("UPDATE notices SET next_attempt_at = created_at")
    # SQLite copies the table to change a column; the models have no server defaults
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.alter_column('status', existing_type=sa.String(length=20), existing_nullable=False, server_default=None)
        batch_op.alter_column('attempts', existing_type=sa.Integer(), existing_nullable=False, server_default=None)
        batch_op.alter_column('next_attempt_at', existing_type=sa.DateTime(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('notices', schema=None) as batch_op:
        batch_op.drop_column('last_error')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('attempts')
        batch_op.drop_column('status')
