"""Alembic environment of the metadata store: runs on the connection ``db.upgrade_schema`` hands over."""

from __future__ import annotations

from alembic import context

from previsio_sdk.server.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot alter most things in place: batch mode copies the table, as Alembic documents.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
