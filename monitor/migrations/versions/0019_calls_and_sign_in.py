"""calls timed by the inspector page and confirmed by call detail records; institutions' contact phones; one-time
sign-in links for staff and session tokens that expire

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('phone_calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('started_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('timing', sa.String(length=12), nullable=False, server_default='typed'))
        batch_op.add_column(sa.Column('callee', sa.String(length=20), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('cdr_state', sa.String(length=12), nullable=False, server_default='unchecked'))
        batch_op.add_column(sa.Column('cdr_ref', sa.String(length=200), nullable=True))
    with op.batch_alter_table('institutions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('contact_phone', sa.String(length=20), nullable=False, server_default=''))
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'sign_in_links',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('code_hash', sa.String(length=64), nullable=False, unique=True),
        sa.Column('staff_id', sa.Integer(), sa.ForeignKey('staff.id'), nullable=False, index=True),
        sa.Column('issued_by', sa.String(length=100), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('token_id', sa.Integer(), sa.ForeignKey('api_tokens.id'), nullable=True),
    )
    op.create_table(
        'cdr_imports',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('format', sa.String(length=20), nullable=False),
        sa.Column('rows', sa.Integer(), nullable=False),
        sa.Column('confirmed', sa.Integer(), nullable=False),
        sa.Column('unconfirmed', sa.Integer(), nullable=False),
        sa.Column('imported_by', sa.String(length=100), nullable=False),
        sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('cdr_imports')
    op.drop_table('sign_in_links')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('expires_at')
    # In place (SQLite >= 3.35 drops a column without rebuilding the table, which the foreign keys that point at
    # institutions would forbid).
    op.drop_column('institutions', 'contact_phone')
    with op.batch_alter_table('phone_calls', schema=None) as batch_op:
        for column in ('cdr_ref', 'cdr_state', 'callee', 'timing', 'ended_at', 'started_at'):
            batch_op.drop_column(column)
