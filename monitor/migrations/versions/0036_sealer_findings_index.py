"""the sealer's own findings (entries it did not believe, a chain rolled back) found by a small partial index: the
wall's alarm counts them from the chain, so a counter on the head rewritten in the database silences nothing

Revision ID: 0036
Revises: 0035
"""

import sqlalchemy as sa
from alembic import op

revision = '0036'
down_revision = '0035'
branch_labels = None
depends_on = None

WHERE = "action IN ('audit.untrusted', 'audit.rolled_back')"


def upgrade() -> None:
    op.create_index('ix_audit_entries_sealer_findings', 'audit_entries', ['seq'],
                    postgresql_where=sa.text(WHERE), sqlite_where=sa.text(WHERE))


def downgrade() -> None:
    op.drop_index('ix_audit_entries_sealer_findings', table_name='audit_entries')
