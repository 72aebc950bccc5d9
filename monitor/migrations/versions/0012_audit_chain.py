"""the audit chain (全程留痕): hash-chained entries of every state change and the chain's head; filed inspection
forms (检查表) with their signature, photos and PDF; the daily 双随机 draws

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        'audit_entries',
        sa.Column('id', BigId, primary_key=True),
        sa.Column('seq', sa.BigInteger(), nullable=True, unique=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=100), nullable=False),
        sa.Column('actor_role', sa.String(length=12), nullable=False),
        sa.Column('action', sa.String(length=60), nullable=False),
        sa.Column('subject_kind', sa.String(length=40), nullable=False),
        sa.Column('subject_id', sa.String(length=80), nullable=False),
        sa.Column('detail', sa.JSON(), nullable=False),
        sa.Column('prev_hash', sa.String(length=64), nullable=True),
        sa.Column('hash', sa.String(length=64), nullable=True),
    )
    op.create_index('ix_audit_entries_unsealed', 'audit_entries', ['id'], postgresql_where=sa.text('seq IS NULL'),
                    sqlite_where=sa.text('seq IS NULL'))
    head = op.create_table(
        'audit_head',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
    )
    op.bulk_insert(head, [{'id': 1, 'seq': 0, 'hash': GENESIS}])
    op.create_table(
        'inspections',
        sa.Column('id', BigId, primary_key=True),
        sa.Column('class_id', sa.Integer(), sa.ForeignKey('classes.id'), nullable=False),
        sa.Column('alert_id', BigId, sa.ForeignKey('alerts.id'), nullable=True),
        sa.Column('staff_id', sa.Integer(), sa.ForeignKey('staff.id'), nullable=True),
        sa.Column('inspector', sa.String(length=100), nullable=False),
        sa.Column('kind', sa.String(length=12), nullable=False),
        sa.Column('items', sa.JSON(), nullable=False),
        sa.Column('headcount_registered', sa.Integer(), nullable=False),
        sa.Column('headcount_present', sa.Integer(), nullable=True),
        sa.Column('findings', sa.Text(), nullable=False),
        sa.Column('responsible_name', sa.String(length=50), nullable=False),
        sa.Column('signature_sha256', sa.String(length=64), sa.ForeignKey('evidence.sha256'), nullable=False),
        sa.Column('photo_sha256s', sa.JSON(), nullable=False),
        sa.Column('pdf_sha256', sa.String(length=64), sa.ForeignKey('evidence.sha256'), nullable=False),
        sa.Column('inspected_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_inspections_class_id', 'inspections', ['class_id'])
    op.create_index('ix_inspections_alert_id', 'inspections', ['alert_id'])
    op.create_table(
        'inspection_photos',
        sa.Column('id', BigId, primary_key=True),
        sa.Column('inspection_id', BigId, sa.ForeignKey('inspections.id'), nullable=False),
        sa.Column('sha256', sa.String(length=64), sa.ForeignKey('evidence.sha256'), nullable=False),
    )
    op.create_index('ix_inspection_photos_inspection_id', 'inspection_photos', ['inspection_id'])
    op.create_index('ix_inspection_photos_sha256', 'inspection_photos', ['sha256'])
    op.create_table(
        'draws',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('day', sa.Date(), nullable=False, unique=True),
        sa.Column('seed', sa.String(length=64), nullable=False),
        sa.Column('candidates', sa.JSON(), nullable=False),
        sa.Column('classes', sa.JSON(), nullable=False),
        sa.Column('inspectors', sa.JSON(), nullable=False),
        sa.Column('roster', sa.JSON(), nullable=False),
        sa.Column('window_ends_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=100), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('draws')
    op.drop_table('inspection_photos')
    op.drop_table('inspections')
    op.drop_table('audit_head')
    op.drop_table('audit_entries')
