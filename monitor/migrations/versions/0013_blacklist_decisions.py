"""blacklist decisions with their evidence (alerts, inspections), author and time; lifetime bans of teachers

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'blacklist_decisions',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('subject_kind', sa.String(length=12), nullable=False),
        sa.Column('subject_id', sa.Integer(), nullable=False),
        sa.Column('blacklisted', sa.Boolean(), nullable=False),
        sa.Column('lifetime', sa.Boolean(), nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=False),
        sa.Column('alert_ids', sa.JSON(), nullable=False),
        sa.Column('inspection_ids', sa.JSON(), nullable=False),
        sa.Column('decided_by', sa.String(length=100), nullable=False),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_blacklist_decisions_subject_id', 'blacklist_decisions', ['subject_id'])


def downgrade() -> None:
    op.drop_table('blacklist_decisions')
