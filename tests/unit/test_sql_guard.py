"""The statement check of request datasources: which SQL is one read-only query, per dialect.

Every attack string of issue 10 is here, with the comment and quoting tricks that fooled a first-word check.
"""

from __future__ import annotations

import pytest

from previsio_sdk.server.drivers.base import InvalidSource
from previsio_sdk.server.drivers.sql_guard import check_request, wrapped_query

ALL = ("postgresql", "mysql", "sqlite")

#: (dialects, request): one read-only query each.
ACCEPTED = [
    (ALL, "SELECT id, amount FROM orders WHERE amount > 100"),
    (ALL, "SELECT id FROM orders;"),
    (ALL, "  \n SELECT id FROM orders -- the first two\n"),
    (ALL, "SELECT id FROM orders -- a final comment"),
    (ALL, "/* the first two */ SELECT id FROM orders WHERE id <= 2"),
    (ALL, "WITH firsts AS (SELECT * FROM orders WHERE id <= 2) SELECT id FROM firsts"),
    (ALL, "SELECT 1 UNION SELECT 2"),
    (ALL, "SELECT id FROM a INTERSECT SELECT id FROM b"),
    (ALL, "SELECT 'a;b' AS x, 'DELETE FROM t; --' AS y"),
    (ALL, "SELECT id FROM t WHERE label = 'x'' ; DROP TABLE t; --'"),
    (ALL, "SELECT COUNT(*), MAX(amount) FROM orders GROUP BY label HAVING COUNT(*) > 1"),
    (("postgresql", "sqlite"), "VALUES (1, 'a'), (2, 'b')"),
    (("postgresql",), "SELECT $$a; DELETE FROM t$$ AS x"),
    (("postgresql",), "SELECT $tag$ it's; COPY t TO PROGRAM 'id' $tag$ AS x"),
    (("postgresql",), "SELECT x::numeric(10, 2), now() FROM t"),
    (
        ("postgresql",),
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT n FROM r",
    ),
    (("postgresql",), "SELECT * FROM generate_series(1, 3) AS g(x)"),
    (("postgresql",), "TABLE orders"),
    # Slow but without effect: bounded by query_timeout_seconds like any slow query.
    (("postgresql",), "SELECT pg_sleep(5) AS slept"),
    (("mysql",), "SELECT SLEEP(5), BENCHMARK(1000, MD5('x'))"),
    (("mysql",), "SELECT `a;b` FROM t WHERE x = 'a\\'; DROP TABLE t; -- '"),
    (("mysql",), "SELECT 1 /*+ a hint, not executable */"),
    (("mysql",), "SELECT id FROM t # a MySQL comment\n WHERE id > 1"),
]

