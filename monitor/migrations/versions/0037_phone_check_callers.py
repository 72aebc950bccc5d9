"""a phone check names who drew it (the assignee, or an operator acting for them) beside its caller (always the alert's
assignee), and each call names who recorded it: only the caller records calls, completes the check and reads the
trainees' whole numbers

Revision ID: 0037
Revises: 0036
"""

import sqlalchemy as sa
from alembic import op

revision = '0037'
down_revision = '0036'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('phone_checks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('drawn_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('drawn_by_token_id', sa.Integer(), nullable=True))
    with op.batch_alter_table('phone_calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('recorded_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('recorded_by_token_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('phone_calls', schema=None) as batch_op:
        batch_op.drop_column('recorded_by_token_id')
        batch_op.drop_column('recorded_by')
    with op.batch_alter_table('phone_checks', schema=None) as batch_op:
        batch_op.drop_column('drawn_by_token_id')
        batch_op.drop_column('drawn_by')
