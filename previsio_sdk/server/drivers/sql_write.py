"""Writing record-batch streams into SQL tables: the export side of the SQL driver.

Every write is all or nothing, and goes through the database's bulk path:

* **PostgreSQL**: one transaction on an ADBC connection; rows go through ``COPY`` (binary) into a staging
  table created in that transaction with the dataset's column types. ``replace`` (and a table that does not
  exist yet) renames the staging table to the target, after dropping the old one, in the same transaction;
  ``append`` and ``upsert`` copy into a temporary table, then ``INSERT ... SELECT`` casts the rows to the
  target's column types (after ``DELETE ... USING`` the rows of the same key, for ``upsert``).
* **MySQL/MariaDB**: rows are encoded to CSV by Arrow and sent with ``LOAD DATA LOCAL INFILE`` (multi-row
  ``INSERT`` statements when the server refuses local files), in strict SQL mode, and any warning fails the
  write. The chunks go from memory through :class:`~.mysql_load.GuardedConnection`, which never sends a
  file the server names. MySQL commits DDL implicitly, so ``replace`` (and a table that does not exist
  yet) fills a staging table that ``RENAME TABLE`` swaps in atomically at the end; ``append`` and
  ``upsert`` into an existing table run in one InnoDB transaction (``upsert`` through a ``TEMPORARY``
  table).
* **SQLite**: one ``BEGIN IMMEDIATE`` transaction, ``executemany``.

A table created by an export takes the dataset's schema, each Arrow type mapped to a column type of the
dialect (:func:`column_plan`). Appending to an existing table first checks the dataset's columns against
the table's (:func:`check_compatible`) and fails before writing anything when they do not fit. Table and
column names are always quoted by the dialect's identifier preparer, never interpolated raw.

Writes use their own sessions: the read paths open PostgreSQL sessions read-only and SQLite files read-only.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects import mysql as sa_mysql
from sqlalchemy.dialects import postgresql as sa_pg
from sqlalchemy.dialects import sqlite as sa_sqlite
from sqlalchemy.exc import DBAPIError

from ..errors import Invalid
from ..streaming import read_ahead
from .base import (
    TABLE_WRITE_MODES,
    AuthenticationFailed,
    ConnectionFailed,
    DestinationSpec,
    DriverError,
    IncompatibleSchema,
    SourceNotFound,
    StreamTap,
    WriteFailed,
    WriteMode,
    WriteResult,
)
from .sqlite_files import allowed_sqlite_file, connect_sqlite

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Dialect

#: Longest table name each dialect keeps (PostgreSQL silently truncates longer ones: refused instead).
MAX_IDENTIFIER_BYTES = {"postgresql": 63, "mysql": 64, "sqlite": 1000}
#: Bytes of CSV sent per ``LOAD DATA`` statement (MySQL).
LOAD_DATA_CHUNK_BYTES = 8 << 20
#: Rows per ``executemany`` call (MySQL without local files, SQLite).
INSERT_BATCH_ROWS = 10_000
#: Strict mode: a value that does not fit its column fails the write instead of being changed.
MYSQL_SQL_MODE = ",".join(
    (
        "STRICT_ALL_TABLES",
        "NO_ENGINE_SUBSTITUTION",
        "NO_ZERO_IN_DATE",
        "NO_ZERO_DATE",
        "ERROR_FOR_DIVISION_BY_ZERO",
    )
)
#: MySQL integer types by bit width.
_MYSQL_INTEGERS: dict[int, Any] = {
    8: sa_mysql.TINYINT,
    16: sa_mysql.SMALLINT,
    32: sa_mysql.INTEGER,
    64: sa_mysql.BIGINT,
}
#: Length of string key columns in tables made by an upsert on MySQL (an index needs a bounded length).
MYSQL_KEY_LENGTH = 255

_SA_DIALECTS: dict[str, Callable[[], Dialect]] = {
    "postgresql": sa_pg.dialect,
    "mysql": sa_mysql.dialect,
    "sqlite": sa_sqlite.dialect,
}


def sa_dialect(name: str) -> Dialect:
    """The SQLAlchemy dialect that compiles DDL and quotes identifiers for ``name``.

    Its parameter style is ``named``: with the DB-API's ``format`` style, compiling doubles every ``%`` of a
    name for a driver that would read them as placeholders, and these statements run without parameters.
    """
    return _SA_DIALECTS[name](paramstyle="named")


# ------------------------------------------------------------------------------------------------------------
# Types: Arrow to SQL
# ------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ColumnPlan:
    """How one dataset column is written: its name, the Arrow type batches are cast to, its SQL type."""

    name: str
    wire: pa.DataType
    sql: sa.types.TypeEngine[Any]


def _unwrap(typ: pa.DataType) -> pa.DataType:
    if isinstance(typ, pa.ExtensionType) or isinstance(typ, pa.BaseExtensionType):
        typ = typ.storage_type
    if pa.types.is_dictionary(typ):
        typ = typ.value_type
    return typ


def column_plan(field: pa.Field, dialect: str, *, key: bool = False) -> ColumnPlan:
    """The Arrow type a column is cast to before writing, and its SQL type in a table created for it.

    Args:
        field: The dataset's column.
        dialect: ``postgresql``, ``mysql`` or ``sqlite``.
        key: Whether the column is an upsert key (MySQL gives string keys a bounded, indexable type).

    Raises:
        IncompatibleSchema: The type has no SQL column type (lists, structs, maps).
    """
    t = _unwrap(field.type)
    name = field.name
    pg, my = dialect == "postgresql", dialect == "mysql"
    wire: pa.DataType = t
    sql: sa.types.TypeEngine[Any]
    if pa.types.is_null(t):
        wire, sql = pa.string(), (sa_mysql.LONGTEXT() if my else sa.Text())
    elif pa.types.is_boolean(t):
        sql = sa.Boolean()
    elif pa.types.is_integer(t):
        bits, signed = t.bit_width, pa.types.is_signed_integer(t)
        if my:  # MySQL has every width, signed or not: types come back as they went
            base = _MYSQL_INTEGERS[bits]
            sql = base(unsigned=not signed)
        else:
            need = bits if signed else bits * 2  # room for the unsigned range in a signed type
            if need <= 16:
                wire, sql = pa.int16(), sa.SmallInteger()
            elif need <= 32:
                wire, sql = pa.int32(), sa.Integer()
            elif need <= 64:
                wire, sql = pa.int64(), sa.BigInteger()
            else:
                wire, sql = pa.decimal128(20, 0), sa.Numeric(20, 0)
    elif pa.types.is_floating(t):
        if t.bit_width <= 32:
            wire, sql = pa.float32(), (sa_mysql.FLOAT() if my else sa.REAL())
        else:
            sql = sa_mysql.DOUBLE() if my else sa.Double()
    elif pa.types.is_decimal(t):
        if my and (t.precision > 65 or t.scale > 30):
            raise IncompatibleSchema(
                f"Column {name!r} ({t}) has more digits than a MySQL DECIMAL holds (65, 30 decimals)."
            )
        sql = sa.Numeric(t.precision, t.scale)
    elif pa.types.is_string(t) or pa.types.is_large_string(t) or _is_view(t, "string"):
        wire = pa.string()
        if my:
            sql = sa.String(MYSQL_KEY_LENGTH) if key else sa_mysql.LONGTEXT()
        else:
            sql = sa.Text()
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        wire, sql = pa.binary(), (sa_mysql.LONGBLOB() if my else sa.LargeBinary())
    elif _is_view(t, "binary"):
        wire, sql = pa.binary(), (sa_mysql.LONGBLOB() if my else sa.LargeBinary())
    elif pa.types.is_date(t):
        wire, sql = pa.date32(), sa.Date()
    elif pa.types.is_timestamp(t):
        wire = pa.timestamp("us", tz="UTC") if t.tz else pa.timestamp("us")
        if my:  # DATETIME holds any year; values of a time zone are written in UTC
            sql = sa_mysql.DATETIME(fsp=6)
        else:
            sql = sa.DateTime(timezone=bool(t.tz) and pg)
    elif pa.types.is_time(t):
        wire, sql = pa.time64("us"), (sa_mysql.TIME(fsp=6) if my else sa.Time())
    elif pa.types.is_duration(t):
        if pg:
            wire, sql = pa.duration("us"), sa_pg.INTERVAL()
        else:  # MySQL's TIME stops at 839 hours and SQLite has no interval: microseconds
            wire, sql = pa.int64(), sa.BigInteger()
    else:
        raise IncompatibleSchema(f"Column {name!r} of type {field.type} cannot be written to an SQL table.")
    return ColumnPlan(name, wire, sql)


def _is_view(t: pa.DataType, kind: str) -> bool:
    check = getattr(pa.types, f"is_{kind}_view", None)
    return bool(check and check(t))


def table_plan(schema: pa.Schema, dialect: str, key: Sequence[str] | None = None) -> list[ColumnPlan]:
    """The plan of every column of ``schema`` (see :func:`column_plan`).

    Raises:
        IncompatibleSchema: A column cannot be written, names repeat, or a name is too long for the dialect.
    """
    keys = {k.lower() for k in key or ()}
    names = [f.name for f in schema]
    folded = [n.lower() for n in names] if dialect != "postgresql" else names
    if len(set(folded)) != len(folded):
        raise IncompatibleSchema("The dataset has several columns of the same name; a table cannot.")
    limit = MAX_IDENTIFIER_BYTES[dialect]
    for name in names:
        if not name or _identifier_size(name, dialect) > limit or "\x00" in name:
            raise IncompatibleSchema(
                f"The column name {name!r} cannot be used in a {dialect} table (1 to {limit} bytes)."
            )
    return [column_plan(f, dialect, key=f.name.lower() in keys) for f in schema]


def cast_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` with its columns cast to ``schema`` (timestamps, times and durations truncated to µs)."""
    if batch.schema == schema:
        return batch
    arrays = []
    for col, field in zip(batch.columns, schema, strict=True):
        if col.type == field.type:
            arrays.append(col)
            continue
        if pa.types.is_dictionary(col.type):
            col = col.dictionary_decode()
        if pa.types.is_duration(col.type) and pa.types.is_integer(field.type):
            col = pc.cast(col, pa.duration("us"))  # then its count of microseconds
        lossy = pa.types.is_temporal(field.type) and pa.types.is_temporal(col.type)
        arrays.append(pc.cast(col, field.type, safe=not lossy))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def cast_stream(reader: pa.RecordBatchReader, schema: pa.Schema, tap: StreamTap) -> pa.RecordBatchReader:
    """A reader casting every batch of ``reader`` to ``schema``, watched by ``tap``."""
    return tap.wrap(reader, schema, lambda batch: cast_batch(batch, schema))


