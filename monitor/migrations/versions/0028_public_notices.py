"""the public notice as last built, shared by every API process, with the claim of the one building the next
(issue 21 item 6: one build at a time in the whole cluster, not one per process)

Revision ID: 0028
Revises: 0027
"""

import sqlalchemy as sa
from alembic import op

revision = '0028'
down_revision = '0027'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'public_notices',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('version', sa.String(length=200), nullable=False),
        sa.Column('built_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('classes', sa.JSON(), nullable=False),
        sa.Column('building_since', sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table('public_notices')
