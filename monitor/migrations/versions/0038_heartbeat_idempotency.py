"""a heartbeat keeps the Idempotency-Key it was sent with (unique within its session): a phone retrying a heartbeat
whose answer it lost gets the first heartbeat back instead of a PHOTO_REPLAYED refusal of its own photo

Revision ID: 0038
Revises: 0037
"""

import sqlalchemy as sa
from alembic import op

revision = '0038'
down_revision = '0037'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('online_heartbeats', schema=None) as batch_op:
        batch_op.add_column(sa.Column('idempotency_key', sa.String(length=100), nullable=True))
        batch_op.create_unique_constraint('uq_online_heartbeats_session_key', ['session_id', 'idempotency_key'])


def downgrade() -> None:
    with op.batch_alter_table('online_heartbeats', schema=None) as batch_op:
        batch_op.drop_constraint('uq_online_heartbeats_session_key', type_='unique')
        batch_op.drop_column('idempotency_key')
