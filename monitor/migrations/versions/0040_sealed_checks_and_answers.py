"""a seal (HMAC with the audit key) on each periodic audit check and on each kept idempotent answer: an
administrator at the database set the latest failed check to intact and the wall's alarm went quiet, or rewrote a
kept answer and a site's repeat was handed a forged decision; neither is believed without its seal now

Revision ID: 0040
Revises: 0039
"""

import sqlalchemy as sa
from alembic import op

revision = '0040'
down_revision = '0039'
branch_labels = None
depends_on = None

CHECKS = "action = 'audit.checked'"


def upgrade() -> None:
    with op.batch_alter_table('audit_checks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seal', sa.String(length=200), nullable=True))
    with op.batch_alter_table('idempotent_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('seal', sa.String(length=200), nullable=True))
    op.create_index('ix_audit_entries_checks', 'audit_entries', ['id'], postgresql_where=sa.text(CHECKS),
                    sqlite_where=sa.text(CHECKS))


def downgrade() -> None:
    op.drop_index('ix_audit_entries_checks', table_name='audit_entries')
    with op.batch_alter_table('idempotent_requests', schema=None) as batch_op:
        batch_op.drop_column('seal')
    with op.batch_alter_table('audit_checks', schema=None) as batch_op:
        batch_op.drop_column('seal')