# ------------------------------------------------------------------------------------------------------------
# Compatibility with an existing table
# ------------------------------------------------------------------------------------------------------------
def _sql_category(t: sa.types.TypeEngine[Any]) -> str:
    if isinstance(t, sa.Boolean):
        return "bool"
    if isinstance(t, sa.Integer):
        return "int"
    if isinstance(t, sa.Float):
        return "float"
    if isinstance(t, sa.Numeric):
        return "decimal"
    if isinstance(t, sa.DateTime):
        return "datetime"
    if isinstance(t, sa.Date):
        return "date"
    if isinstance(t, sa.Time):
        return "time"
    if isinstance(t, sa.sql.sqltypes._AbstractInterval):
        return "duration"
    if isinstance(t, sa.sql.sqltypes._Binary):
        return "binary"
    if isinstance(t, sa.String):
        return "string"
    return "other"


def _arrow_category(t: pa.DataType) -> str:
    t = _unwrap(t)
    if pa.types.is_null(t):
        return "null"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_decimal(t):
        return "decimal"
    if pa.types.is_timestamp(t):
        return "datetime"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_time(t):
        return "time"
    if pa.types.is_duration(t):
        return "duration"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or _is_view(t, "string"):
        return "string"
    return "binary"


#: The dataset column categories each table column category accepts (the database converts within these).
_ANY_SCALAR = frozenset({"bool", "int", "float", "decimal", "string", "date", "datetime", "time", "duration"})
ACCEPTED: dict[str, frozenset[str]] = {
    "bool": frozenset({"bool"}),
    "int": frozenset({"int", "bool", "decimal", "duration"}),
    "float": frozenset({"float", "int", "decimal"}),
    "decimal": frozenset({"decimal", "int", "float"}),
    "string": _ANY_SCALAR,
    "binary": frozenset({"binary"}),
    "date": frozenset({"date"}),
    "datetime": frozenset({"datetime", "date"}),
    "time": frozenset({"time"}),
    "duration": frozenset({"duration"}),
    # Types of one database (JSON, UUID, arrays, enums...): text (or bytes) the database parses.
    "other": frozenset({"string", "binary"}),
}


