"""liveness challenges and frames

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('liveness_challenges',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('institution_id', sa.Integer(), nullable=False),
    sa.Column('class_id', sa.Integer(), nullable=False),
    sa.Column('trainee_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=12), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_by_checkin_id', sa.BigInteger(), nullable=True),
    sa.ForeignKeyConstraint(['class_id'], ['classes.id'], ),
    sa.ForeignKeyConstraint(['institution_id'], ['institutions.id'], ),
    sa.ForeignKeyConstraint(['trainee_id'], ['trainees.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('checkin_frames',
    sa.Column('checkin_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['checkin_id'], ['checkins.id'], ),
    sa.ForeignKeyConstraint(['sha256'], ['evidence.sha256'], ),
    sa.PrimaryKeyConstraint('checkin_id', 'index')
    )
    with op.batch_alter_table('checkins', schema=None) as batch_op:
        batch_op.add_column(sa.Column('liveness_challenge_id', sa.String(length=32), nullable=True))
        batch_op.create_foreign_key(
            'fk_checkins_liveness_challenge', 'liveness_challenges', ['liveness_challenge_id'], ['id']
        )



def downgrade() -> None:
    with op.batch_alter_table('checkins', schema=None) as batch_op:
        # WARNING: constraint name is None; this directive will fail as
        # rendered.  Add a name, or use a naming convention; see
        # https://alembic.sqlalchemy.org/en/latest/naming.html
        batch_op.drop_constraint('fk_checkins_liveness_challenge', type_='foreignkey')
        batch_op.drop_column('liveness_challenge_id')

    op.drop_table('checkin_frames')
    op.drop_table('liveness_challenges')
