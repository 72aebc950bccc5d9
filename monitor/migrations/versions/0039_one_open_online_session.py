"""one open online-study session per trainee, held by the database (a partial unique index): eight simultaneous
starts made two open sessions, and the trainee's minutes were counted in both; sessions left open beside a newer
one are ended first, at their last heartbeat (or their start)

Revision ID: 0039
Revises: 0038
"""

import sqlalchemy as sa
from alembic import op

revision = '0039'
down_revision = '0038'
branch_labels = None
depends_on = None

OPEN = 'ended_at IS NULL'


def upgrade() -> None:
    op.execute(
        "UPDATE online_sessions SET ended_at = COALESCE((SELECT MAX(h.captured_at) FROM online_heartbeats h "
        "WHERE h.session_id = online_sessions.id), online_sessions.started_at) "
        "WHERE ended_at IS NULL AND EXISTS (SELECT 1 FROM online_sessions o WHERE o.trainee_id = "
        "online_sessions.trainee_id AND o.ended_at IS NULL AND o.id > online_sessions.id)")
    op.create_index('uq_online_sessions_open_trainee', 'online_sessions', ['trainee_id'], unique=True,
                    postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))


def downgrade() -> None:
    op.drop_index('uq_online_sessions_open_trainee', table_name='online_sessions')