def match_columns(table: sa.Table, names: Sequence[str], dialect: str) -> dict[str, sa.Column[Any]]:
    """The table column of each dataset column name (case-insensitively on MySQL and SQLite)."""
    if dialect == "postgresql":
        by_name = {c.name: c for c in table.columns}
        return {n: by_name[n] for n in names if n in by_name}
    by_lower = {c.name.lower(): c for c in table.columns}
    return {n: by_lower[n.lower()] for n in names if n.lower() in by_lower}


def check_compatible(
    table: sa.Table, schema: pa.Schema, dialect: str, key: Sequence[str] | None = None
) -> dict[str, sa.Column[Any]]:
    """Check that the dataset's rows can be added to ``table``; nothing is written.

    Every dataset column must exist in the table with a type that accepts it (integers into integer,
    decimal, float or text columns; text into text or database-specific columns such as JSON or UUID...),
    every key column must exist, and every NOT NULL column without a default must be in the dataset.

    Returns:
        The table column of each dataset column.

    Raises:
        IncompatibleSchema: Something does not fit; ``details`` lists every problem.
    """
    names = [f.name for f in schema]
    matched = match_columns(table, names, dialect)
    problems: list[dict[str, Any]] = []
    for field in schema:
        column = matched.get(field.name)
        if column is None:
            problems.append({"column": field.name, "problem": "the table has no such column"})
            continue
        have, want = _arrow_category(field.type), _sql_category(column.type)
        accepted = ACCEPTED[want]
        if want == "other" and dialect == "sqlite":
            accepted = _ANY_SCALAR | {"binary"}  # a column without a declared type takes anything
        if have != "null" and have not in accepted:
            problems.append(
                {
                    "column": field.name,
                    "problem": f"a {field.type} column cannot be written to a {_type_name(column, dialect)} "
                    "column",
                }
            )
    for name in key or ():
        if name not in [f.name for f in schema] and name.lower() not in {n.lower() for n in names}:
            problems.append({"column": name, "problem": "the key column is not in the dataset"})
    written = {c.name for c in matched.values()}
    for column in table.columns:
        if column.name in written or column.nullable or column.server_default is not None:
            continue
        if column.identity is not None or _auto_key(table, column):
            continue
        problems.append({"column": column.name, "problem": "the table needs it (NOT NULL, no default)"})
    if problems:
        text = "; ".join(f"{p['column']!r}: {p['problem']}" for p in problems[:10])
        raise IncompatibleSchema(
            f"The dataset does not fit table {table.name!r}: {text}.", {"columns": problems}
        )
    return matched


def _auto_key(table: sa.Table, column: sa.Column[Any]) -> bool:
    pk = list(table.primary_key.columns)
    return pk == [column] and isinstance(column.type, sa.Integer) and column.autoincrement in (True, "auto")


def _type_name(column: sa.Column[Any], dialect: str) -> str:
    try:
        return column.type.compile(dialect=sa_dialect(dialect))
    except Exception:  # noqa: BLE001 - an unknown reflected type has no DDL; its class name will do
        return type(column.type).__name__


def check_key_columns(schema: pa.Schema, key: Sequence[str] | None, dialect: str) -> list[str]:
    """The dataset's names of the key columns (as spelled in the dataset).

    Raises:
        IncompatibleSchema: A key column is not in the dataset.
    """
    names = [f.name for f in schema]
    out = []
    for k in key or ():
        if k in names:
            out.append(k)
            continue
        folded = [n for n in names if n.lower() == k.lower()] if dialect != "postgresql" else []
        if len(folded) != 1:
            raise IncompatibleSchema(f"The key column {k!r} is not in the dataset.", {"column": k})
        out.append(folded[0])
    return out


