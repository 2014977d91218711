"""The metadata store: engine, session factory, and its schema's migrations (Alembic).

The schema is never created from the models directly: :func:`upgrade_schema` runs the Alembic migrations
of ``migrations/versions`` up to the newest, the first of which creates the tables of version 0.1.0. A store
made by 0.1.0 (its tables, but no ``alembic_version``) is first marked as being at that first revision, then
upgraded in place with its data.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

#: The revision that creates the schema of previsio_sdk 0.1.0.
BASE_REVISION = "0001"
MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class SchemaOutOfDate(RuntimeError):
    """The metadata store is older than this code and automatic upgrades are off."""


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision of the migrations shipped with this code."""
    from alembic.script import ScriptDirectory

    config = _alembic_config(None)  # type: ignore[arg-type]
    return str(ScriptDirectory.from_config(config).get_current_head())


def current_revision(engine: Engine) -> str | None:
    """The revision the store is at; ``BASE_REVISION`` for a 0.1.0 store; None for an empty one."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        revision = MigrationContext.configure(conn).get_current_revision()
        if revision is None and inspect(conn).has_table("projects"):
            return BASE_REVISION
        return revision


def upgrade_schema(engine: Engine) -> tuple[str | None, str]:
    """Run the migrations the store lacks; return the revisions before and after.

    On PostgreSQL the upgrade holds an advisory lock for its transaction, so that several replicas starting
    together upgrade once, one after the other.
    """
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(7263001)"))
        config = _alembic_config(conn)
        before = MigrationContext.configure(conn).get_current_revision()
        if before is None and inspect(conn).has_table("projects"):
            command.stamp(config, BASE_REVISION)  # a 0.1.0 store: its tables are revision 0001's
            before = BASE_REVISION
        command.upgrade(config, "head")
        after = MigrationContext.configure(conn).get_current_revision()
    return before, str(after)


def make_engine(url: str, *, upgrade: bool = True, pool_size: int = 5, max_overflow: int = 10) -> Engine:
    """Create the metadata engine for ``url`` and bring its schema up to date.

    SQLite gets WAL journaling and a busy timeout so that API requests and job threads can write side by side.

    Args:
        url: SQLAlchemy URL of the store.
        upgrade: Run the missing migrations; when False, a store not at the newest revision is refused.
        pool_size: Connections the pool keeps open (SQLite files included).
        max_overflow: Connections it may open beyond ``pool_size`` under load, closed when given back.

    Raises:
        SchemaOutOfDate: ``upgrade`` is False and the store needs migrations (``previsio db upgrade``).
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

    if upgrade:
        upgrade_schema(engine)
    else:
        current, head = current_revision(engine), head_revision()
        if current != head:
            engine.dispose()
            raise SchemaOutOfDate(
                f"The metadata store is at revision {current or 'none'}, this code needs {head}: run "
                "`previsio db upgrade` (or set PREVISIO_DB_AUTO_UPGRADE=true)."
            )
    return engine


class Database:
    """Holds the engine and hands out sessions.

    Args:
        url: SQLAlchemy URL of the metadata store.
        upgrade: Bring the schema to the newest revision first (see :func:`make_engine`).
        pool_size: Connections the pool keeps open.
        max_overflow: Connections it may open beyond ``pool_size`` under load.
    """

    def __init__(self, url: str, *, upgrade: bool = True, pool_size: int = 5, max_overflow: int = 10) -> None:
        self.engine = make_engine(url, upgrade=upgrade, pool_size=pool_size, max_overflow=max_overflow)
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