#: (dialects, request, a word the refusal names).
REFUSED = [
    # The attack strings.
    (
        ALL,
        "SELECT 1) AS a; COMMIT; BEGIN READ WRITE; DELETE FROM victim; COMMIT; SELECT (1",
        "cannot be read",
    ),
    (("postgresql",), "/* first */ COPY (SELECT 1) TO PROGRAM 'id'", "COPY"),
    (("postgresql",), "-- first\nCOPY t TO PROGRAM 'id'", "COPY"),
    (("postgresql",), "SELECT lo_import('/home/p/.previsio/secret.key')", "lo_import"),
    (("postgresql",), "SELECT pg_catalog.lo_import('/etc/passwd')", "lo_import"),
    (("postgresql",), "SELECT \"lo_export\"(1, '/tmp/x')", "lo_export"),
    (("sqlite",), "WITH x AS (SELECT 1) INSERT INTO tokens (digest) VALUES ('x') RETURNING *", "INSERT"),
    # Several statements, whatever hides the separator.
    (ALL, "SELECT 1 AS x; DELETE FROM t", "several statements"),
    (ALL, "SELECT 1 AS x;\n-- comment\nDROP TABLE t", "several statements"),
    (ALL, "SELECT 1; SELECT 2", "several statements"),
    # Writes, whatever comes first.
    (ALL, "DELETE FROM t", "DELETE"),
    (ALL, "/* comment first */ DELETE FROM t", "DELETE"),
    (ALL, "-- comment first\nDROP TABLE t", "DROP"),
    (ALL, "UPDATE t SET x = 1", "UPDATE"),
    (ALL, "INSERT INTO t VALUES (1)", "INSERT"),
    (ALL, "CREATE TABLE t2 AS SELECT * FROM t", "CREATE"),
    (("postgresql",), "WITH gone AS (DELETE FROM t RETURNING *) SELECT * FROM gone", "DELETE"),
    (
        ("postgresql",),
        "WITH a AS (SELECT 1), b AS (WITH c AS (UPDATE t SET x = 1 RETURNING x) SELECT * FROM c) "
        "SELECT * FROM b",
        "UPDATE",
    ),
    (("mysql",), "WITH x AS (SELECT 1) DELETE FROM t", "DELETE"),
    (("postgresql", "sqlite"), "SELECT * INTO new_table FROM t", "INTO"),
    (("mysql",), "SELECT 1 INTO @x", "INTO"),
    (("mysql",), "SELECT * FROM t INTO OUTFILE '/tmp/x'", "cannot be read"),
    # Leaving the read-only transaction, settings, locks.
    (("postgresql",), "BEGIN READ WRITE", "TRANSACTION"),
    (("postgresql",), "COMMIT", "COMMIT"),
    (("postgresql",), "SET TRANSACTION READ WRITE", "SET"),
    (("postgresql",), "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "SET"),
    (("postgresql",), "SELECT set_config('default_transaction_read_only', 'off', false)", "set_config"),
    (("postgresql", "mysql"), "SELECT * FROM t FOR UPDATE", "lock"),
    (("postgresql", "mysql"), "SELECT * FROM t FOR SHARE", "lock"),
    (("mysql",), "SELECT * FROM t LOCK IN SHARE MODE", "lock"),
    (("postgresql",), "SELECT pg_advisory_lock(1)", "pg_advisory_lock"),
    (("mysql",), "SELECT GET_LOCK('a', 10)", "get_lock"),
    # Side-effecting or out-of-reach functions.
    (("postgresql",), "SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
    (("postgresql",), "SELECT * FROM pg_ls_dir('.')", "pg_ls_dir"),
    (("postgresql",), "SELECT * FROM t, LATERAL pg_read_binary_file('x') AS f", "pg_read_binary_file"),
    (("postgresql",), "SELECT * FROM dblink('host=x', 'DELETE FROM t') AS r(x int)", "dblink"),
    (("postgresql",), "SELECT pg_terminate_backend(1)", "pg_terminate_backend"),
    (("postgresql",), "SELECT nextval('seq')", "nextval"),
    (("postgresql",), "SELECT query_to_xml('DELETE FROM t RETURNING 1', true, true, '')", "query_to_xml"),
    (("postgresql",), "SELECT ts_stat('SELECT lo_import(''x'')')", "ts_stat"),
    (("mysql",), "SELECT LOAD_FILE('/etc/passwd')", "load_file"),
    (("mysql",), "SELECT NEXTVAL(s) AS v", "nextval"),
    (("sqlite",), "SELECT load_extension('/tmp/evil.so')", "load_extension"),
    (("sqlite",), "SELECT writefile('/tmp/x', 'data')", "writefile"),
    (("sqlite",), "SELECT readfile('/etc/passwd')", "readfile"),
    (("sqlite",), "SELECT fts3_tokenizer('simple')", "fts3_tokenizer"),
    # Statements that are not queries.
    (("sqlite",), "ATTACH DATABASE '/home/p/.previsio/platform.db' AS p", "ATTACH"),
    (("sqlite",), "PRAGMA query_only = 0", "PRAGMA"),
    (("postgresql",), "EXPLAIN ANALYZE DELETE FROM t", "EXPLAIN"),
    (("postgresql",), "CALL proc()", "CALL"),
    (("postgresql",), "DO $$ BEGIN DELETE FROM t; END $$", "DO"),
    (("mysql",), "SHOW TABLES", "SHOW"),
    (("mysql",), "LOAD DATA INFILE '/etc/passwd' INTO TABLE t", "cannot be read"),
    # MySQL runs what is inside an executable comment.
    (("mysql",), "SELECT 1 /*!, LOAD_FILE('/etc/passwd') */", "executable comment"),
    (("mysql",), "SELECT 1 /*!50000 , LOAD_FILE('/etc/passwd') */", "executable comment"),
    (("mysql",), "SELECT 1 /*M!100000 , LOAD_FILE('/etc/passwd') */", "executable comment"),
    # Nothing, or nothing readable.
    (ALL, "", "empty"),
    (ALL, " ; ", "empty"),
    (ALL, "-- only a comment", "empty"),
    (ALL, "SELEC id FROM t", "cannot be read"),
    (ALL, "SELECT id FROM t WHERE", "cannot be read"),
]


def _cases(table: list[tuple]) -> list:  # type: ignore[type-arg]
    return [
        pytest.param(dialect, *rest, id=f"{dialect}:{rest[0][:50]}")
        for dialects, *rest in table
        for dialect in dialects
    ]


@pytest.mark.parametrize(("dialect", "sql"), _cases(ACCEPTED))
def test_a_read_only_query_is_accepted(dialect: str, sql: str) -> None:
    """One read-only query (comments, CTEs, set operations, separators inside literals) passes the check."""
    check_request(sql, dialect)


@pytest.mark.parametrize(("dialect", "sql", "named"), _cases(REFUSED))
def test_anything_else_is_refused_with_a_message_naming_it(dialect: str, sql: str, named: str) -> None:
    """A write, a second statement, a lock, a side-effecting call or unreadable text is invalid_source (422),
    and the message names what was refused."""
    with pytest.raises(InvalidSource) as info:
        check_request(sql, dialect)
    assert info.value.code == "invalid_source"
    assert info.value.status == 422
    assert named.lower() in info.value.message.lower(), info.value.message


@pytest.mark.parametrize("dialect", ALL)
def test_the_check_wraps_the_parsed_query_not_its_text(dialect: str) -> None:
    """The datasource check selects from the parsed query as a derived table returning no row: one
    statement, whatever the text's comments and literals held."""
    query = check_request("SELECT id, 'a) AS x; DELETE FROM t; --' AS s FROM t -- c", dialect)
    sql = wrapped_query(query, dialect, "previsio_check", no_rows=True)
    assert sql.startswith("SELECT * FROM (SELECT id, 'a) AS x; DELETE FROM t; --' AS s FROM t")
    assert sql.endswith("AS previsio_check WHERE 1 = 0")
    check_request(sql, dialect)  # itself one read-only query
