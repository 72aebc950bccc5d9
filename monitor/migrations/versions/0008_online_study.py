"""online study

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('online_sessions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('class_id', sa.Integer(), nullable=False),
    sa.Column('trainee_id', sa.Integer(), nullable=False),
    sa.Column('institution_id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['class_id'], ['classes.id'], ),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], ),
    sa.ForeignKeyConstraint(['trainee_id'], ['trainees.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('online_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_online_sessions_class_id'), ['class_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_online_sessions_trainee_id'), ['trainee_id'], unique=False)

    op.create_table('online_heartbeats',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('session_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('captured_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('photo_sha256', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('face_distance', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['photo_sha256'], ['evidence.sha256'], ),
    sa.ForeignKeyConstraint(['session_id'], ['online_sessions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('photo_sha256')
    )
    with op.batch_alter_table('online_heartbeats', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_online_heartbeats_session_id'), ['session_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('online_heartbeats', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_online_heartbeats_session_id'))

    op.drop_table('online_heartbeats')
    with op.batch_alter_table('online_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_online_sessions_trainee_id'))
        batch_op.drop_index(batch_op.f('ix_online_sessions_class_id'))

    op.drop_table('online_sessions')
