"""SQL databases: PostgreSQL, MySQL/MariaDB and SQLite, through SQLAlchemy.

Rows are read with a server-side cursor and turned into Arrow record batches of ``batch_rows`` rows, so memory
does not grow with the table. Column types come from the database: the cursor description for PostgreSQL and
MySQL, the declared column types for SQLite tables; only a column the database cannot type (an SQLite
expression, a MySQL text-or-binary column) is inferred from its first batch.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import ROUND_HALF_EVEN, Context, Decimal
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, urlparse

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError, NoSuchTableError, SQLAlchemyError

from ..errors import Invalid
from .base import (
    AuthenticationFailed,
    ConnectionFailed,
    ConnectorConfig,
    Driver,
    DriverError,
    InvalidSource,
    QueryTimeout,
    ReadFailed,
    SourceNotFound,
    SourceSpec,
    TestOutcome,
    register,
)
from .sql_detect import detect_dialect
from .sql_write import TableWriterMixin, libpq_conninfo
from .sqlite_files import connect_sqlite

Converter = Callable[[Any], Any]


# The statement check imports sqlglot (0.4 s, 16 MB) when a request is first checked, not at start-up.
def check_request(sql: str, dialect: str) -> Any:
    """See :func:`previsio_sdk.server.drivers.sql_guard.check_request`."""
    from .sql_guard import check_request as check

    return check(sql, dialect)


def wrapped_query(query: Any, dialect: str, alias: str, *, no_rows: bool) -> str:
    """See :func:`previsio_sdk.server.drivers.sql_guard.wrapped_query`."""
    from .sql_guard import wrapped_query as wrap

    return wrap(query, dialect, alias, no_rows=no_rows)


# ------------------------------------------------------------------------------------------------------------
# Dialects
# ------------------------------------------------------------------------------------------------------------
class Dialect:
    """What differs between SQL databases: URLs, catalog queries, types and error codes."""

    name: ClassVar[str]
    default_port: ClassVar[int | None] = None
    sqlalchemy_driver: ClassVar[str]
    has_schemas: ClassVar[bool] = False

    def url(self, config: ConnectorConfig, database: str | None) -> URL:
        """SQLAlchemy URL for ``database`` (the connector's default when None)."""
        return URL.create(
            self.sqlalchemy_driver,
            username=config.username or None,
            password=config.secrets.get("password") or None,
            host=config.host,
            port=config.port or self.default_port,
            database=database or config.database or None,
        )

    def connect_args(self, timeout: int) -> dict[str, Any]:
        """DBAPI connect arguments (timeouts)."""
        return {}

    def pin_address(self, url: URL, args: dict[str, Any], address: str | None) -> tuple[URL, dict[str, Any]]:
        """Make the connection go to ``address`` (the one the network guard checked), not to the host name."""
        return (url.set(host=address), args) if address else (url, args)

    def list_databases(self, conn: Connection) -> list[str]:
        """Names of the databases visible on this server."""
        raise NotImplementedError

    def begin_read_only(self, conn: Connection) -> Connection:
        """Make the coming statements run in a read-only transaction where the dialect allows."""
        return conn

    def limit_statements(self, dbapi_conn: Any, seconds: int) -> str | None:
        """Bound the run time of each statement of a new DB-API connection; return the SQL used, if any."""
        return None

    def arrow_types(self, cursor: Any) -> list[tuple[pa.DataType | None, Converter | None]]:
        """Arrow type (None: infer) and value converter for each column of a DB-API cursor."""
        return [(None, None) for _ in cursor.description]

    def estimate_rows(self, conn: Connection, schema: str | None, table: str) -> int | None:
        """The table's row count from the catalog statistics (None when the catalog has none)."""
        return None

    def classify(self, exc: DBAPIError) -> type[DriverError]:
        """Map a DB-API error to the driver error class a caller should see."""
        return ReadFailed


def _to_str(value: Any) -> Any:
    return None if value is None else str(value)


def _to_json(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, default=str)


class PostgresDialect(Dialect):
    name = "postgresql"
    default_port = 5432
    sqlalchemy_driver = "postgresql+psycopg"
    has_schemas = True

    _OIDS: ClassVar[dict[int, tuple[pa.DataType | None, Converter | None]]] = {
        16: (pa.bool_(), None),
        17: (pa.binary(), lambda v: None if v is None else bytes(v)),
        18: (pa.string(), None),
        19: (pa.string(), None),
        20: (pa.int64(), None),
        21: (pa.int16(), None),
        23: (pa.int32(), None),
        25: (pa.string(), None),
        26: (pa.int64(), None),
        114: (pa.string(), _to_json),
        142: (pa.string(), None),
        700: (pa.float32(), None),
        701: (pa.float64(), None),
        790: (pa.decimal128(38, 2), None),
        1042: (pa.string(), None),
        1043: (pa.string(), None),
        1082: (pa.date32(), None),
        1083: (pa.time64("us"), None),
        1114: (pa.timestamp("us"), None),
        1184: (pa.timestamp("us", tz="UTC"), None),
        1186: (pa.duration("us"), None),
        1266: (pa.string(), _to_str),
        2950: (pa.string(), _to_str),
        3802: (pa.string(), _to_json),
    }

    #: Every session reads in UTC and cannot write: a datasource never changes the database it reads.
    LIBPQ_OPTIONS = "-c TimeZone=UTC -c default_transaction_read_only=on"

    def connect_args(self, timeout: int, query_timeout: int = 0) -> dict[str, Any]:
        return {"connect_timeout": timeout, "options": self.libpq_options(query_timeout)}

    def pin_address(self, url: URL, args: dict[str, Any], address: str | None) -> tuple[URL, dict[str, Any]]:
        # libpq connects to hostaddr and keeps host for TLS verification and the password file.
        return (url, {**args, "hostaddr": address}) if address else (url, args)

    def libpq_options(self, query_timeout: int = 0) -> str:
        """The session options: :attr:`LIBPQ_OPTIONS`, and a statement timeout when ``query_timeout``."""
        if query_timeout > 0:
            return f"{self.LIBPQ_OPTIONS} -c statement_timeout={int(query_timeout) * 1000}"
        return self.LIBPQ_OPTIONS

    def adbc_uri(
        self,
        config: ConnectorConfig,
        database: str | None,
        timeout: int,
        query_timeout: int = 0,
        address: str | None = None,
    ) -> str:
        """libpq connection string for the ADBC driver: ``key='value'`` pairs, no URL encoding."""
        return libpq_conninfo(
            config,
            database,
            connect_timeout=timeout,
            options=self.libpq_options(query_timeout),
            app="previsio",
            hostaddr=address,
        )

    def list_databases(self, conn: Connection) -> list[str]:
        rows = conn.execute(
            sa.text(
                "SELECT datname FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY datname"
            )
        )
        return [r[0] for r in rows]

    def begin_read_only(self, conn: Connection) -> Connection:
        return conn.execution_options(postgresql_readonly=True)

    def arrow_types(self, cursor: Any) -> list[tuple[pa.DataType | None, Converter | None]]:
        out: list[tuple[pa.DataType | None, Converter | None]] = []
        for col in cursor.description:
            if col.type_code == 1700:
                out.append((_decimal_type(col.precision, col.scale), None))
            else:
                out.append(self._OIDS.get(col.type_code, (None, None)))
        return out

    def estimate_rows(self, conn: Connection, schema: str | None, table: str) -> int | None:
        name = f'"{schema}"."{table}"' if schema else f'"{table}"'
        value = conn.execute(
            sa.text("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(:name)"), {"name": name}
        ).scalar()
        return int(value) if value is not None and value >= 0 else None  # -1: never analyzed

    def classify(self, exc: DBAPIError) -> type[DriverError]:
        state = getattr(exc.orig, "sqlstate", None) or ""
        text = str(exc.orig)
        if state in ("28P01", "28000") or "password authentication failed" in text or _unknown_role(text):
            return AuthenticationFailed
        if state == "57014" and "statement timeout" in text:
            return QueryTimeout
        if state in ("42P01", "3D000", "3F000") or (not state and "does not exist" in text):
            return SourceNotFound  # a missing column or function (42703, 42883) is a bad query: InvalidSource
        if state.startswith("42") or state in ("25006", "0A000"):
            return InvalidSource
        if state.startswith("08") or isinstance(exc, sa.exc.OperationalError) and not state:
            return ConnectionFailed
        return ReadFailed


def _unknown_role(text: str) -> bool:
    """Whether PostgreSQL refused a login for an unknown user (``role "x" does not exist``, often without a
    SQLSTATE at connection time): the credentials' fault, ``authentication_failed``, not a missing table."""
    return re.search(r'role "[^"]*" does not exist', text) is not None


def _adbc_available() -> bool:
    try:
        import adbc_driver_postgresql.dbapi  # noqa: F401
    except ImportError:
        return False
    return True


#: Bytes of COPY data per Arrow batch on the PostgreSQL fast path: small enough to keep a snapshot's memory
#: flat, large enough to keep per-batch overhead negligible (measured: 16 MB batches cost 75 MB more peak
#: RSS).
ADBC_BATCH_BYTES = 4 * 1024 * 1024


def _connectorx_available() -> bool:
    try:
        import connectorx  # noqa: F401
    except ImportError:
        return False
    return True


def _pg_typmod_decimal(field: pa.Field) -> pa.DataType:
    meta = field.metadata or {}
    try:
        typmod = int(meta.get(b"POSTGRESQL:typmod", b"-1"))
    except ValueError:
        typmod = -1
    if typmod < 4:
        return _decimal_type(None, None)
    return _decimal_type(((typmod - 4) >> 16) & 0xFFFF, (typmod - 4) & 0xFFFF)


def _interval_to_us(value: Any) -> int | None:
    if value is None:
        return None
    months, days, nanos = value
    # Months count as 30 days, as PostgreSQL's own EXTRACT(EPOCH FROM interval) does.
    return ((months * 30 + days) * 86_400_000_000) + nanos // 1000


ArrayConverter = Callable[[pa.Array], pa.Array]


def _adbc_field_plan(field: pa.Field) -> tuple[pa.Field, ArrayConverter | None]:
    """Target field and converter turning an ADBC PostgreSQL column into the types snapshots promise."""
    import pyarrow.compute as pc

    typ = field.type
    if isinstance(typ, pa.ExtensionType) or isinstance(typ, pa.BaseExtensionType):
        name = getattr(typ, "extension_name", "")
        type_name = getattr(typ, "type_name", "")
        if name == "arrow.opaque" and type_name == "numeric":
            target = _pg_typmod_decimal(field)

            def to_decimal(arr: pa.Array, target: pa.DataType = target) -> pa.Array:
                storage = arr.storage
                try:
                    # Strict: a value that does not fit exactly takes the rounding path below, which fails on
                    # overflow; allow_decimal_truncate would silently wrap a value of too many digits around.
                    return pc.cast(storage, target)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    return _column_array(
                        [None if v is None else Decimal(v) for v in storage.to_pylist()], target, None
                    )

            return pa.field(field.name, target), to_decimal
        if name == "arrow.uuid":
            return pa.field(field.name, pa.string()), lambda a: pa.array(
                [None if v is None else str(v) for v in a.to_pylist()], pa.string()
            )
        storage_type = typ.storage_type
        if pa.types.is_string(storage_type) or pa.types.is_large_string(storage_type):
            return pa.field(field.name, pa.string()), lambda a: a.storage.cast(pa.string())
        return pa.field(field.name, storage_type), lambda a: a.storage
    if pa.types.is_interval(typ):
        return pa.field(field.name, pa.duration("us")), lambda a: pa.array(
            [_interval_to_us(v) for v in a.to_pylist()], pa.duration("us")
        )
    return pa.field(field.name, typ), None


class MySQLDialect(Dialect):
    name = "mysql"
    default_port = 3306
    sqlalchemy_driver = "mysql+pymysql"

    def url(self, config: ConnectorConfig, database: str | None) -> URL:
        return super().url(config, database).update_query_dict({"charset": "utf8mb4"})

    def connect_args(self, timeout: int) -> dict[str, Any]:
        # TIMESTAMP values come in the session's time zone: UTC makes them instants, whatever the server's.
        # pymysql's connect_timeout covers the TCP connect only; a server that accepts and stays silent (not a
        # MySQL server) would hang the handshake, so reads time out too (rows stream well within this).
        return {
            "connect_timeout": timeout,
            "read_timeout": 3 * timeout,
            "init_command": "SET time_zone = '+00:00'",
        }

    def statement_time_sql(self, version: str, seconds: int) -> str:
        """The statement bounding each statement's time: MariaDB and MySQL name the setting differently."""
        if "mariadb" in version.lower():
            return f"SET SESSION max_statement_time = {int(seconds)}"
        return f"SET SESSION max_execution_time = {int(seconds) * 1000}"

    def limit_statements(self, dbapi_conn: Any, seconds: int) -> str | None:
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute("SELECT VERSION()")
            sql = self.statement_time_sql(str(cursor.fetchone()[0]), seconds)
            cursor.execute(sql)
        finally:
            cursor.close()
        return sql

    def list_databases(self, conn: Connection) -> list[str]:
        hidden = {"information_schema", "performance_schema", "mysql", "sys"}
        return sorted(r[0] for r in conn.execute(sa.text("SHOW DATABASES")) if r[0] not in hidden)

    def begin_read_only(self, conn: Connection) -> Connection:
        conn.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")
        return conn

    def arrow_types(self, cursor: Any) -> list[tuple[pa.DataType | None, Converter | None]]:
        try:
            flags = [f.flags for f in cursor._result.fields]
        except AttributeError:  # pragma: no cover - pymysql internals moved
            flags = [0] * len(cursor.description)
        out: list[tuple[pa.DataType | None, Converter | None]] = []
        for (_name, code, _disp, size, _prec, scale, _null), flag in zip(
            cursor.description, flags, strict=True
        ):
            unsigned = bool(flag & 32)
            ints = {
                1: (pa.int8(), pa.uint8()),
                2: (pa.int16(), pa.uint16()),
                3: (pa.int32(), pa.uint32()),
                9: (pa.int32(), pa.uint32()),
                8: (pa.int64(), pa.uint64()),
            }
            if code in ints:
                out.append((ints[code][1 if unsigned else 0], None))
            elif code == 4:
                out.append((pa.float32(), None))
            elif code == 5:
                out.append((pa.float64(), None))
            elif code in (0, 246):  # the length counts the digits, the point and the sign of a signed column
                digits = (size or 0) - (1 if scale else 0) - (0 if unsigned else 1)
                out.append((_decimal_type(max(digits, scale or 0, 1) if size else 38, scale), None))
            elif code == 7:  # TIMESTAMP: an instant, read in UTC (see connect_args)
                out.append((pa.timestamp("us", tz="UTC"), None))
            elif code == 12:  # DATETIME: a wall-clock time without a time zone
                out.append((pa.timestamp("us"), None))
            elif code in (10, 14):
                out.append((pa.date32(), None))
            elif code == 11:
                out.append((pa.duration("us"), None))
            elif code == 13:
                out.append((pa.int16(), None))
            elif code in (16, 255):
                out.append((pa.binary(), None))
            elif code in (245, 247, 248):
                out.append((pa.string(), _to_str))
            elif code == 6:
                out.append((pa.string(), None))
            else:  # text or binary strings: pymysql decides by charset, so look at the values
                out.append((None, None))
        return out

    def estimate_rows(self, conn: Connection, schema: str | None, table: str) -> int | None:
        value = conn.execute(
            sa.text(
                "SELECT table_rows FROM information_schema.tables "
                "WHERE table_schema = COALESCE(:schema, DATABASE()) AND table_name = :table"
            ),
            {"schema": schema, "table": table},
        ).scalar()
        return int(value) if value is not None else None

    def classify(self, exc: DBAPIError) -> type[DriverError]:
        errno = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
        if errno in (1969, 3024):  # MariaDB max_statement_time, MySQL max_execution_time
            return QueryTimeout
        if errno in (1044, 1045, 1698):
            return AuthenticationFailed
        if errno in (1049, 1146, 1051):
            return SourceNotFound
        if errno in (1064, 1054, 1792, 1142, 1227, 1102, 1103):  # 1102/1103: a name MySQL does not allow
            return InvalidSource
        if errno in (2002, 2003, 2005, 2006, 2013):
            return ConnectionFailed
        return ReadFailed


class SQLiteDialect(Dialect):
    name = "sqlite"
    sqlalchemy_driver = "sqlite"

    # Connections are made by sqlite_files.connect_sqlite on the checked, resolved path (SQLDriver._engine).

    def list_databases(self, conn: Connection) -> list[str]:
        return [r[1] for r in conn.exec_driver_sql("PRAGMA database_list")]

    def estimate_rows(self, conn: Connection, schema: str | None, table: str) -> int | None:
        # The largest rowid: read from the end of the table's b-tree, no scan (rows deleted make it high).
        value = conn.execute(
            sa.text(f'SELECT max(rowid) FROM "{table.replace(chr(34), chr(34) * 2)}"')
        ).scalar()
        return int(value) if value is not None else None

    def classify(self, exc: DBAPIError) -> type[DriverError]:
        text = str(exc.orig)
        if text == "interrupted":  # by the progress handler bounding statements (SQLDriver._engine)
            return QueryTimeout
        if "no such table" in text:
            return SourceNotFound
        if "unable to open database" in text:
            return SourceNotFound
        if any(k in text for k in ("readonly", "syntax error", "no such column", "incomplete input")):
            return InvalidSource
        return ReadFailed


DIALECTS: dict[str, Dialect] = {d.name: d for d in (PostgresDialect(), MySQLDialect(), SQLiteDialect())}
_PORT_TO_DIALECT = {5432: "postgresql", 3306: "mysql"}


def _decimal_type(precision: int | None, scale: int | None) -> pa.DataType:
    if not precision:  # unconstrained NUMERIC: wide precision, 10 decimals
        return pa.decimal128(38, 10)
    scale = scale or 0
    if precision <= 38:
        return pa.decimal128(precision, scale)
    return pa.decimal256(min(precision, 76), scale)


def _sa_type_to_arrow(t: sa.types.TypeEngine[Any]) -> pa.DataType | None:
    """Arrow type of a reflected SQLAlchemy column type (used for SQLite tables)."""
    if isinstance(t, sa.Boolean):
        return pa.bool_()
    if isinstance(t, sa.BigInteger):
        return pa.int64()
    if isinstance(t, sa.SmallInteger):
        return pa.int16()
    if isinstance(t, sa.Integer):
        return pa.int64()
    if isinstance(t, sa.Float):
        return pa.float64()
    if isinstance(t, sa.Numeric):
        return _decimal_type(t.precision, t.scale)
    if isinstance(t, sa.DateTime):
        return pa.timestamp("us", tz="UTC") if t.timezone else pa.timestamp("us")
    if isinstance(t, sa.Date):
        return pa.date32()
    if isinstance(t, sa.Time):
        return pa.time64("us")
    if isinstance(t, sa.LargeBinary):
        return pa.binary()
    if isinstance(t, sa.String):
        return pa.string()
    return None


# ------------------------------------------------------------------------------------------------------------
# Rows to Arrow
# ------------------------------------------------------------------------------------------------------------
def _column_array(values: Sequence[Any], typ: pa.DataType | None, convert: Converter | None) -> pa.Array:
    if convert is not None:
        values = [convert(v) for v in values]
    if typ is None:
        arr = pa.array(values, from_pandas=False)
        return arr.cast(pa.string()) if pa.types.is_null(arr.type) else arr
    try:
        return pa.array(values, type=typ)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        if pa.types.is_decimal(typ):  # more decimals than the declared scale: round, do not fail
            quantum = Decimal(1).scaleb(-typ.scale)
            wide = Context(prec=200)  # the default context refuses to quantize past 28 digits
            try:
                rounded = [
                    None if v is None else Decimal(v).quantize(quantum, ROUND_HALF_EVEN, wide) for v in values
                ]
            except ArithmeticError:  # Infinity
                raise pa.ArrowInvalid(f"A value of the column cannot be stored as {typ}.") from None
            return pa.array(rounded, type=typ)  # too many digits: ArrowInvalid, never a wrapped-around value
        if pa.types.is_string(typ):
            return pa.array([_to_str(v) for v in values], type=typ)
        raise


def rows_to_batch(
    rows: Sequence[Sequence[Any]],
    names: list[str],
    types: list[tuple[pa.DataType | None, Converter | None]],
    schema: pa.Schema | None,
) -> pa.RecordBatch:
    """Build a record batch from DB-API rows; with ``schema``, columns are made to match it."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    arrays = []
    for i, values in enumerate(columns):
        typ, convert = types[i]
        if schema is not None:
            typ = schema.field(i).type
        arrays.append(_column_array(values, typ, convert))
    if schema is not None:
        return pa.RecordBatch.from_arrays(arrays, schema=schema)
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _unique_names(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        name = name or "column"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 0
        out.append(name)
    return out


# ------------------------------------------------------------------------------------------------------------
# The driver
# ------------------------------------------------------------------------------------------------------------
#: Whether the connector's role is privileged (see :meth:`SQLDriver._check_request_role`); one row, one value.
PRIVILEGED_ROLE_SQL = {
    "postgresql": (
        "SELECT rolsuper OR pg_has_role(current_user, 'pg_read_server_files', 'MEMBER') "
        "OR pg_has_role(current_user, 'pg_write_server_files', 'MEMBER') "
        "OR pg_has_role(current_user, 'pg_execute_server_program', 'MEMBER') "
        "FROM pg_roles WHERE rolname = current_user"
    ),
    # USER_PRIVILEGES lists every user's privileges to an administrator: the current user's only.
    "mysql": (
        "SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES "
        "WHERE PRIVILEGE_TYPE IN ('SUPER', 'FILE') AND GRANTEE = CONCAT(\"'\", "
        "SUBSTRING_INDEX(CURRENT_USER(), '@', 1), \"'@'\", SUBSTRING_INDEX(CURRENT_USER(), '@', -1), \"'\")"
    ),
}


class PrivilegedRole(InvalidSource):
    """A request datasource on a role that bypasses permissions or reaches the server's files."""

    code_name = "privileged_role"


def _run(conn: Connection, sql: str) -> Any:
    """Run SQL text as it is, without parameters: a ``%`` in it is doubled for the DB-APIs (psycopg, pymysql)
    that would read it as a placeholder."""
    if conn.dialect.paramstyle in ("format", "pyformat"):
        sql = sql.replace("%", "%%")
    return conn.exec_driver_sql(sql)


def _parse_host(host: str | None, port: int | None) -> tuple[str | None, int | None]:
    """Accept ``db.example.com``, ``db.example.com:5433`` or ``https://db.example.com`` alike."""
    if not host:
        return host, port
    host = host.strip()
    if "@" in host:  # "user:password@db": refused without echoing it, since the host is shown back everywhere
        raise Invalid(
            "The host may not hold credentials (user:password@host): pass username= and password=.",
            {"field": "host"},
        )
    if "://" in host or (":" in host and host.count(":") == 1):
        try:
            parsed = urlparse(host if "://" in host else f"//{host}")  # "http://[x" raises too
        except ValueError:
            raise Invalid(f"The host {host!r} is not a valid host name or URL.", {"field": "host"}) from None
        try:
            url_port = parsed.port
        except ValueError:
            raise Invalid(f"The host {host!r} has an invalid port.", {"field": "host"}) from None
        return parsed.hostname, port or url_port
    return host, port


@register("sql")
class SQLDriver(TableWriterMixin, Driver):
    """SQL databases; ``config.driver`` names the dialect: ``postgresql``, ``mysql`` or ``sqlite``.

    Writing (exports) comes from :class:`~previsio_sdk.server.drivers.sql_write.TableWriterMixin`.
    """

    @property
    def dialect(self) -> Dialect:
        """The dialect of this connector."""
        return DIALECTS[self.config.driver or ""]

    @classmethod
    def normalize_config(cls, config: ConnectorConfig) -> ConnectorConfig:
        driver = (config.driver or "").lower() or None
        if driver in ("postgres", "pg"):
            driver = "postgresql"
        if driver in ("mariadb",):
            driver = "mysql"
        if driver is None:
            driver = _PORT_TO_DIALECT.get(config.port or 0)
            if driver is None and config.host and config.port:  # any other port: ask it (settle_config)
                host, port = _parse_host(config.host, config.port)
                return config.evolve(driver=None, host=host, port=port)
            if driver is None:
                raise Invalid(
                    f"Cannot infer the SQL driver from port {config.port!r}; pass driver= one of "
                    f"{', '.join(sorted(DIALECTS))}.",
                    {"field": "driver"},
                )
        if driver not in DIALECTS:
            raise Invalid(
                f"Unknown SQL driver {driver!r}; known drivers: {', '.join(sorted(DIALECTS))}.",
                {"field": "driver"},
            )
        if driver == "sqlite":
            if not config.database:
                raise Invalid(
                    "An SQLite connector needs database= the path of the database file.",
                    {"field": "database"},
                )
            if not Path(config.database).is_absolute():
                raise Invalid(
                    f"The SQLite path {config.database!r} must be absolute on the platform's machine.",
                    {"field": "database"},
                )
            return config.evolve(driver=driver, host=None, port=None)
        host, port = _parse_host(config.host, config.port)
        if not host:
            raise Invalid(f"A {driver} connector needs a host.", {"field": "host"})
        if port is not None and not (0 < port < 65536):
            raise Invalid(f"Port {port} is out of range.", {"field": "port"})
        return config.evolve(driver=driver, host=host, port=port or DIALECTS[driver].default_port)

    def normalize_source(self, spec: SourceSpec) -> SourceSpec:
        if bool(spec.table) == bool(spec.request):
            raise Invalid("An SQL datasource needs exactly one of table= or request=.", {"field": "table"})
        if spec.path or spec.bucket:
            raise Invalid("path= and bucket= do not apply to an SQL datasource.", {"field": "path"})
        if spec.request:
            check_request(spec.request, self.dialect.name)  # one read-only query (see sql_guard)
        return spec

    # -- connections -----------------------------------------------------------------------------------------
    #: The statement that bounded statement time on the last MySQL connection (see :meth:`_engine`).
    _statement_time_sql: str | None = None

    @property
    def query_timeout(self) -> int:
        """Seconds a statement may run on the database (0: no limit), from the platform's settings."""
        return max(0, int(getattr(self.settings, "query_timeout_seconds", 0) or 0))

    def _timeout_message(self) -> str:
        return (
            f"The query ran longer than the platform allows ({self.query_timeout} s, setting "
            "PREVISIO_QUERY_TIMEOUT_SECONDS) and was stopped."
        )

    def _engine(self, database: str | None = None) -> Engine:
        args = self.dialect.connect_args(self.connect_timeout)
        if isinstance(self.dialect, PostgresDialect):
            args = self.dialect.connect_args(self.connect_timeout, self.query_timeout)
        if self.dialect.name == "sqlite":
            real = self._check_sqlite_file()  # again at every use: the file may have become a link since
            engine = sa.create_engine(
                "sqlite://",
                creator=lambda: connect_sqlite(real, read_only=True, timeout=self.connect_timeout),
                poolclass=sa.pool.NullPool,
            )
        else:
            url = self.dialect.url(self.config, database)
            url, args = self.dialect.pin_address(url, args, self.host_address())
            engine = sa.create_engine(url, connect_args=args, poolclass=sa.pool.NullPool)
        if self.dialect.name == "mysql":

            @sa.event.listens_for(engine, "do_connect")
            def _guarded(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
                from .mysql_load import GuardedConnection  # refuses the file requests of a rogue server

                return GuardedConnection(*cargs, **cparams)

        seconds = self.query_timeout
        if seconds and self.dialect.name == "mysql":

            @sa.event.listens_for(engine, "connect")
            def _limit(dbapi_conn: Any, _record: Any) -> None:
                self._statement_time_sql = self.dialect.limit_statements(dbapi_conn, seconds)

        elif seconds and self.dialect.name == "sqlite":
            deadline = [float("inf")]

            @sa.event.listens_for(engine, "connect")
            def _progress(dbapi_conn: Any, _record: Any) -> None:
                # Called every 10,000 virtual machine steps: a non-zero answer interrupts the statement.
                dbapi_conn.set_progress_handler(lambda: int(time.monotonic() > deadline[0]), 10_000)

            @sa.event.listens_for(engine, "before_cursor_execute")
            def _start(*_args: Any) -> None:
                deadline[0] = time.monotonic() + seconds

        return engine

    def host_address(self) -> str | None:
        """The database server's address, resolved once and checked by the network guard; None for SQLite.

        Raises:
            AddressNotAllowed: The host is or resolves to an address the platform does not reach.
            ConnectionFailed: The host name does not resolve.
        """
        if self.dialect.name == "sqlite" or not self.config.host:
            return None
        return self.connect_address(self.config.host, self.config.port or self.dialect.default_port or 0)

    def settle_config(self) -> ConnectorConfig:
        """A connector on an unusual port without ``driver=``: ask the server which protocol it speaks, at the
        address the network guard checked, within a few seconds (see :mod:`.sql_detect`)."""
        if self.config.driver is not None or not self.config.host or not self.config.port:
            return self.config
        address = self.connect_address(self.config.host, self.config.port)
        return self.config.evolve(driver=detect_dialect(address, self.config.port, name=self.config.host))

    def check_config(self) -> None:
        """An SQLite connector may not open the platform's own files (its metadata store, its home)."""
        if self.config.driver == "sqlite":
            self._check_sqlite_file()

    @contextmanager
    def _connect(self, database: str | None = None) -> Iterator[Connection]:
        engine = self._engine(database)
        try:
            with self._errors(), engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn database errors into redacted driver errors."""
        try:
            yield
        except DriverError:
            raise
        except DBAPIError as exc:
            cls = self.dialect.classify(exc)
            if cls is QueryTimeout:
                raise QueryTimeout(self._timeout_message()) from None
            raise cls(self.redact(str(exc.orig).strip() or type(exc.orig).__name__)) from None
        except NoSuchTableError as exc:
            raise SourceNotFound(self.redact(f"Table {exc} does not exist.")) from None
        except SQLAlchemyError as exc:
            raise ReadFailed(self.redact(str(exc).split("\n")[0])) from None
        except (pa.ArrowException, ValueError, ArithmeticError) as exc:
            # A value its column's type cannot hold ("not a date" in an SQLite DATE column): the data's fault.
            raise ReadFailed(self.redact(f"A value cannot be read as its column's type: {exc}")) from None

    # -- operations ------------------------------------------------------------------------------------------
    def test(self) -> TestOutcome:
        try:
            with self._connect() as conn:
                conn.execute(sa.text("SELECT 1")).scalar()
        except DriverError as exc:
            return TestOutcome(False, exc.code, exc.message)
        return TestOutcome(True, None, f"Connected to {self.dialect.name}.")

    def list_databases(self) -> list[str]:
        with self._connect() as conn:
            return self.dialect.list_databases(conn)

    def list_tables(self, database: str | None) -> list[str]:
        with self._connect(self._database_for(database)) as conn:
            inspector = sa.inspect(conn)
            if self.dialect.name == "postgresql":
                names = []
                for schema in inspector.get_schema_names():
                    if schema in ("information_schema",) or schema.startswith("pg_"):
                        continue
                    prefix = "" if schema == "public" else f"{schema}."
                    names += [prefix + t for t in inspector.get_table_names(schema=schema)]
                    names += [prefix + v for v in inspector.get_view_names(schema=schema)]
                return sorted(names)
            return sorted(inspector.get_table_names() + inspector.get_view_names())

    def _database_for(self, database: str | None) -> str | None:
        if self.dialect.name == "sqlite":
            return None  # the file is the database
        return database or self.config.database

    def _table(self, conn: Connection, name: str) -> sa.Table:
        schema = None
        if "." in name and self.dialect.has_schemas:
            schema, name = name.split(".", 1)
        return sa.Table(name, sa.MetaData(), schema=schema, autoload_with=conn)

    def _quoted_table(self, name: str) -> str:
        preparer = self._engine().dialect.identifier_preparer
        if "." in name and self.dialect.has_schemas:
            schema, table = name.split(".", 1)
            return f"{preparer.quote(schema)}.{preparer.quote(table)}"
        return preparer.quote(name)

    def estimate_rows(self, spec: SourceSpec) -> int | None:
        """The table's row count from the database's catalog statistics; None for a query or on any error."""
        if not spec.table:
            return None
        schema, table = None, spec.table
        if "." in table and self.dialect.has_schemas:
            schema, table = table.split(".", 1)
        try:
            with self._connect(self._database_for(spec.database)) as conn:
                return self.dialect.estimate_rows(conn, schema, table)
        except Exception:  # noqa: BLE001 - an estimate never fails a request
            return None

    def _missing_table_message(self, spec: SourceSpec) -> str:
        """``Table 'sale' does not exist in 'shop'. Did you mean 'sales'?``: close names among the tables."""
        import difflib

        where = f" in {spec.database!r}" if spec.database else ""
        message = f"Table {spec.table!r} does not exist{where}."
        try:
            names = self.list_tables(spec.database)
        except DriverError:
            return self.redact(message)
        lowered = {n.lower(): n for n in names}
        close = difflib.get_close_matches((spec.table or "").lower(), list(lowered), n=3, cutoff=0.6)
        if close:
            message += f" Did you mean {' or '.join(repr(lowered[c]) for c in close)}?"
        return self.redact(message)

    def check_source(self, spec: SourceSpec) -> None:
        """Check the table or query on the database without reading its rows.

        A request runs as its parsed query wrapped in a derived table that returns no row (never as text
        pasted into other SQL), and is refused on a privileged role (see :meth:`_check_request_role`).
        """
        with self._connect(self._database_for(spec.database)) as conn:
            conn = self.dialect.begin_read_only(conn)
            if spec.table:
                try:
                    self._table(conn, spec.table)
                except NoSuchTableError:
                    raise SourceNotFound(self._missing_table_message(spec)) from None
            else:
                query = check_request(spec.request or "", self.dialect.name)
                self._check_request_role(conn)
                _run(conn, wrapped_query(query, self.dialect.name, "previsio_check", no_rows=True))

    #: Whether the connector's role is privileged, once asked (see :meth:`_check_request_role`).
    _privileged_role: bool | None = None

    def _check_request_role(self, conn: Connection) -> None:
        """Refuse a request on a role that bypasses permissions or reaches the database server's files.

        A request is SQL written by any editor of the project: on a PostgreSQL superuser (or a member of
        ``pg_read_server_files``, ``pg_write_server_files`` or ``pg_execute_server_program``) or a MySQL
        user with the SUPER or FILE privilege, one construct missed by the statement check would reach the
        server's machine. Table datasources stay allowed on such roles.

        Raises:
            PrivilegedRole: The connector's role is privileged.
        """
        name = self.dialect.name
        if name == "postgresql":
            sql = PRIVILEGED_ROLE_SQL["postgresql"]
            what = "a PostgreSQL superuser (or may read or write the server's files or run programs on it)"
        elif name == "mysql":
            sql = PRIVILEGED_ROLE_SQL["mysql"]
            what = "a MySQL user with the SUPER or FILE privilege"
        else:
            return
        if self._privileged_role is None:
            self._privileged_role = bool(conn.exec_driver_sql(sql).scalar())
        if self._privileged_role:
            raise PrivilegedRole(
                f"The connector's user is {what}: request datasources are refused on such a user, since "
                "their SQL comes from any editor of the project. Connect as a user that may only read what "
                "the request needs (table datasources stay allowed on this connector).",
                {"field": "request"},
            )

    @contextmanager
    def _adbc_errors(self) -> Iterator[None]:
        """Turn ADBC/Arrow errors of the PostgreSQL fast path into redacted driver errors."""
        import adbc_driver_manager

        try:
            yield
        except DriverError:
            raise
        except (adbc_driver_manager.Error, pa.ArrowException, OSError) as exc:
            # A connection lost mid-stream ("PQgetCopyData() failed") comes as an OSError (pa.ArrowIOError).
            text = str(exc)
            state = getattr(exc, "sqlstate", None) or ""
            match = re.search(r"SQLSTATE: (\w{5})", text)
            state = state or (match.group(1) if match else "")
            if "due to statement timeout" in text:  # SQLSTATE 57014, not always given mid-stream
                raise QueryTimeout(self._timeout_message()) from None
            if "password authentication failed" in text or state.startswith("28") or _unknown_role(text):
                cls: type[DriverError] = AuthenticationFailed
            elif state in ("42P01", "3D000", "3F000") or (not state and "does not exist" in text):
                cls = SourceNotFound
            elif state.startswith("42") or state == "25006" or "read-only transaction" in text:
                cls = InvalidSource
            elif "Failed to connect" in text or state.startswith("08") or "terminat" in text:
                cls = ConnectionFailed
            else:
                cls = ReadFailed
            server_line = re.search(r"ERROR:\s+(.+)", text)
            message = (
                server_line.group(1).strip()
                if server_line
                else re.sub(r"^[A-Z_]+: (\[libpq\] )?", "", text.strip())
            )
            raise cls(self.redact(message)) from None

    @contextmanager
    def _open_adbc_reader(self, spec: SourceSpec) -> Iterator[pa.RecordBatchReader]:
        """PostgreSQL fast path: ADBC streams COPY BINARY output straight into Arrow batches, in C.

        The low-level ADBC API is used rather than its DB-API layer, which imports pandas (50 MB per process).
        """
        import adbc_driver_manager
        import adbc_driver_postgresql

        dialect = self.dialect
        assert isinstance(dialect, PostgresDialect)
        query = self._source_query(spec)
        if spec.request:
            with self._connect(spec.database) as conn:
                self._check_request_role(conn)
        handles: list[Any] = []
        try:
            with self._adbc_errors():
                uri = dialect.adbc_uri(
                    self.config, spec.database, self.connect_timeout, self.query_timeout, self.host_address()
                )
                db = adbc_driver_postgresql.connect(uri)
                handles.append(db)
                conn = adbc_driver_manager.AdbcConnection(db)
                handles.append(conn)
                stmt = adbc_driver_manager.AdbcStatement(conn)
                handles.append(stmt)
                stmt.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(ADBC_BATCH_BYTES)})
                stmt.set_sql_query(query)
                stream, _rows = stmt.execute_query()
                source = pa.RecordBatchReader._import_from_c(stream.address)
            plans = [_adbc_field_plan(f) for f in source.schema]
            schema = pa.schema([p[0] for p in plans])

            def batches() -> Iterator[pa.RecordBatch]:
                with self._adbc_errors():
                    for batch in source:
                        if batch.num_rows == 0:
                            continue
                        arrays = [
                            conv(col) if conv else col
                            for col, (_f, conv) in zip(batch.columns, plans, strict=True)
                        ]
                        yield pa.RecordBatch.from_arrays(arrays, schema=schema)

            yield pa.RecordBatchReader.from_batches(schema, batches())
        finally:
            for handle in reversed(handles):
                try:
                    handle.close()
                except Exception:  # noqa: BLE001 - closing after a server-side failure may fail too
                    pass

    def _describe(self, spec: SourceSpec) -> list[tuple[pa.DataType | None, Converter | None]]:
        """Arrow types of the source's columns, from a query that returns no rows."""
        with self._connect(self._database_for(spec.database)) as conn:
            conn = self.dialect.begin_read_only(conn)
            if spec.request:
                query = check_request(spec.request, self.dialect.name)
                self._check_request_role(conn)
                sql = wrapped_query(query, self.dialect.name, "previsio_describe", no_rows=True)
            else:
                sql = f"SELECT * FROM {self._quoted_table(spec.table or '')} LIMIT 0"
            result = _run(conn, sql)
            try:
                return self.dialect.arrow_types(result.cursor)
            finally:
                result.close()

    def _source_query(self, spec: SourceSpec) -> str:
        """The SQL reading the source: a request is checked again (it may predate the check), then sent as
        typed, alone: the databases refuse a second statement (see :mod:`.sql_guard`)."""
        if spec.request:  # a final newline: a "-- comment" ending the request must not eat what follows
            check_request(spec.request, self.dialect.name)
            return spec.request.strip().rstrip(";") + "\n"
        return f"SELECT * FROM {self._quoted_table(spec.table or '')}"

    @contextmanager
    def _open_connectorx_reader(self, spec: SourceSpec, batch_rows: int) -> Iterator[pa.RecordBatchReader]:
        """MySQL fast path: ConnectorX decodes the result set into Arrow batches in native code.

        The query is first described through the DB-API (no rows read), which also checks the connection, the
        credentials and the table with well-classified errors, and gives the declared decimal scales.
        """
        import connectorx

        declared = self._describe(spec)
        cfg = self.config
        user = quote(cfg.username or "", safe="")
        password = quote(cfg.secrets.get("password") or "", safe="")
        auth = f"{user}:{password}@" if password else f"{user}@"
        database = quote(spec.database or cfg.database or "", safe="")
        address = self.host_address() or ""
        host = f"[{address}]" if ":" in address else address
        uri = f"mysql://{auth}{host}:{cfg.port or self.dialect.default_port}/{database}"
        try:
            source = connectorx.read_sql(
                uri,
                self._source_query(spec),
                return_type="arrow_stream",
                batch_size=batch_rows,
                pre_execution_query=[
                    "SET SESSION TRANSACTION READ ONLY",
                    "SET time_zone = '+00:00'",
                    # The statement time limit, as the description's connection found the server takes it.
                    *([self._statement_time_sql] if self._statement_time_sql else []),
                ],
            )
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - RuntimeError or PanicException, with text only
            raise self._connectorx_error(exc) from None
        fields = []
        for field, (typ, _conv) in zip(source.schema, declared, strict=True):
            target = field.type
            if typ is not None and pa.types.is_decimal(typ) and pa.types.is_decimal(field.type):
                target = typ
            elif typ is not None and pa.types.is_timestamp(typ) and pa.types.is_timestamp(field.type):
                target = typ  # TIMESTAMP columns are instants read in UTC; DATETIME ones stay naive
            elif pa.types.is_large_binary(field.type):
                target = pa.binary()
            elif pa.types.is_large_string(field.type):
                target = pa.string()
            fields.append(pa.field(field.name, target))
        schema = pa.schema(fields)
        needs_cast = schema != source.schema

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                for batch in source:
                    if batch.num_rows:
                        yield batch.cast(schema) if needs_cast else batch
            except (DriverError, GeneratorExit, KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # noqa: BLE001 - a value ConnectorX cannot decode (MySQL zero date)
                raise self._connectorx_error(exc) from None  # raises a PanicException, a BaseException

        yield pa.RecordBatchReader.from_batches(schema, batches())

    def _connectorx_error(self, exc: BaseException) -> DriverError:
        text = str(exc)
        if "max_statement_time" in text or "maximum statement execution time" in text:
            return QueryTimeout(self._timeout_message())
        if "Access denied" in text:
            cls: type[DriverError] = AuthenticationFailed
        elif "doesn't exist" in text or "Unknown database" in text or "Unknown table" in text:
            cls = SourceNotFound
        elif "syntax" in text or "Unknown column" in text or "READ ONLY" in text.upper():
            cls = InvalidSource
        elif any(
            k in text for k in ("Connection refused", "timed out", "lookup", "Lost connection", "gone away")
        ):
            cls = ConnectionFailed
        else:
            cls = ReadFailed
        return cls(self.redact(text.strip().splitlines()[0] if text.strip() else type(exc).__name__))

    @contextmanager
    def open_reader(self, spec: SourceSpec, batch_rows: int) -> Iterator[pa.RecordBatchReader]:
        if self.dialect.name == "postgresql" and _adbc_available():
            with self._open_adbc_reader(spec) as reader:
                yield reader
            return
        if self.dialect.name == "mysql" and _connectorx_available():
            with self._open_connectorx_reader(spec, batch_rows) as reader:
                yield reader
            return
        with self._connect(self._database_for(spec.database)) as conn, self._errors():
            conn = self.dialect.begin_read_only(conn)
            declared: list[pa.DataType | None] | None = None
            if spec.table:
                table = self._table(conn, spec.table)
                stmt: Any = sa.select(table)
                if self.dialect.name == "sqlite":
                    declared = [_sa_type_to_arrow(c.type) for c in table.columns]
                else:  # DB-API values as sent: reflected types would make a MySQL DOUBLE a rounded Decimal
                    stmt = sa.select(*(sa.type_coerce(c, sa.types.NullType()) for c in table.columns))
            streaming = conn.execution_options(stream_results=True, yield_per=batch_rows)
            if spec.table:
                result = streaming.execute(stmt)
            else:
                self._check_request_role(conn)
                result = _run(streaming, self._source_query(spec))
            if not result.returns_rows:
                raise InvalidSource("The request returns no rows.")
            names = _unique_names(list(result.keys()))
            types = self.dialect.arrow_types(result.cursor)
            if declared is not None:
                types = [(d, None) if d is not None else t for d, t in zip(declared, types, strict=True)]
            partitions = result.partitions(batch_rows)
            first = next(partitions, [])
            first_batch = rows_to_batch(first, names, types, None)
            schema = first_batch.schema

            def batches() -> Iterator[pa.RecordBatch]:
                if first_batch.num_rows:
                    yield first_batch
                with self._errors():
                    for rows in partitions:
                        yield rows_to_batch(rows, names, types, schema)

            yield pa.RecordBatchReader.from_batches(schema, batches())
