"""cross-checks against the registers (issue 20 items 2-3, clause 八/九): what a site declared per enrolment
(personnel category, training voucher), the skill level a class trains for, each class's cross-check runs, and the
classes marked payable with the cross-check and register periods relied on

Revision ID: 0025
Revises: 0024
"""

import sqlalchemy as sa
from alembic import op

revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    with op.batch_alter_table('roster') as batch:
        batch.add_column(sa.Column('category', sa.String(length=20), nullable=True))
        batch.add_column(sa.Column('voucher_no', sa.String(length=60), nullable=True))
    op.add_column('classes', sa.Column('level', sa.Integer(), nullable=True))
    op.create_table(
        'crosscheck_runs',
        sa.Column('id', BIG_ID, primary_key=True),
        sa.Column('class_id', sa.Integer(), sa.ForeignKey('classes.id'), nullable=False),
        sa.Column('ran_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('imports', sa.JSON(), nullable=False),
        sa.Column('trainees', sa.Integer(), nullable=False),
        sa.Column('findings', sa.Integer(), nullable=False),
        sa.Column('raised', sa.Integer(), nullable=False),
        sa.Column('resolved', sa.Integer(), nullable=False),
    )
    op.create_index('ix_crosscheck_runs_class_at', 'crosscheck_runs', ['class_id', 'ran_at'])
    op.create_table(
        'class_payments',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('class_id', sa.Integer(), sa.ForeignKey('classes.id'), nullable=False, unique=True),
        sa.Column('marked_by', sa.String(length=100), nullable=False),
        sa.Column('marked_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('note', sa.String(length=500), nullable=False),
        sa.Column('eligible_trainee_ids', sa.JSON(), nullable=False),
        sa.Column('crosscheck_run_id', sa.BigInteger(), nullable=False),
        sa.Column('crosscheck_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('register_periods', sa.JSON(), nullable=False),
        sa.Column('ledger_sha256', sa.String(length=64), nullable=False),
    )
    op.create_table(
        'institution_employment',
        sa.Column('institution_id', sa.Integer(), sa.ForeignKey('institutions.id'), primary_key=True),
        sa.Column('insurance_period', sa.String(length=7), nullable=False),
        sa.Column('completed', sa.Integer(), nullable=False),
        sa.Column('employed', sa.Integer(), nullable=False),
        sa.Column('median_rate', sa.Float(), nullable=True),
        sa.Column('shortfall', sa.Float(), nullable=False),
        sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('institution_employment')
    op.drop_table('class_payments')
    op.drop_index('ix_crosscheck_runs_class_at', table_name='crosscheck_runs')
    op.drop_table('crosscheck_runs')
    op.drop_column('classes', 'level')  # in place: a batch rebuild of a table others reference fails on SQLite
    with op.batch_alter_table('roster') as batch:
        batch.drop_column('voucher_no')
        batch.drop_column('category')
