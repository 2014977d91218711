"""The metadata store: engine and session factory."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from .models import Base


def make_engine(url: str, pool_size: int = 5, max_overflow: int = 10) -> Engine:
    """Create the metadata engine for ``url`` and create the tables it lacks.

    SQLite gets WAL journaling and a busy timeout so that API requests and job threads can write side by side.

    Args:
        url: SQLAlchemy URL of the metadata store.
        pool_size: Connections the pool keeps open (SQLite files included).
        max_overflow: Connections it may open beyond ``pool_size`` under load, closed when given back.
    """
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    in_memory = url.startswith("sqlite") and (":memory:" in url or url.rstrip("/") in ("sqlite:", "sqlite:/"))
    if not in_memory:
        # SQLAlchemy's default pool for a server or an SQLite file, made explicit: it takes a size.
        kwargs.update(poolclass=QueuePool, pool_size=pool_size, max_overflow=max_overflow)
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
    return engine


class Database:
    """Holds the engine and hands out sessions."""

    def __init__(self, url: str, pool_size: int = 5, max_overflow: int = 10) -> None:
        self.engine = make_engine(url, pool_size, max_overflow)
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
