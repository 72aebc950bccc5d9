"""auditors' requests for a whole audit check now, run by the scheduler instead of inside the HTTP request

Revision ID: 0034
Revises: 0033
"""

import sqlalchemy as sa
from alembic import op

revision = '0034'
down_revision = '0033'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'audit_check_requests',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), primary_key=True),
        sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('check_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), sa.ForeignKey('audit_checks.id'),
                  nullable=True),
    )


def downgrade() -> None:
    op.drop_table('audit_check_requests')
