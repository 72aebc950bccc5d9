"""session reviews

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('session_reviews',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('class_id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('snapshots', sa.Integer(), nullable=False),
    sa.Column('teachers_seen', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['class_id'], ['classes.id'], ),
    sa.ForeignKeyConstraint(['session_id'], ['class_sessions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('class_id', 'session_id', 'day')
    )
    with op.batch_alter_table('session_reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_session_reviews_class_id'), ['class_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('session_reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_session_reviews_class_id'))

    op.drop_table('session_reviews')
