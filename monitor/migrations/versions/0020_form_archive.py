"""the inspection form as an archival record: the inspector's own signature, the digest of the form's record (what
its QR code and /verify carry), and each form photo's capture time, fix and EXIF time

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inspections', schema=None) as batch_op:
        # Forms filed before 0020 have neither: no inspector signature and no record digest (verify by the PDF's).
        batch_op.add_column(sa.Column('inspector_signature_sha256', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('record_sha256', sa.String(length=64), nullable=True))
        batch_op.create_index('ix_inspections_record_sha256', ['record_sha256'], unique=False)
        batch_op.create_index('ix_inspections_pdf_sha256', ['pdf_sha256'], unique=False)
    with op.batch_alter_table('inspection_photos', schema=None) as batch_op:
        batch_op.add_column(sa.Column('captured_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('fix', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('exif_taken_at', sa.String(length=19), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('inspection_photos', schema=None) as batch_op:
        batch_op.drop_column('exif_taken_at')
        batch_op.drop_column('fix')
        batch_op.drop_column('captured_at')
    with op.batch_alter_table('inspections', schema=None) as batch_op:
        batch_op.drop_index('ix_inspections_pdf_sha256')
        batch_op.drop_index('ix_inspections_record_sha256')
        batch_op.drop_column('record_sha256')
        batch_op.drop_column('inspector_signature_sha256')
