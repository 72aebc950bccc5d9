"""alerts and rule subjects

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('rule_subjects',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    op.create_table('alerts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rule', sa.String(length=32), nullable=False),
    sa.Column('class_id', sa.Integer(), nullable=False),
    sa.Column('region_code', sa.String(length=6), nullable=False),
    sa.Column('severity', sa.String(length=8), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('open_count', sa.Integer(), nullable=False),
    sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('resolved_note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['class_id'], ['classes.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alerts_class_id'), ['class_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_last_at'), ['last_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_region_code'), ['region_code'], unique=False)

    with op.batch_alter_table('anomalies', schema=None) as batch_op:
        batch_op.add_column(sa.Column('alert_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
        batch_op.add_column(sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('resolved_note', sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f('ix_anomalies_alert_id'), ['alert_id'], unique=False)
        batch_op.create_foreign_key('fk_anomalies_alert', 'alerts', ['alert_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('anomalies', schema=None) as batch_op:
        # WARNING: constraint name is None; this directive will fail as
        # rendered.  Add a name, or use a naming convention; see
        # https://alembic.sqlalchemy.org/en/latest/naming.html
        batch_op.drop_constraint('fk_anomalies_alert', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_anomalies_alert_id'))
        batch_op.drop_column('resolved_note')
        batch_op.drop_column('resolved_at')
        batch_op.drop_column('alert_id')

    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alerts_region_code'))
        batch_op.drop_index(batch_op.f('ix_alerts_last_at'))
        batch_op.drop_index(batch_op.f('ix_alerts_class_id'))

    op.drop_table('alerts')
    op.drop_table('rule_subjects')
