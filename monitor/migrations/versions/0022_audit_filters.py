"""the audit chain filtered by actor and by time: indexes on (actor, seq), so that one person's entries are read a page
at a time in sequence, and on the entry time, for a time window

Revision ID: 0022
Revises: 0021
"""

from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.create_index('ix_audit_entries_actor_seq', ['actor', 'seq'])
        batch_op.create_index('ix_audit_entries_at', ['at'])


def downgrade() -> None:
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entries_at')
        batch_op.drop_index('ix_audit_entries_actor_seq')