# ------------------------------------------------------------------------------------------------------------
# The mixin of SQLDriver
# ------------------------------------------------------------------------------------------------------------
class TableWriterMixin:
    """What :class:`~previsio_sdk.server.drivers.sql.SQLDriver` does to write tables (see the module)."""

    write_modes: ClassVar[tuple[WriteMode, ...]] = TABLE_WRITE_MODES
    #: MySQL: send rows with LOAD DATA LOCAL INFILE when the server allows it (else multi-row INSERTs).
    mysql_load_data: ClassVar[bool] = True

    if TYPE_CHECKING:  # provided by Driver and SQLDriver
        config: Any
        settings: Any
        connect_timeout: int
        dialect: Any
        type_name: ClassVar[str]

        def redact(self, text: str) -> str: ...

        def host_address(self) -> str | None: ...

        def _connect(self, database: str | None = None) -> contextlib.AbstractContextManager[Connection]: ...

    def normalize_destination(
        self, dest: DestinationSpec, mode: WriteMode, key: Sequence[str] | None
    ) -> DestinationSpec:
        """Check a table destination: a table name (``schema.table`` on PostgreSQL), no path or bucket."""
        dest = super().normalize_destination(dest, mode, key)  # type: ignore[misc]
        if dest.path or dest.bucket:
            raise Invalid(
                "path= and bucket= do not apply to an SQL destination; give table=.", {"field": "path"}
            )
        if not dest.table or not dest.table.strip():
            raise Invalid("An SQL destination needs table= the table to write.", {"field": "table"})
        if dest.options:
            raise Invalid("An SQL destination takes no options.", {"field": "options"})
        name = self.dialect.name
        if name == "sqlite":
            if dest.database:
                raise Invalid(
                    "database= does not apply to SQLite: the connector's file is the database.",
                    {"field": "database"},
                )
            self._check_sqlite_file()
        schema, table = self._split_table(dest.table)
        limit = MAX_IDENTIFIER_BYTES[name]
        for part, what in ((schema, "schema"), (table, "table")):
            if part is not None and (not part or _identifier_size(part, name) > limit):
                raise Invalid(
                    f"The {what} name {part!r} is empty or longer than {limit} bytes, the most {name} keeps.",
                    {"field": "table"},
                )
        return DestinationSpec(database=dest.database or None, table=dest.table)

    def _check_sqlite_file(self) -> str:
        """The resolved path of the connector's SQLite file, checked against the platform's policy.

        Reading the metadata store would show every user's projects, token digests and encrypted secrets;
        see :func:`~previsio_sdk.server.drivers.sqlite_files.allowed_sqlite_file`.

        Raises:
            Invalid: A file of the platform (``unsafe_path``) or outside the allowed roots
                (``root_not_allowed``).
        """
        return allowed_sqlite_file(self.config.database or "", self.settings)

    def _split_table(self, name: str) -> tuple[str | None, str]:
        if "." in name and self.dialect.has_schemas:
            schema, table = name.split(".", 1)
            return schema, table
        return None, name

    def write(
        self,
        dest: DestinationSpec,
        reader: pa.RecordBatchReader,
        mode: WriteMode,
        key: Sequence[str] | None,
        *,
        job_id: str | None = None,
    ) -> WriteResult:
        """Write the stream into the table of ``dest`` (see the module for how each database does it).

        Staging tables are named after ``job_id`` (:func:`staging_name`) so that :meth:`discard_staging`
        can remove them after the process running the write died.
        """
        name = self.dialect.name
        if name == "postgresql":
            return self._write_postgres(dest, reader, mode, key, job_id)
        if name == "mysql":
            return self._write_mysql(dest, reader, mode, key, job_id)
        return self._write_sqlite(dest, reader, mode, key)

    def discard_staging(self, dest: DestinationSpec, job_id: str) -> None:
        """Drop the staging tables export ``job_id`` may have left (PostgreSQL and MySQL; SQLite's are
        temporary). Tables that do not exist are no error.

        Raises:
            DriverError: The database cannot be reached.
        """
        names = [staging_name("previsio_stage", job_id), staging_name("previsio_old", job_id)]
        database = dest.database or self.config.database
        if self.dialect.name == "mysql":
            import pymysql

            q = sa_dialect("mysql").identifier_preparer.quote_identifier
            con = self._mysql_connect(database)
            try:
                con.cursor().execute("DROP TABLE IF EXISTS " + ", ".join(q(n) for n in names))
            except pymysql.Error as exc:
                raise self._mysql_error(exc) from None
            finally:
                with contextlib.suppress(Exception):
                    con.close()
        elif self.dialect.name == "postgresql":
            import adbc_driver_manager
            import adbc_driver_postgresql

            q = sa_dialect("postgresql").identifier_preparer.quote_identifier
            schema, _table = self._split_table(dest.table or "")
            prefix = f"{q(schema)}." if schema else ""
            handles: list[Any] = []
            try:
                with self._adbc_write_errors(StreamTap()):
                    handles.append(adbc_driver_postgresql.connect(self._pg_write_uri(database)))
                    handles.append(adbc_driver_manager.AdbcConnection(handles[0]))
                    stmt = adbc_driver_manager.AdbcStatement(handles[1])
                    handles.append(stmt)
                    stmt.set_sql_query("DROP TABLE IF EXISTS " + ", ".join(prefix + q(n) for n in names))
                    stmt.execute_update()
            finally:
                for handle in reversed(handles):
                    with contextlib.suppress(Exception):
                        handle.close()

    # -- shared --------------------------------------------------------------------------------------------
    def _reflect(self, conn: Connection, table: str, schema: str | None) -> sa.Table | None:
        """The existing table (None when there is none)."""
        inspector = sa.inspect(conn)
        if not inspector.has_table(table, schema=schema):
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "did not recognize type": such columns are categorised "other"
            reflected = sa.Table(table, sa.MetaData(), schema=schema, autoload_with=conn)
        if self.dialect.name == "mysql":
            for column in reflected.columns:  # SQLAlchemy's MySQL reflection leaves backticks doubled
                column.name = column.name.replace("``", "`")
        return reflected

    def _plan(
        self,
        reader: pa.RecordBatchReader,
        mode: WriteMode,
        key: Sequence[str] | None,
        target: sa.Table | None,
    ) -> tuple[list[ColumnPlan], list[str], dict[str, sa.Column[Any]]]:
        """Column plans, key columns and (appending to a table) the matching table columns; checks first."""
        dialect = self.dialect.name
        keys = check_key_columns(reader.schema, key, dialect) if mode is WriteMode.upsert else []
        plans = table_plan(reader.schema, dialect, keys)
        matched: dict[str, sa.Column[Any]] = {}
        if target is not None and mode is not WriteMode.replace:
            matched = check_compatible(target, reader.schema, dialect, keys)
        return plans, keys, matched

    @contextlib.contextmanager
    def _write_errors(self, tap: StreamTap | None = None) -> Iterator[None]:
        """Turn database errors of a write into redacted driver errors (the stream's own error wins)."""
        try:
            yield
        except DriverError:
            raise
        except Invalid:
            raise
        except BaseException as exc:
            if tap is not None and tap.error is not None:
                raise tap.error from None  # the stream failed: its own error says why
            if not isinstance(exc, Exception):
                raise
            raise self._write_error(exc) from None

    def _write_error(self, exc: Exception) -> DriverError:
        if isinstance(exc, DBAPIError):
            cls = self.dialect.classify(exc)
            text = str(exc.orig).strip() or type(exc.orig).__name__
        elif isinstance(exc, (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)):
            return WriteFailed(self.redact(f"A value cannot be written to its column: {exc}"))
        else:
            text = str(exc).strip() or type(exc).__name__
            cls = ConnectionFailed if isinstance(exc, (ConnectionError, TimeoutError)) else WriteFailed
        if cls is not AuthenticationFailed and cls is not ConnectionFailed:
            cls = WriteFailed
        return cls(self.redact(_first_server_line(text)))

    # -- PostgreSQL ----------------------------------------------------------------------------------------
    def _pg_write_uri(self, database: str | None) -> str:
        """libpq conninfo of a writing session: UTC, not read-only, named so that an operator can find it."""
        options = "-c TimeZone=UTC"
        seconds = int(getattr(self, "query_timeout", 0) or 0)
        if seconds > 0:  # the platform's bound on statements (PREVISIO_QUERY_TIMEOUT_SECONDS) holds here too
            options += f" -c statement_timeout={seconds * 1000}"
        return libpq_conninfo(
            self.config,
            database,
            connect_timeout=self.connect_timeout,
            options=options,
            app="previsio-export",
            hostaddr=self.host_address(),  # the address the network guard checked
        )

    def _write_postgres(
        self,
        dest: DestinationSpec,
        reader: pa.RecordBatchReader,
        mode: WriteMode,
        key: Sequence[str] | None,
        job_id: str | None,
    ) -> WriteResult:
        import adbc_driver_manager
        import adbc_driver_postgresql

        database = dest.database or self.config.database
        schema, table = self._split_table(dest.table or "")
        with self._connect(database) as conn, self._write_errors():
            if schema is None:
                schema = conn.execute(sa.text("SELECT current_schema()")).scalar()
                if not schema:
                    raise WriteFailed("The session has no current schema: name the table schema.table.")
            target = self._reflect(conn, table, schema)
            plans, keys, matched = self._plan(reader, mode, key, target)
            target_types: dict[str, str] = {}
            if target is not None and mode is not WriteMode.replace:
                q = sa_dialect("postgresql").identifier_preparer.quote_identifier
                rows = conn.execute(
                    sa.text(
                        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) "
                        "FROM pg_catalog.pg_attribute a WHERE a.attrelid = CAST(:rel AS regclass) "
                        "AND a.attnum > 0 AND NOT a.attisdropped"
                    ),
                    {"rel": f"{q(schema)}.{q(table)}"},
                )
                target_types = {r[0]: r[1] for r in rows}
        dialect = sa_dialect("postgresql")
        q = dialect.identifier_preparer.quote_identifier
        qualified = f"{q(schema)}.{q(table)}"
        stage = staging_name("previsio_stage", job_id)
        # The staging table's columns have plain positional names: ADBC's ingestion does not find a column
        # whose name holds some characters ("50%"), and the rename below gives each its real name.
        pos = {p.name: f"c{i}" for i, p in enumerate(plans)}
        wire = pa.schema([pa.field(pos[p.name], p.wire) for p in plans])
        tap = StreamTap()
        handles: list[Any] = []

        def run(sql: str) -> None:
            stmt = adbc_driver_manager.AdbcStatement(handles[1])
            try:
                stmt.set_sql_query(sql)
                stmt.execute_update()
            finally:
                stmt.close()

        def ingest(temporary: bool) -> None:
            stmt = adbc_driver_manager.AdbcStatement(handles[1])
            try:
                options = {
                    "adbc.ingest.target_table": stage,
                    "adbc.ingest.mode": "adbc.ingest.mode.append",
                }
                if temporary:
                    options["adbc.ingest.temporary"] = "true"
                else:
                    options["adbc.ingest.target_db_schema"] = schema or "public"
                stmt.set_options(**options)
                stmt.bind_stream(cast_stream(reader, wire, tap))
                stmt.execute_update()
            finally:
                stmt.close()

        try:
            with self._adbc_write_errors(tap):
                handles.append(adbc_driver_postgresql.connect(self._pg_write_uri(database)))
                handles.append(adbc_driver_manager.AdbcConnection(handles[0]))
                handles[1].set_options(**{"adbc.connection.autocommit": "false"})
                try:
                    columns = [sa.Column(pos[p.name], p.sql) for p in plans]
                    if target is None or mode is WriteMode.replace:
                        staged = sa.Table(stage, sa.MetaData(), *columns, schema=schema)
                        run(f"DROP TABLE IF EXISTS {q(schema)}.{q(stage)}")  # this export's, if run before
                        run(str(sa.schema.CreateTable(staged).compile(dialect=dialect)))
                        ingest(temporary=False)
                        staged_name = f"{q(schema)}.{q(stage)}"
                        for p in plans:
                            run(f"ALTER TABLE {staged_name} RENAME COLUMN {pos[p.name]} TO {q(p.name)}")
                        if target is not None:
                            run(f"DROP TABLE {qualified}")
                        run(f"ALTER TABLE {q(schema)}.{q(stage)} RENAME TO {q(table)}")
                    else:
                        staged = sa.Table(
                            stage,
                            sa.MetaData(),
                            *columns,
                            prefixes=["TEMPORARY"],
                            postgresql_on_commit="DROP",
                        )
                        run(str(sa.schema.CreateTable(staged).compile(dialect=dialect)))
                        ingest(temporary=True)
                        if mode is WriteMode.upsert:
                            on = " AND ".join(f"t.{q(matched[k].name)} = s.{pos[k]}" for k in keys)
                            run(f"DELETE FROM {qualified} AS t USING {q(stage)} AS s WHERE {on}")
                        names = ", ".join(q(matched[p.name].name) for p in plans)
                        values = ", ".join(
                            f"CAST(s.{pos[p.name]} AS {target_types[matched[p.name].name]})"
                            if matched[p.name].name in target_types
                            else f"s.{pos[p.name]}"
                            for p in plans
                        )
                        run(f"INSERT INTO {qualified} ({names}) SELECT {values} FROM {q(stage)} AS s")
                    handles[1].commit()
                except BaseException:
                    with contextlib.suppress(Exception):
                        handles[1].rollback()
                    raise
        finally:
            for handle in reversed(handles):
                with contextlib.suppress(Exception):
                    handle.close()
        return WriteResult(tap.rows, f"{database}.{schema}.{table}")

    @contextlib.contextmanager
    def _adbc_write_errors(self, tap: StreamTap) -> Iterator[None]:
        """Turn ADBC errors of a PostgreSQL write into redacted driver errors."""
        import adbc_driver_manager

        try:
            yield
        except DriverError:
            raise
        except BaseException as exc:
            if tap.error is not None:
                raise tap.error from None  # the stream failed: its own error says why
            if not isinstance(exc, (adbc_driver_manager.Error, pa.ArrowException, OSError)):
                raise
            text = str(exc)
            state = getattr(exc, "sqlstate", None) or ""
            found = re.search(r"SQLSTATE: (\w{5})", text)
            state = state or (found.group(1) if found else "")
            if "password authentication failed" in text or state.startswith("28"):
                cls: type[DriverError] = AuthenticationFailed
            elif "Failed to connect" in text or state.startswith("08") or "terminat" in text:
                cls = ConnectionFailed
            else:
                cls = WriteFailed
            server_line = re.search(r"ERROR:\s+(.+)", text)
            message = (
                server_line.group(1).strip()
                if server_line
                else re.sub(r"^[A-Z_]+: (\[libpq\] )?", "", text.strip())
            )
            raise cls(self.redact(message)) from None

    # -- MySQL ---------------------------------------------------------------------------------------------
    def _mysql_connect(self, database: str | None) -> Any:
        import pymysql

        from .mysql_load import GuardedConnection

        cfg = self.config
        with self._write_errors():
            try:
                return GuardedConnection(
                    host=self.host_address(),  # the address the network guard checked
                    port=cfg.port or 3306,
                    user=cfg.username or "",
                    password=cfg.secrets.get("password") or "",
                    database=database or cfg.database or None,
                    charset="utf8mb4",
                    connect_timeout=self.connect_timeout,
                    # A statement may take long (a big INSERT ... SELECT, a COMMIT); a server that reads
                    # none of the rows sent for a minute has stopped (a killed connection may stay open).
                    read_timeout=max(600, 3 * self.connect_timeout),
                    write_timeout=max(60, 6 * self.connect_timeout),
                    local_infile=True,
                    autocommit=False,
                    init_command=f"SET time_zone = '+00:00', SESSION sql_mode = '{MYSQL_SQL_MODE}'",
                )
            except pymysql.Error as exc:
                raise self._mysql_error(exc) from None

    def _mysql_error(self, exc: Exception) -> DriverError:
        errno = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
        if errno in (1044, 1045, 1698):
            return AuthenticationFailed(self.redact(text))
        if errno in (2002, 2003, 2005, 2006, 2013):
            return ConnectionFailed(self.redact(text))
        if errno == 1049:
            return SourceNotFound(self.redact(text))
        return WriteFailed(self.redact(text))

    def _write_mysql(
        self,
        dest: DestinationSpec,
        reader: pa.RecordBatchReader,
        mode: WriteMode,
        key: Sequence[str] | None,
        job_id: str | None,
    ) -> WriteResult:
        import pymysql

        database = dest.database or self.config.database
        table = dest.table or ""
        with self._connect(database) as conn, self._write_errors():
            target = self._reflect(conn, table, None)
            plans, keys, matched = self._plan(reader, mode, key, target)
        dialect = sa_dialect("mysql")
        q = dialect.identifier_preparer.quote_identifier
        columns = [sa.Column(p.name, p.sql) for p in plans]
        wire = pa.schema([pa.field(p.name, p.wire) for p in plans])
        tap = StreamTap()
        con = self._mysql_connect(database)
        stage = staging_name("previsio_stage", job_id)
        staged_permanent = False
        try:
            with self._write_errors(tap):
                try:
                    cur = con.cursor()
                    if target is None or mode is WriteMode.replace:
                        staged = sa.Table(
                            stage, sa.MetaData(), *columns, mysql_engine="InnoDB", mysql_charset="utf8mb4"
                        )
                        cur.execute(f"DROP TABLE IF EXISTS {q(stage)}")  # this export's, if it ran before
                        cur.execute(str(sa.schema.CreateTable(staged).compile(dialect=dialect)))
                        staged_permanent = True
                        self._mysql_load(con, stage, [p.name for p in plans], wire, reader, tap)
                        con.commit()
                        if target is not None:
                            old = staging_name("previsio_old", job_id)
                            cur.execute(f"RENAME TABLE {q(table)} TO {q(old)}, {q(stage)} TO {q(table)}")
                            staged_permanent = False
                            with contextlib.suppress(pymysql.Error):
                                cur.execute(f"DROP TABLE {q(old)}")
                        else:
                            cur.execute(f"RENAME TABLE {q(stage)} TO {q(table)}")
                            staged_permanent = False
                    elif mode is WriteMode.append:
                        names = [matched[p.name].name for p in plans]
                        self._mysql_load(con, table, names, wire, reader, tap)
                        con.commit()
                    else:
                        staged = sa.Table(
                            stage,
                            sa.MetaData(),
                            *columns,
                            sa.Index(f"{stage}_key", *keys),
                            prefixes=["TEMPORARY"],
                            mysql_engine="InnoDB",
                            mysql_charset="utf8mb4",
                        )
                        cur.execute(str(sa.schema.CreateTable(staged).compile(dialect=dialect)))
                        for index in staged.indexes:
                            cur.execute(str(sa.schema.CreateIndex(index).compile(dialect=dialect)))
                        self._mysql_load(con, stage, [p.name for p in plans], wire, reader, tap)
                        on = " AND ".join(f"t.{q(matched[k].name)} = s.{q(k)}" for k in keys)
                        cur.execute(f"DELETE t FROM {q(table)} AS t INNER JOIN {q(stage)} AS s ON {on}")
                        names = ", ".join(q(matched[p.name].name) for p in plans)
                        values = ", ".join(f"s.{q(p.name)}" for p in plans)
                        cur.execute(f"INSERT INTO {q(table)} ({names}) SELECT {values} FROM {q(stage)} AS s")
                        con.commit()
                except pymysql.Error as exc:
                    raise self._mysql_error(exc) from None
                except (OSError, AttributeError) as exc:
                    if con.open and not isinstance(exc, OSError):
                        raise  # a bug, not a lost connection
                    # pymysql drops its socket when the connection breaks ('NoneType' has no 'sendall').
                    why = f": {exc}" if isinstance(exc, OSError) and str(exc) else "."
                    raise ConnectionFailed(
                        self.redact(f"The connection to the database was lost during the export{why}")
                    ) from None
        except BaseException:
            with contextlib.suppress(Exception):
                con.rollback()
            if staged_permanent:
                with contextlib.suppress(Exception):
                    con.cursor().execute(f"DROP TABLE IF EXISTS {q(stage)}")
            raise
        finally:
            with contextlib.suppress(Exception):
                con.close()
        return WriteResult(tap.rows, f"{database}.{table}")

    def _mysql_load(
        self,
        con: Any,
        table: str,
        names: list[str],
        wire: pa.Schema,
        reader: pa.RecordBatchReader,
        tap: StreamTap,
    ) -> None:
        """Send the stream into ``table``: LOAD DATA LOCAL INFILE of CSV chunks, or multi-row INSERTs."""
        stream = cast_stream(reader, wire, tap)
        q = sa_dialect("mysql").identifier_preparer.quote_identifier
        targets, sets = [], []
        for i, (name, field) in enumerate(zip(names, wire, strict=True)):
            if pa.types.is_binary(field.type):
                targets.append(f"@previsio_v{i}")
                sets.append(f"{q(name)} = UNHEX(@previsio_v{i})")
            else:
                targets.append(q(name))
        statement_tail = (
            f"INTO TABLE {q(table)} CHARACTER SET utf8mb4 "
            "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '\\\\' "
            f"LINES TERMINATED BY '\\n' ({', '.join(targets)})" + (f" SET {', '.join(sets)}" if sets else "")
        )
        cur = con.cursor()
        if not (self.mysql_load_data and _local_infile_allowed(cur)):
            self._mysql_insert(con, table, names, stream)
            return
        # The file name is not read: the connection answers the server's request with the chunk itself.
        statement = f"LOAD DATA LOCAL INFILE 'previsio-export.csv' {statement_tail}"
        # The next chunk is encoded (Arrow, releasing the GIL) while the server loads this one.
        for chunk in read_ahead(_csv_chunks(stream, LOAD_DATA_CHUNK_BYTES), name="previsio-export-encode"):
            con.load_data_local(cur, statement, chunk)
            _raise_warnings(con, cur)

    def _mysql_insert(self, con: Any, table: str, names: list[str], stream: pa.RecordBatchReader) -> None:
        """Multi-row INSERTs (pymysql folds ``executemany`` into ``INSERT ... VALUES (...), (...)``)."""
        q = sa_dialect("mysql").identifier_preparer.quote_identifier
        # pymysql formats the statement with %: a % in a quoted name must be doubled.
        cols = ", ".join(q(n).replace("%", "%%") for n in names)
        marks = ", ".join("%s" for _ in names)
        sql = f"INSERT INTO {q(table).replace('%', '%%')} ({cols}) VALUES ({marks})"
        cur = con.cursor()
        for batch in stream:
            for rows in _python_rows(batch, "mysql"):
                cur.executemany(sql, rows)
                _raise_warnings(con, cur)

    # -- SQLite --------------------------------------------------------------------------------------------
    def _write_sqlite(
        self, dest: DestinationSpec, reader: pa.RecordBatchReader, mode: WriteMode, key: Sequence[str] | None
    ) -> WriteResult:
        path = self.config.database or ""
        table = dest.table or ""
        with self._connect() as conn, self._write_errors():
            target = self._reflect(conn, table, None)
            plans, keys, matched = self._plan(reader, mode, key, target)
        dialect = sa_dialect("sqlite")
        q = dialect.identifier_preparer.quote_identifier
        columns = [sa.Column(p.name, p.sql) for p in plans]
        wire = pa.schema([pa.field(p.name, p.wire) for p in plans])
        tap = StreamTap()
        stream = cast_stream(reader, wire, tap)
        with self._write_errors(tap):
            real = self._check_sqlite_file()
            if not Path(real).is_file():
                raise SourceNotFound(f"The SQLite database {path!r} does not exist.")
            con = connect_sqlite(real, read_only=False, timeout=self.connect_timeout, isolation_level=None)
            stage_name = staging_name("previsio_stage", None)
            stage = f"temp.{q(stage_name)}"
            upsert = target is not None and mode is WriteMode.upsert
            try:
                con.execute("BEGIN IMMEDIATE")
                if target is None or mode is WriteMode.replace:
                    if target is not None:
                        con.execute(f"DROP TABLE {q(table)}")
                    created = sa.Table(table, sa.MetaData(), *columns)
                    con.execute(str(sa.schema.CreateTable(created).compile(dialect=dialect)))
                    into, names = q(table), [p.name for p in plans]
                elif upsert:
                    staged = sa.Table(stage_name, sa.MetaData(), *columns, prefixes=["TEMPORARY"])
                    con.execute(str(sa.schema.CreateTable(staged).compile(dialect=dialect)))
                    into, names = stage, [p.name for p in plans]
                else:
                    into, names = q(table), [matched[p.name].name for p in plans]
                marks = ", ".join("?" for _ in names)
                sql = f"INSERT INTO {into} ({', '.join(q(n) for n in names)}) VALUES ({marks})"
                for batch in stream:
                    for rows in _python_rows(batch, "sqlite"):
                        con.executemany(sql, rows)
                if upsert:
                    on = " AND ".join(f"s.{q(k)} = {q(table)}.{q(matched[k].name)}" for k in keys)
                    con.execute(
                        f"DELETE FROM {q(table)} WHERE EXISTS (SELECT 1 FROM {stage} AS s WHERE {on})"
                    )
                    cols = ", ".join(q(matched[p.name].name) for p in plans)
                    values = ", ".join(f"s.{q(p.name)}" for p in plans)
                    con.execute(f"INSERT INTO {q(table)} ({cols}) SELECT {values} FROM {stage} AS s")
                    con.execute(f"DROP TABLE {stage}")
                con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    con.execute("ROLLBACK")
                raise
            finally:
                con.close()
        return WriteResult(tap.rows, table)


