"""evidence files found not to be what their names say (altered or missing): kept, audited, and alarmed on the wall
until the genuine bytes are back

Revision ID: 0032
Revises: 0031
"""

import sqlalchemy as sa
from alembic import op

revision = '0032'
down_revision = '0031'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'evidence_faults',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), primary_key=True),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=10), nullable=False),
        sa.Column('found_sha256', sa.String(length=64), nullable=True),
        sa.Column('detected_by', sa.String(length=20), nullable=False),
        sa.Column('detected_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('restored_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index('ix_evidence_faults_open', 'evidence_faults', ['restored_at', 'sha256'])


def downgrade() -> None:
    op.drop_index('ix_evidence_faults_open', table_name='evidence_faults')
    op.drop_table('evidence_faults')
