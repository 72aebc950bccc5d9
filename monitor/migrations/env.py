"""Alembic environment: runs migrations on the connection handed over by monitor.adapters.storage."""

from alembic import context

from models.tables import Base

connection = context.config.attributes.get("connection")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
