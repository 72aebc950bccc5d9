"""each audit entry signed by its writer with the audit key, so an entry inserted straight into the database (for
the sealer to chain with the real key) shows as forged; unique, so a copied entry shows too; the head counts the
entries the sealer chained without believing them (the wall's alarm)

Revision ID: 0029
Revises: 0028
"""

import sqlalchemy as sa
from alembic import op

revision = '0029'
down_revision = '0028'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('audit_entries', sa.Column('signature', sa.String(length=120), nullable=True))
    op.create_index('ix_audit_entries_signature', 'audit_entries', ['signature'], unique=True)
    op.add_column('audit_head', sa.Column('untrusted', sa.Integer(), nullable=True))
    op.add_column('audit_head', sa.Column('untrusted_seq', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_index('ix_audit_entries_signature', table_name='audit_entries')
    with op.batch_alter_table('audit_head') as batch:
        batch.drop_column('untrusted_seq')
        batch.drop_column('untrusted')
    with op.batch_alter_table('audit_entries') as batch:
        batch.drop_column('signature')