# ------------------------------------------------------------------------------------------------------------
# Encoding rows
# ------------------------------------------------------------------------------------------------------------
_CSV_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\x00", "\\0"))


def _mysql_field(arr: pa.Array) -> pa.Array:
    """One column as the fields of a MySQL ``LOAD DATA`` line: quoted, escaped, ``\\N`` for NULL."""
    t = arr.type
    if pa.types.is_string(t):
        text = arr
        for old, new in _CSV_ESCAPES:
            text = pc.replace_substring(text, old, new)
        text = pc.binary_join_element_wise('"', text, '"', "")
    elif pa.types.is_boolean(t):
        text = pc.if_else(arr, "1", "0")
    elif pa.types.is_timestamp(t):
        text = arr.cast(pa.timestamp("us")).cast(pa.string())  # a zoned instant is written in UTC
    elif pa.types.is_duration(t):
        text = _duration_to_time(arr)
    elif pa.types.is_binary(t):
        text = pa.array([None if v is None else v.hex() for v in arr.to_pylist()], pa.string())
    else:
        text = arr.cast(pa.string())
    return pc.fill_null(text, "\\N")


def _duration_to_time(arr: pa.Array) -> pa.Array:
    """Microsecond durations as MySQL TIME literals (``-838:59:59.000000`` to ``838:59:59.000000``)."""
    us = arr.cast(pa.int64())
    sign = pc.if_else(pc.less(us, 0), "-", "")
    mag = pc.abs(us)

    def part(divisor: int, modulo: int | None, width: int) -> pa.Array:
        value = pc.divide(mag, divisor)
        if modulo is not None:
            value = pc.subtract(value, pc.multiply(pc.divide(value, modulo), modulo))
        return pc.utf8_lpad(value.cast(pa.string()), width, "0")

    return pc.binary_join_element_wise(
        sign,
        part(3_600_000_000, None, 2),
        ":",
        part(60_000_000, 60, 2),
        ":",
        part(1_000_000, 60, 2),
        ".",
        part(1, 1_000_000, 6),
        "",
    )


