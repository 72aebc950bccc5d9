"""an institution's objections (异议) to findings against it, decided by a second person of the center

Revision ID: 0033
Revises: 0032
"""

import sqlalchemy as sa
from alembic import op

revision = '0033'
down_revision = '0032'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'objections',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('alert_id', BigId, sa.ForeignKey('alerts.id'), nullable=False),
        sa.Column('class_id', sa.Integer(), sa.ForeignKey('classes.id'), nullable=False),
        sa.Column('institution_id', sa.Integer(), sa.ForeignKey('institutions.id'), nullable=False),
        sa.Column('closing_transition_id', BigId, sa.ForeignKey('alert_transitions.id'), nullable=True),
        sa.Column('alert_outcome', sa.String(length=24), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('submitted_by', sa.String(length=100), nullable=False),
        sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('decide_by', sa.DateTime(timezone=True), nullable=False),
        sa.Column('decided_by', sa.String(length=100), nullable=True),
        sa.Column('decided_role', sa.String(length=12), nullable=True),
        sa.Column('decided_staff_id', sa.Integer(), sa.ForeignKey('staff.id'), nullable=True),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('decision_note', sa.Text(), nullable=True),
        sa.Column('reopen_transition_id', BigId, sa.ForeignKey('alert_transitions.id'), nullable=True),
        sa.UniqueConstraint('closing_transition_id', name='uq_objections_closing_transition_id'),
    )
    op.create_index('ix_objections_alert_id', 'objections', ['alert_id'])
    op.create_index('ix_objections_class_id', 'objections', ['class_id'])
    op.create_index('ix_objections_institution_id', 'objections', ['institution_id'])
    op.create_index('ix_objections_submitted_at', 'objections', ['submitted_at'])


def downgrade() -> None:
    op.drop_index('ix_objections_submitted_at', table_name='objections')
    op.drop_index('ix_objections_institution_id', table_name='objections')
    op.drop_index('ix_objections_class_id', table_name='objections')
    op.drop_index('ix_objections_alert_id', table_name='objections')
    op.drop_table('objections')
