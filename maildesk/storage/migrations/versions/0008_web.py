"""web: one-time sign-in links, sign-in requests (rate limit), customer status-page keys

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 07:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('web_tokens',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('login', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_web_tokens'))
    )
    op.create_table('web_signin_requests',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('client', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_web_signin_requests'))
    )
    op.create_index('ix_web_signin_requests_address_at', 'web_signin_requests', ['address', 'at'], unique=False)
    op.create_index('ix_web_signin_requests_client_at', 'web_signin_requests', ['client', 'at'], unique=False)
    op.create_table('customer_keys',
    sa.Column('address', sa.String(length=320), nullable=False),
    sa.Column('generation', sa.Integer(), nullable=False),
    sa.Column('rotated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('address', name=op.f('pk_customer_keys'))
    )


def downgrade() -> None:
    op.drop_table('customer_keys')
    op.drop_index('ix_web_signin_requests_client_at', table_name='web_signin_requests')
    op.drop_index('ix_web_signin_requests_address_at', table_name='web_signin_requests')
    op.drop_table('web_signin_requests')
    op.drop_table('web_tokens')
