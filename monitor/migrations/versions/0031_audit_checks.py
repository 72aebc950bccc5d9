"""the scheduler's periodic verifications of the audit chain and the records, kept so that the wall raises an alarm
when one finds the history rewritten

Revision ID: 0031
Revises: 0030
"""

import sqlalchemy as sa
from alembic import op

revision = '0031'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'audit_checks',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), primary_key=True),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('intact', sa.Boolean(), nullable=False),
        sa.Column('entries_checked', sa.BigInteger(), nullable=False),
        sa.Column('head_seq', sa.BigInteger(), nullable=False),
        sa.Column('broken_seq', sa.BigInteger(), nullable=True),
        sa.Column('broken_kind', sa.String(length=20), nullable=True),
        sa.Column('rows_checked', sa.BigInteger(), nullable=False),
        sa.Column('row_findings', sa.Integer(), nullable=False),
        sa.Column('message', sa.String(length=1000), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('audit_checks')
