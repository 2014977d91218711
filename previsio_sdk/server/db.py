"""The metadata store: engine and session factory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.orm import Session, sessionmaker

from .models import Base


def make_engine(url: str) -> Engine:
    """Create the metadata engine for ``url`` and create the tables it lacks.

    SQLite gets WAL journaling and a busy timeout so that API requests and job threads can write side by side.
    """
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            # A replaced value (an old encrypted password, a revoked token's digest) is zeroed in the file.
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

    Base.metadata.create_all(engine)
    _add_missing_columns(engine)
    return engine


def _add_missing_columns(engine: Engine) -> None:
    """Add the nullable columns a newer version declares to the tables an older version created.

    ``create_all`` creates missing tables only; a column added later (``projects.color``) would make every
    query of an existing metadata store fail. Only nullable columns without a server default are added this
    way; anything else needs a real migration.
    """
    existing = inspect(engine)
    tables = set(existing.get_table_names())
    statements = []
    for table in Base.metadata.sorted_tables:
        if table.name not in tables:
            continue
        have = {c["name"] for c in existing.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have and column.nullable and column.server_default is None:
                kind = column.type.compile(dialect=engine.dialect)
                statements.append(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}')
    if statements:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)


class Database:
    """Holds the engine and hands out sessions."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Yield a session that commits on success and rolls back on error."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
