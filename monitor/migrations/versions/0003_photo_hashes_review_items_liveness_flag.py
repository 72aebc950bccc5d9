"""photo hashes, review items, liveness flag

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('photo_hashes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('phash', sa.String(length=16), nullable=False),
    sa.Column('subject_kind', sa.String(length=10), nullable=False),
    sa.Column('subject_id', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['sha256'], ['evidence.sha256'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('photo_hashes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_photo_hashes_sha256'), ['sha256'], unique=False)

    op.create_table('review_items',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('subject_kind', sa.String(length=10), nullable=False),
    sa.Column('subject_id', sa.BigInteger(), nullable=False),
    sa.Column('class_id', sa.Integer(), nullable=False),
    sa.Column('trainee_id', sa.Integer(), nullable=True),
    sa.Column('reason_code', sa.String(length=32), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('measured', sa.JSON(), nullable=False),
    sa.Column('thresholds', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['class_id'], ['classes.id'], ),
    sa.ForeignKeyConstraint(['trainee_id'], ['trainees.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('subject_kind', 'subject_id', 'reason_code')
    )
    with op.batch_alter_table('review_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_items_class_id'), ['class_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_items_created_at'), ['created_at'], unique=False)

    with op.batch_alter_table('classes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('liveness_required', sa.Boolean(), server_default='0', nullable=False))

    with op.batch_alter_table('verifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('needs_review', sa.Boolean(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('face_encoding', sa.JSON(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('verifications', schema=None) as batch_op:
        batch_op.drop_column('face_encoding')
        batch_op.drop_column('needs_review')

    with op.batch_alter_table('classes', schema=None) as batch_op:
        batch_op.drop_column('liveness_required')

    with op.batch_alter_table('review_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_items_created_at'))
        batch_op.drop_index(batch_op.f('ix_review_items_class_id'))

    op.drop_table('review_items')
    with op.batch_alter_table('photo_hashes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_photo_hashes_sha256'))

    op.drop_table('photo_hashes')
