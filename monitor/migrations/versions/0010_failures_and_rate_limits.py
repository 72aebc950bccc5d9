"""verification failures on the outbox; device ids and indexes for rate-limiting challenges and online sessions;
the outbox found by its subject and check-ins by device without scanning

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failures', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('last_error', sa.String(length=300), nullable=True))
        batch_op.create_index('ix_outbox_topic_subject', ['topic', 'subject_id'])
    with op.batch_alter_table('checkins', schema=None) as batch_op:
        batch_op.create_index('ix_checkins_device_received', ['device_id', 'received_at'])
    with op.batch_alter_table('liveness_challenges', schema=None) as batch_op:
        batch_op.add_column(sa.Column('device_id', sa.String(length=100), nullable=True))
        batch_op.create_index('ix_liveness_challenges_institution_issued', ['institution_id', 'issued_at'])
    with op.batch_alter_table('online_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('device_id', sa.String(length=100), nullable=True))
        batch_op.create_index('ix_online_sessions_institution_started', ['institution_id', 'started_at'])


def downgrade() -> None:
    with op.batch_alter_table('online_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_online_sessions_institution_started')
        batch_op.drop_column('device_id')
    with op.batch_alter_table('liveness_challenges', schema=None) as batch_op:
        batch_op.drop_index('ix_liveness_challenges_institution_issued')
        batch_op.drop_column('device_id')
    with op.batch_alter_table('checkins', schema=None) as batch_op:
        batch_op.drop_index('ix_checkins_device_received')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_topic_subject')
        batch_op.drop_column('last_error')
        batch_op.drop_column('failures')
