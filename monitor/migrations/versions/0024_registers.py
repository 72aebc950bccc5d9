"""register extracts (issue 20 item 1, clause 八/九): each import's record (file SHA-256, source, period, counts,
first row errors, masked sample, author, state) and one row table per source, ID numbers as keyed hashes (HMAC with a
key kept outside the database), indexed

Revision ID: 0024
Revises: 0023
"""

import sqlalchemy as sa
from alembic import op

revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _row_table(name: str, *columns: sa.Column) -> None:
    op.create_table(
        name,
        sa.Column('id', BIG_ID, primary_key=True),
        sa.Column('import_id', sa.Integer(), sa.ForeignKey('register_imports.id', ondelete='CASCADE'),
                  nullable=False, index=True),
        sa.Column('row_number', sa.Integer(), nullable=False),
        sa.Column('id_hash', sa.String(length=64), nullable=False, index=True),
        *columns,
    )


def upgrade() -> None:
    op.create_table(
        'register_imports',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('source', sa.String(length=20), nullable=False),
        sa.Column('period', sa.String(length=7), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('filename', sa.String(length=200), nullable=False),
        sa.Column('file_kind', sa.String(length=8), nullable=False),
        sa.Column('rows_accepted', sa.Integer(), nullable=False),
        sa.Column('rows_refused', sa.Integer(), nullable=False),
        sa.Column('errors', sa.JSON(), nullable=False),
        sa.Column('sample', sa.JSON(), nullable=False),
        sa.Column('key_id', sa.String(length=40), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('created_by', sa.String(length=100), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('committed_by', sa.String(length=100), nullable=True),
        sa.Column('committed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('replaced_by', sa.Integer(), nullable=True),
    )
    op.create_index('ix_register_imports_source_state', 'register_imports', ['source', 'state'])
    _row_table('register_insurance',
               sa.Column('employer', sa.String(length=200), nullable=False),
               sa.Column('county_code', sa.String(length=6), nullable=False),
               sa.Column('month_from', sa.String(length=7), nullable=False),
               sa.Column('month_to', sa.String(length=7), nullable=False),
               sa.Column('kind', sa.String(length=40), nullable=True))
    _row_table('register_employment',
               sa.Column('state', sa.String(length=20), nullable=False),
               sa.Column('registered_on', sa.Date(), nullable=False),
               sa.Column('county_code', sa.String(length=6), nullable=False))
    _row_table('register_certificates',
               sa.Column('occupation_code', sa.String(length=20), nullable=False),
               sa.Column('level', sa.Integer(), nullable=False),
               sa.Column('certificate_no', sa.String(length=60), nullable=False),
               sa.Column('issued_on', sa.Date(), nullable=False))
    _row_table('register_teachers',
               sa.Column('qualifications', sa.String(length=200), nullable=False),
               sa.Column('check_result', sa.String(length=20), nullable=False),
               sa.Column('check_year', sa.Integer(), nullable=False))
    _row_table('register_vouchers',
               sa.Column('voucher_no', sa.String(length=60), nullable=False, index=True),
               sa.Column('occupation_code', sa.String(length=20), nullable=False),
               sa.Column('state', sa.String(length=20), nullable=False),
               sa.Column('issued_on', sa.Date(), nullable=False),
               sa.Column('used_on', sa.Date(), nullable=True))


def downgrade() -> None:
    for name in ('register_vouchers', 'register_teachers', 'register_certificates', 'register_employment',
                 'register_insurance'):
        op.drop_table(name)
    op.drop_index('ix_register_imports_source_state', table_name='register_imports')
    op.drop_table('register_imports')
