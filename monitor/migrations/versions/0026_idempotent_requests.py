"""creating POSTs made with an Idempotency-Key (issue 21 item 1): the caller, path, key and request digest, and the
first successful answer, so a repeated submission returns the first record

Revision ID: 0026
Revises: 0025
"""

import sqlalchemy as sa
from alembic import op

revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'idempotent_requests',
        sa.Column('id', BIG_ID, primary_key=True),
        sa.Column('caller_sha256', sa.String(length=64), nullable=False),
        sa.Column('path', sa.String(length=200), nullable=False),
        sa.Column('key', sa.String(length=100), nullable=False),
        sa.Column('request_sha256', sa.String(length=64), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('status', sa.Integer(), nullable=True),
        sa.Column('media_type', sa.String(length=100), nullable=True),
        sa.Column('body', sa.LargeBinary(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint('caller_sha256', 'path', 'key'),
    )
    op.create_index('ix_idempotent_requests_created_at', 'idempotent_requests', ['created_at'])


def downgrade() -> None:
    op.drop_index('ix_idempotent_requests_created_at', table_name='idempotent_requests')
    op.drop_table('idempotent_requests')
