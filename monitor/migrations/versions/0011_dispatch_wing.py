"""the dispatch wing: staff with duty periods and declared ties, alert lifecycle (transitions, pages with
deadlines, outcome, assignee), phone spot checks and their calls, events addressed to one inspector or hidden from
recused ones, tokens naming staff

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        'staff',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('phone', sa.String(length=20), nullable=False),
        sa.Column('level', sa.String(length=12), nullable=False),
        sa.Column('region_code', sa.String(length=6), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        'staff_duty',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('staff_id', sa.Integer(), sa.ForeignKey('staff.id'), nullable=False),
        sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_staff_duty_staff_end', 'staff_duty', ['staff_id', 'ends_at'])
    op.create_table(
        'staff_ties',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('staff_id', sa.Integer(), sa.ForeignKey('staff.id'), nullable=False),
        sa.Column('institution_id', sa.Integer(), sa.ForeignKey('institutions.id'), nullable=False),
        sa.Column('relation', sa.String(length=16), nullable=False),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('declared_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_staff_ties_staff_id', 'staff_ties', ['staff_id'])
    op.create_table(
        'alert_transitions',
        sa.Column('id', BigId, primary_key=True),
        sa.Column('alert_id', BigId, sa.ForeignKey('alerts.id'), nullable=False),
        sa.Column('action', sa.String(length=12), nullable=False),
        sa.Column('from_state', sa.String(length=12), nullable=False),
        sa.Column('to_state', sa.String(length=12), nullable=False),
        sa.Column('actor', sa.String(length=100), nullable=False),
        sa.Column('actor_role', sa.String(length=12), nullable=False),
        sa.Column('staff_id', sa.Integer(), sa.ForeignKey('staff.id'), nullable=True),
        sa.Column('outcome', sa.String(length=24), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_alert_transitions_alert_id', 'alert_transitions', ['alert_id'])
    op.create_table(
        'alert_pages',
        sa.Column('id', BigId, primary_key=True),
        sa.Column('alert_id', BigId, sa.ForeignKey('alerts.id'), nullable=False),
        sa.Column('staff_id', sa.Integer(), sa.ForeignKey('staff.id'), nullable=False),
        sa.Column('level', sa.String(length=12), nullable=False),
        sa.Column('round', sa.Integer(), nullable=False),
        sa.Column('paged_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('deadline', sa.DateTime(timezone=True), nullable=False),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index('ix_alert_pages_alert_id', 'alert_pages', ['alert_id'])
    op.create_index('ix_alert_pages_staff_id', 'alert_pages', ['staff_id'])
    op.create_index('ix_alert_pages_state_deadline', 'alert_pages', ['state', 'deadline'])
    op.create_table(
        'phone_checks',
        sa.Column('id', BigId, primary_key=True),
        sa.Column('alert_id', BigId, sa.ForeignKey('alerts.id'), nullable=True),
        sa.Column('class_id', sa.Integer(), sa.ForeignKey('classes.id'), nullable=False),
        sa.Column('staff_id', sa.Integer(), sa.ForeignKey('staff.id'), nullable=True),
        sa.Column('inspector', sa.String(length=100), nullable=False),
        sa.Column('seed', sa.String(length=64), nullable=False),
        sa.Column('drawn', sa.JSON(), nullable=False),
        sa.Column('state', sa.String(length=12), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index('ix_phone_checks_alert_id', 'phone_checks', ['alert_id'])
    op.create_index('ix_phone_checks_class_id', 'phone_checks', ['class_id'])
    op.create_table(
        'phone_calls',
        sa.Column('id', BigId, primary_key=True),
        sa.Column('check_id', BigId, sa.ForeignKey('phone_checks.id'), nullable=False),
        sa.Column('trainee_id', sa.Integer(), sa.ForeignKey('trainees.id'), nullable=False),
        sa.Column('reached', sa.Boolean(), nullable=False),
        sa.Column('present', sa.Boolean(), nullable=True),
        sa.Column('answers', sa.Text(), nullable=True),
        sa.Column('duration_s', sa.Integer(), nullable=False),
        sa.Column('called_at', sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index('ix_phone_calls_check_id', 'phone_calls', ['check_id'])
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('institution_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('outcome', sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column('assignee_staff_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key('fk_alerts_institution', 'institutions', ['institution_id'], ['id'])
        batch_op.create_foreign_key('fk_alerts_assignee', 'staff', ['assignee_staff_id'], ['id'])
    op.execute("UPDATE alerts SET institution_id = "
               "(SELECT institution_id FROM classes WHERE classes.id = alerts.class_id)")
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('institution_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('staff_id', sa.Integer(), nullable=True))
    op.execute("UPDATE events SET institution_id = "
               "(SELECT institution_id FROM classes WHERE classes.id = events.class_id)")
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('staff_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_api_tokens_staff', 'staff', ['staff_id'], ['id'])


def downgrade() -> None:
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_constraint('fk_api_tokens_staff', type_='foreignkey')
        batch_op.drop_column('staff_id')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('staff_id')
        batch_op.drop_column('institution_id')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_constraint('fk_alerts_assignee', type_='foreignkey')
        batch_op.drop_constraint('fk_alerts_institution', type_='foreignkey')
        batch_op.drop_column('updated_at')
        batch_op.drop_column('assignee_staff_id')
        batch_op.drop_column('outcome')
        batch_op.drop_column('institution_id')
    for table in ('phone_calls', 'phone_checks', 'alert_pages', 'alert_transitions', 'staff_ties', 'staff_duty',
                  'staff'):
        op.drop_table(table)
