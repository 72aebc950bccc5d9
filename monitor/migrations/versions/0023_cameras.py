"""classroom cameras registered per venue (stream without credentials, credentials encrypted with a key kept outside
the database, pull interval) and what the pullers know of each: state, last frame and error, and the lease that lets
one puller at a time take it

Revision ID: 0023
Revises: 0022
"""

import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'cameras',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('venue_id', sa.Integer(), sa.ForeignKey('venues.id'), nullable=False, index=True),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('stream_url', sa.String(length=500), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('credentials_encrypted', sa.Text(), nullable=True),
        sa.Column('key_id', sa.String(length=40), nullable=True),
        sa.Column('interval_seconds', sa.Integer(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint('venue_id', 'name', name='uq_cameras_venue_name'),
    )
    op.create_table(
        'camera_health',
        sa.Column('camera_id', sa.Integer(), sa.ForeignKey('cameras.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('state', sa.String(length=8), nullable=False),
        sa.Column('since', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_frame_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.String(length=300), nullable=True),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('same_frames', sa.Integer(), nullable=False),
        sa.Column('last_snapshot_id', sa.BigInteger(), nullable=True),
        sa.Column('lease_owner', sa.String(length=80), nullable=True),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True, index=True),
        sa.Column('next_pull_at', sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table('camera_health')
    op.drop_table('cameras')