def _string_bytes(arr: pa.Array) -> bytes:
    """The values of a string array without NULLs, end to end: its data buffer between its first and last
    offsets (no Python string is made)."""
    offsets = memoryview(arr.buffers()[1]).cast("i")  # int32, in the machine's order like Arrow's
    start, end = offsets[arr.offset], offsets[arr.offset + len(arr)]
    data = arr.buffers()[2]
    return bytes(memoryview(data)[start:end]) if data is not None and end > start else b""


def _csv_chunks(stream: pa.RecordBatchReader, chunk_bytes: int) -> Iterator[bytes]:
    """The stream as MySQL CSV text, in chunks of about ``chunk_bytes`` (whole lines)."""
    pending: list[bytes] = []
    size = 0
    for batch in stream:
        fields = [_mysql_field(col) for col in batch.columns]
        lines = pc.binary_join_element_wise(*fields, ",") if len(fields) > 1 else fields[0]
        lines = pc.binary_join_element_wise(lines, "\n", "")
        text = _string_bytes(lines)
        pending.append(text)
        size += len(text)
        if size >= chunk_bytes:
            yield b"".join(pending)
            pending, size = [], 0
    if pending and size:
        yield b"".join(pending)


def _python_rows(batch: pa.RecordBatch, dialect: str) -> Iterator[list[tuple[Any, ...]]]:
    """Rows of ``batch`` as DB-API parameters, :data:`INSERT_BATCH_ROWS` at a time."""
    for start in range(0, batch.num_rows, INSERT_BATCH_ROWS):
        part = batch.slice(start, INSERT_BATCH_ROWS)
        columns = [_python_values(col, dialect) for col in part.columns]
        yield list(zip(*columns, strict=True))


