"""Alembic migrations of the metadata store (see :func:`previsio_sdk.server.db.upgrade_schema`)."""
