"""identity matches (1:N duplicate identity at enrolment)

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('identity_matches',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('person_kind', sa.String(length=10), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('other_kind', sa.String(length=10), nullable=False),
    sa.Column('other_id', sa.Integer(), nullable=False),
    sa.Column('outcome', sa.String(length=12), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('distance', sa.Float(), nullable=False),
    sa.Column('photo_sha256', sa.String(length=64), nullable=False),
    sa.Column('other_photo_sha256', sa.String(length=64), nullable=True),
    sa.Column('other_template_id', sa.Integer(), nullable=True),
    sa.Column('reasons', sa.JSON(), nullable=False),
    sa.Column('measured', sa.JSON(), nullable=False),
    sa.Column('thresholds', sa.JSON(), nullable=False),
    sa.Column('anomaly_id', sa.BigInteger(), nullable=True),
    sa.Column('decided_by', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['photo_sha256'], ['evidence.sha256'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('identity_matches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_identity_matches_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_identity_matches_other_id'), ['other_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('identity_matches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_identity_matches_other_id'))
        batch_op.drop_index(batch_op.f('ix_identity_matches_person_id'))
    op.drop_table('identity_matches')
