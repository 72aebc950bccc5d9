"""face models as manifests: dlib's templates and verdicts renamed to the manifest's model version, an index to
find a person's templates of one model (old and new vectors never mix in one comparison), and the operator's
review of a look-alike found at enrolment

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

from models.audit import SYSTEM, append_audit

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

OLD = 'face_recognition-1.3.0/dlib-%'
NEW = 'dlib-resnet@55533b28a95800a5'  # manifest dlib-resnet: name and the weights' SHA-256 prefix


def upgrade() -> None:
    conn = op.get_bind()
    counts = {}
    for table in ('face_templates', 'verifications'):
        result = conn.execute(sa.text(f"UPDATE {table} SET model_version = :new WHERE model_version LIKE :old"),
                              {"new": NEW, "old": OLD})
        counts[table] = result.rowcount
    if any(counts.values()):
        append_audit(conn, "migrate", "face_model", NEW,
                     {"migration": revision, "renamed_from": OLD, "renamed_to": NEW, "rows": counts}, SYSTEM)
    op.create_index('ix_face_templates_person_model', 'face_templates',
                    ['person_kind', 'person_id', 'model_version'])
    # An operator's review of a look-alike found at enrolment (1:N): distinct people, or the same person.
    with op.batch_alter_table('identity_matches', schema=None) as batch_op:
        batch_op.add_column(sa.Column('review_state', sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column('reviewed_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('review_note', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('identity_matches', schema=None) as batch_op:
        for column in ('review_note', 'reviewed_at', 'reviewed_by', 'review_state'):
            batch_op.drop_column(column)
    op.drop_index('ix_face_templates_person_model', table_name='face_templates')
