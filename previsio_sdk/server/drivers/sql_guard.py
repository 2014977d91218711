"""What a request datasource may contain: one read-only query, checked by a real SQL parser.

A request is untrusted SQL typed by any editor of a project. It is parsed with sqlglot in the connector's
dialect and refused (:class:`~previsio_sdk.server.drivers.base.InvalidSource`, code ``invalid_source``) unless
it is exactly one query (``SELECT``, ``WITH ... SELECT``, ``VALUES``, ``UNION``/``INTERSECT``/``EXCEPT`` of
those) with:

* no data-modifying or definition statement anywhere in its tree (``WITH x AS (DELETE ... RETURNING ...)``),
  no command the parser could only keep as opaque text (``COPY``, ``EXPLAIN ANALYZE``, ``CALL``...);
* no ``SELECT ... INTO`` (a table, a variable or a file) and no locking clause (``FOR UPDATE``/``FOR SHARE``);
* no call of a function with side effects or that reaches outside the query: files (``lo_import``,
  ``pg_read_file``, ``LOAD_FILE``, ``readfile``), other servers (``dblink``), other sessions
  (``pg_terminate_backend``), settings (``set_config``), locks, sequences, SQL run from text (``ts_stat``,
  ``query_to_xml``), extensions (``load_extension``);
* on MySQL, no executable comment (``/*! ... */``, ``/*M! ... */``): the server runs what the parser
  reads as a comment.

Text the parser cannot read is refused, never passed through. The check is a first gate: the statement
then runs alone (the databases refuse a second statement: PostgreSQL's extended protocol, MySQL without
multi-statements), in a read-only session or transaction.

Sleeps (``pg_sleep``, ``SLEEP``) and CPU burners (``BENCHMARK``) are allowed: they change nothing, and
their time is bounded by ``query_timeout_seconds`` like that of any slow query, which refusing them would
not prevent.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from .base import InvalidSource

#: The sqlglot dialect of each SQL driver dialect.
SQLGLOT_DIALECTS = {"postgresql": "postgres", "mysql": "mysql", "sqlite": "sqlite"}

#: Functions a request may not call, by dialect: exact names (lower case, without schema).
FORBIDDEN_FUNCTIONS: dict[str, frozenset[str]] = {
    "postgresql": frozenset(
        {
            "loread",
            "lowrite",
            "nextval",
            "setval",
            "set_config",
            "pg_terminate_backend",
            "pg_cancel_backend",
            "pg_reload_conf",
            "pg_rotate_logfile",
            "pg_notify",
            "pg_switch_wal",
            "pg_promote",
            "pg_start_backup",
            "pg_stop_backup",
            "pg_export_snapshot",
            "pg_log_backend_memory_contexts",
            "pg_stat_file",
            "txid_current",
            "pg_current_xact_id",
            "ts_stat",
            "ts_rewrite",
        }
    ),
    "mysql": frozenset(
        {
            "load_file",
            "get_lock",
            "release_lock",
            "release_all_locks",
            "nextval",
            "setval",
            "lastval",
            "master_pos_wait",
            "source_pos_wait",
            "master_gtid_wait",
            "sys_exec",
            "sys_eval",
        }
    ),
    "sqlite": frozenset({"load_extension", "writefile", "readfile", "fts3_tokenizer", "edit"}),
}

#: Functions a request may not call, by dialect: name prefixes (families of functions).
FORBIDDEN_PREFIXES: dict[str, tuple[str, ...]] = {
    "postgresql": (
        "lo_",  # large objects: lo_import/lo_export read and write the server's files
        "pg_read_",
        "pg_ls_",
        "pg_file_",
        "pg_stat_reset",
        "pg_advisory",
        "pg_try_advisory",
        "pg_create_",
        "pg_drop_",
        "pg_replication_",
        "pg_logical_",
        "pg_backup_",
        "pg_wal_replay_",
        "pg_import_",
        "dblink",  # dblink, dblink_exec...: statements on another server or session, outside read-only
        "query_to_xml",  # these run SQL given as text, out of the parser's sight
        "cursor_to_xml",
    ),
    "mysql": (),
    "sqlite": (),
}

#: Nodes a read-only query never contains.
_WRITE_NODES: tuple[type[exp.Expression], ...] = (
    exp.Insert,
    exp.Update,
    exp.Delete,
    exp.Merge,
    exp.Create,
    exp.Drop,
    exp.Alter,
    exp.Copy,
    exp.Command,
    exp.Set,
    exp.Pragma,
    exp.Attach,
    exp.Detach,
    exp.Transaction,
    exp.Commit,
    exp.Rollback,
    exp.TruncateTable,
    exp.LoadData,
)

#: The statements a request may be.
_QUERIES: tuple[type[exp.Expression], ...] = (exp.Select, exp.SetOperation, exp.Values, exp.Subquery)

#: MySQL runs the text of these comments: ``/*! ... */`` and MariaDB's ``/*M! ... */``.
_MYSQL_EXECUTABLE_COMMENT = re.compile(r"^\s*M?!", re.IGNORECASE)


def _refuse(message: str) -> InvalidSource:
    return InvalidSource(message, {"field": "request"})


def check_request(sql: str, dialect: str) -> exp.Expression:
    """Parse a request and check that it is one read-only query.

    Args:
        sql: The request, as the user typed it.
        dialect: ``postgresql``, ``mysql`` or ``sqlite``.

    Returns:
        The parsed query.

    Raises:
        InvalidSource: The request is not exactly one read-only query (the message names what is refused).
    """
    read = SQLGLOT_DIALECTS[dialect]
    try:
        if dialect == "mysql":
            for token in sqlglot.tokenize(sql, read=read):
                if any(_MYSQL_EXECUTABLE_COMMENT.match(c) for c in token.comments):
                    raise _refuse("A request may not hold an executable comment (/*! ... */).")
        statements = [s for s in sqlglot.parse(sql, read=read) if s is not None]
    except SqlglotError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _refuse(f"The request cannot be read as one {dialect} query: {first}") from None
    if not statements:
        raise _refuse("The request is empty: give one SELECT query.")
    if len(statements) > 1:
        raise _refuse("A request is one query: it may not hold several statements (separated by ';').")
    query = statements[0]
    for node in query.walk():
        if isinstance(node, _WRITE_NODES):
            what = node.key.upper() if not isinstance(node, exp.Command) else str(node.this).upper()
            raise _refuse(f"A request must be a read-only query: {what} is not allowed.")
        if isinstance(node, exp.Into):
            raise _refuse("A request must be a read-only query: SELECT ... INTO is not allowed.")
        if isinstance(node, exp.Lock):
            raise _refuse("A request may not lock rows (FOR UPDATE / FOR SHARE).")
        if isinstance(node, exp.Func):
            name = _function_name(node)
            if name and _forbidden(name, dialect):
                raise _refuse(f"A request may not call {name}(): it has effects beyond reading.")
    if not isinstance(query, _QUERIES):
        raise _refuse(f"A request must be a SELECT query, not {query.key.upper()}.")
    return query


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def _forbidden(name: str, dialect: str) -> bool:
    return name in FORBIDDEN_FUNCTIONS[dialect] or name.startswith(FORBIDDEN_PREFIXES[dialect])


def wrapped_query(query: exp.Expression, dialect: str, alias: str, *, no_rows: bool) -> str:
    """SQL selecting every column of the parsed ``query`` as a derived table (never string-pasted).

    Args:
        query: A query returned by :func:`check_request`.
        dialect: ``postgresql``, ``mysql`` or ``sqlite``.
        alias: The derived table's name.
        no_rows: Add ``WHERE 1 = 0`` (checks and descriptions read no row).
    """
    derived = exp.Subquery(this=query.copy(), alias=exp.TableAlias(this=exp.to_identifier(alias)))
    outer = exp.select("*").from_(derived)
    if no_rows:
        outer = outer.where(exp.EQ(this=exp.Literal.number(1), expression=exp.Literal.number(0)))
    return outer.sql(dialect=SQLGLOT_DIALECTS[dialect])
