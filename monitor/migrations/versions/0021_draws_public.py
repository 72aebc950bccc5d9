"""the daily draw at a set time, supplementary draws: kind, sequence number, algorithm version and rule on draws;
one draw per (day, seq) instead of one per day

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

# SQLite reflects the unnamed UNIQUE (day) of 0012 without a name; batch mode names it by this convention so that it
# can be dropped when the table is copied. PostgreSQL named it itself (draws_day_key): the reflected name is used.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def day_unique_names() -> list[str]:
    uniques = sa.inspect(op.get_bind()).get_unique_constraints('draws')
    return [u['name'] or 'uq_draws_day' for u in uniques if list(u['column_names']) == ['day']]


def upgrade() -> None:
    names = day_unique_names()
    with op.batch_alter_table('draws', naming_convention=NAMING) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=16), nullable=False, server_default='daily'))
        batch_op.add_column(sa.Column('seq', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('algorithm', sa.String(length=40), nullable=False,
                                      server_default='yn-draw/1'))
        batch_op.add_column(sa.Column('rule', sa.JSON(), nullable=True))
        for name in names:
            batch_op.drop_constraint(name, type_='unique')
        batch_op.create_unique_constraint('uq_draws_day_seq', ['day', 'seq'])


def downgrade() -> None:
    op.execute("DELETE FROM draws WHERE seq > 1")  # supplementary draws have no place in one-draw-a-day
    with op.batch_alter_table('draws', naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint('uq_draws_day_seq', type_='unique')
        batch_op.create_unique_constraint('draws_day_key', ['day'])
        batch_op.drop_column('rule')
        batch_op.drop_column('algorithm')
        batch_op.drop_column('seq')
        batch_op.drop_column('kind')
