"""identity matches and face vectors (1:N duplicate identity at enrolment)

face_vectors holds the float32 copy of each face template's encoding, which the 1:N index loads at
start-up (monitor/face_index.py); existing templates are copied here.

Revision ID: 0009
Revises: 0008
"""

import json

import numpy as np
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('face_vectors',
    sa.Column('template_id', sa.Integer(), nullable=False),
    sa.Column('vector', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['template_id'], ['face_templates.id'], ),
    sa.PrimaryKeyConstraint('template_id')
    )
    bind = op.get_bind()
    templates = sa.table('face_templates', sa.column('id', sa.Integer()), sa.column('encoding', sa.Text()))
    vectors = sa.table('face_vectors', sa.column('template_id', sa.Integer()), sa.column('vector', sa.LargeBinary()))
    last = 0
    while True:
        rows = bind.execute(sa.select(templates.c.id, sa.cast(templates.c.encoding, sa.Text()))
                            .where(templates.c.id > last).order_by(templates.c.id).limit(20000)).all()
        if not rows:
            break
        bind.execute(vectors.insert(), [
            {"template_id": r[0], "vector": np.asarray(json.loads(r[1]), dtype="<f4").tobytes()} for r in rows])
        last = rows[-1][0]

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
    op.drop_table('face_vectors')