def _python_values(arr: pa.Array, dialect: str) -> list[Any]:
    t = arr.type
    if pa.types.is_timestamp(t):
        arr = arr.cast(pa.timestamp("us"))  # UTC wall-clock time for a zoned instant
        if dialect == "sqlite":  # the text SQLAlchemy's SQLite DATETIME reads back
            return arr.cast(pa.string()).to_pylist()
    elif dialect == "sqlite" and (pa.types.is_date(t) or pa.types.is_time(t) or pa.types.is_decimal(t)):
        return arr.cast(pa.string()).to_pylist()
    elif dialect == "mysql" and pa.types.is_duration(t):
        return _duration_to_time(arr).to_pylist()
    return arr.to_pylist()


def _raise_warnings(con: Any, cur: Any) -> None:
    """Fail on any warning: LOAD DATA LOCAL turns bad values into warnings, even in strict mode."""
    count = getattr(getattr(cur, "_result", None), "warning_count", 0) or 0
    if not count:
        return
    shown = con.show_warnings() or ()
    messages = [str(w[2]) for w in shown[:3]]
    raise WriteFailed(
        "The database refused values: " + ("; ".join(messages) or f"{count} warnings") + ".",
        {"warnings": messages},
    )


def _local_infile_allowed(cur: Any) -> bool:
    """Whether the server accepts LOAD DATA LOCAL INFILE (``local_infile`` is on)."""
    cur.execute("SELECT @@local_infile")
    row = cur.fetchone()
    return bool(row) and str(row[0]).upper() in ("1", "ON")


def libpq_conninfo(
    config: Any,
    database: str | None,
    *,
    connect_timeout: int,
    options: str,
    app: str,
    hostaddr: str | None = None,
) -> str:
    """A libpq ``key='value'`` connection string (not a URL: nothing is percent-encoded).

    Every value is single-quoted with backslashes and quotes escaped, as libpq reads them, so a password
    holding spaces, ``+``, ``%``, ``@``, ``/``, quotes or backslashes reaches the server as it is. With
    ``hostaddr`` (the address the network guard checked), libpq connects there and keeps ``host`` for TLS.
    """
    params = {
        "host": config.host,
        "hostaddr": hostaddr or None,
        "port": config.port or 5432,
        "user": config.username or None,
        "password": config.secrets.get("password") or None,
        "dbname": database or config.database or None,
        "connect_timeout": connect_timeout,
        "options": options,
        "application_name": app,
    }
    return " ".join(f"{k}={_conninfo_value(str(v))}" for k, v in params.items() if v is not None)


def _conninfo_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def staging_name(prefix: str, job_id: str | None) -> str:
    """A write's staging table name: ``<prefix>_<16 hex digits of the export id>`` (random without one).

    Derived from the export's id, so that the tables of an interrupted export can be found and dropped
    (:meth:`TableWriterMixin.discard_staging`) and a second run of the same export reuses, not adds, one.
    """
    if job_id is None:
        return f"{prefix}_{uuid.uuid4().hex[:16]}"
    digits = re.sub(r"[^0-9a-f]", "", job_id.lower())
    if len(digits) < 16:
        digits = hashlib.sha256(job_id.encode()).hexdigest()
    return f"{prefix}_{digits[:16]}"


def _identifier_size(name: str, dialect: str) -> int:
    """The size a database limits: bytes for PostgreSQL, characters for the others."""
    return len(name.encode()) if dialect == "postgresql" else len(name)


def _first_server_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text
