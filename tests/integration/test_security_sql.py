"""The SQL drivers, attacked the way an editor of one project with loopback servers of their own would.

Each test names the attack route it closes: a rogue MySQL server asking for the platform's files during an
export; SQLite paths reaching the platform's own files or writing through a read-only request; PostgreSQL
requests leaving their read-only transaction; passwords leaking through connection strings; staging tables
left behind by interrupted exports.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import (
    MY_PASSWORD,
    MY_USER,
    PG_SCRAM_PASSWORD,
    PG_SCRAM_USER,
    SUITE_SECRETS,
    RunningPlatform,
    secret_forms,
    start_platform,
    stop_platform,
)
from psycopg import sql as psycopg_sql
from rogue_mysql import RogueMySQL

import previsio_sdk as pio
from previsio_sdk.server.drivers import ConnectorConfig, DestinationSpec, WriteMode
from previsio_sdk.server.drivers import sql as sql_driver_module
from previsio_sdk.server.drivers.base import DriverError, SourceSpec, redact
from previsio_sdk.server.drivers.sql import SQLDriver
from previsio_sdk.server.errors import Invalid
from previsio_sdk.server.logs import secret_forms as base_secret_forms
from previsio_sdk.server.settings import Settings


def _people(n: int) -> pa.Table:
    return pa.table({"id": pa.array(range(n), pa.int64()), "name": [f"person {i}" for i in range(n)]})


def _upload(project: pio.Project, table: pa.Table, tmp_path: Path) -> pio.Dataset:
    name = f"ds_{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name}.parquet"
    pq.write_table(table, path)
    return project.create_dataset(name, file_name=path, progress=False)


def _mysql_driver(port: int, database: str) -> SQLDriver:
    config = ConnectorConfig(
        type="sql",
        driver="mysql",
        host="127.0.0.1",
        port=port,
        username=MY_USER,
        database=database,
        secrets={"password": MY_PASSWORD},
    )
    return SQLDriver(SQLDriver.normalize_config(config))


# -- MySQL: LOAD DATA LOCAL INFILE ---------------------------------------------------------------------------
@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A file the rogue server asks for, with a recognisable content."""
    path = tmp_path / "secret.key"
    path.write_bytes(b"TOP-SECRET-" + uuid.uuid4().hex.encode())
    return path


@pytest.fixture
def rogue() -> Iterator[list[RogueMySQL]]:
    """The rogue servers a test starts (closed at the end)."""
    started: list[RogueMySQL] = []
    yield started
    for server in started:
        server.close()


def test_rogue_server_asking_for_a_file_gets_nothing_from_a_driver_export(
    my_database: str, secret_file: Path, rogue: list[RogueMySQL]
) -> None:
    """Attack: a rogue MySQL server answers the exporter's first statement with a LOCAL INFILE request for a
    file of the platform. The driver sends no byte of any file and the write fails with a clear error."""
    server = RogueMySQL("hijack", str(secret_file))
    rogue.append(server)
    driver = _mysql_driver(server.port, my_database)
    table = f"rogue_{uuid.uuid4().hex[:8]}"
    reader = pa.RecordBatchReader.from_batches(_people(3).schema, _people(3).to_batches())
    with pytest.raises(DriverError) as info:
        driver.write(DestinationSpec(table=table), reader, WriteMode.replace, None)
    assert "local file" in info.value.message
    assert server.requests == 1
    assert server.received == [b""]  # an empty answer: no data at all


@pytest.mark.parametrize(
    "spec", [SourceSpec(table="anything"), SourceSpec(request="SELECT 1 AS one")], ids=["table", "request"]
)
def test_rogue_server_asking_for_a_file_while_reading_gets_nothing(
    my_database: str, secret_file: Path, rogue: list[RogueMySQL], spec: SourceSpec
) -> None:
    """Attack: a rogue MySQL server answers a snapshot's (or a datasource check's) query with a file request.
    The reading connection sends an empty answer and the read fails with a typed error, not a crash."""
    server = RogueMySQL("hijack", str(secret_file), any_client=True)
    rogue.append(server)
    driver = _mysql_driver(server.port, my_database)
    with pytest.raises(DriverError) as info:
        with driver.open_reader(spec, batch_rows=10) as reader:
            reader.read_all()
    assert "local file" in info.value.message
    assert server.requests >= 1
    assert set(server.received) <= {b""}


def test_renamed_file_request_gets_only_the_exported_rows(
    my_database: str, my_exec, secret_file: Path, rogue: list[RogueMySQL]
) -> None:
    """Attack: a proxy rewrites the file name of the real server's LOAD DATA LOCAL request to the platform's
    key file. The driver ignores the name: it sends the rows being exported, and nothing else."""
    server = RogueMySQL("rename", str(secret_file))
    rogue.append(server)
    driver = _mysql_driver(server.port, my_database)
    table = f"rogue_{uuid.uuid4().hex[:8]}"
    data = _people(1000)
    result = driver.write(
        DestinationSpec(table=table),
        pa.RecordBatchReader.from_batches(data.schema, data.to_batches()),
        WriteMode.replace,
        None,
    )
    assert result.rows == 1000
    assert server.requests >= 1
    sent = b"".join(server.received)
    assert secret_file.read_bytes() not in sent
    assert sent.count(b"\n") == 1000 and b'"person 999"' in sent
    assert my_exec(f"SELECT COUNT(*) FROM `{table}`") == [(1000,)]


def test_rogue_server_gets_no_platform_file_through_an_export(
    platform: RunningPlatform,
    project: pio.Project,
    my_database: str,
    tmp_path: Path,
    rogue: list[RogueMySQL],
) -> None:
    """Attack (through the platform): an editor points a MySQL connector at their rogue server and exports a
    dataset; the server asks for the platform's secret.key. The export fails and no byte of the file (nor
    of platform.db or admin.token) leaves the platform."""
    key_file = platform.home / "secret.key"
    assert key_file.is_file()
    server = RogueMySQL("hijack", str(key_file))
    rogue.append(server)
    connector = project.create_sql_connector(
        "rogue",
        host="127.0.0.1",
        port=server.port,
        username=MY_USER,
        password=MY_PASSWORD,
        database=my_database,
        driver="mysql",
    )
    exporter = project.create_exporter(
        connector, "out", table=f"rogue_{uuid.uuid4().hex[:8]}", write_mode="replace"
    )
    dataset = _upload(project, _people(5), tmp_path)
    with pytest.raises(pio.JobFailedError) as info:
        exporter.export_dataset(dataset, wait_for_export=True, progress=False)
    assert "local file" in info.value.message
    assert server.requests == 1
    sent = b"".join(server.received)
    assert sent == b""
    for own in ("secret.key", "platform.db", "admin.token"):
        content = (platform.home / own).read_bytes()
        assert content[:64] not in sent or not content


# -- SQLite: paths and read-only requests --------------------------------------------------------------------
def _sqlite_driver(path: str | Path, settings: Settings | None) -> SQLDriver:
    config = SQLDriver.normalize_config(ConnectorConfig(type="sql", driver="sqlite", database=str(path)))
    return SQLDriver(config, settings=settings)


def _make_db(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE tokens (digest TEXT)")
    con.execute("INSERT INTO tokens VALUES ('admin')")
    con.commit()
    con.close()
    return path


@pytest.mark.parametrize("escape", ["%{:02x}", "%{:02X}"], ids=["lower", "upper"])
def test_percent_escaped_path_is_a_plain_path_not_the_platform_database(
    platform: RunningPlatform, project: pio.Project, escape: str
) -> None:
    """Attack: ``%68``-escaped characters in an SQLite path passed the own-files check (the path did not look
    like the platform's home) and SQLite decoded them into platform.db. The path is now a plain path: the
    escaped directory is a directory of that name (which does not exist), so nothing of the metadata
    database is read."""
    home = platform.home
    disguised = home.parent / (escape.format(ord(home.name[0])) + home.name[1:]) / "platform.db"
    connector = project.create_sql_connector("escaped", driver="sqlite", database=str(disguised))
    with pytest.raises(pio.ValidationError) as info:
        connector.list_tables()
    assert info.value.code == "source_not_found"
    with pytest.raises(pio.ValidationError) as info:
        project.create_datasource(connector, "tokens", table="tokens")
    assert info.value.code == "source_not_found"


def test_uri_parameters_in_a_path_do_not_open_it_read_write(
    project: pio.Project, sqlite_path: Path, tmp_path: Path
) -> None:
    """Attack: ``?mode=rw`` after an SQLite path overrode read-only. It is now part of the file name: the
    connector reads no such file, and the real file is unchanged."""
    _make_db(sqlite_path)
    connector = project.create_sql_connector("rw", driver="sqlite", database=f"{sqlite_path}?mode=rw")
    with pytest.raises(pio.ValidationError) as info:
        connector.list_tables()
    assert info.value.code == "source_not_found"
    assert sqlite3.connect(sqlite_path).execute("SELECT digest FROM tokens").fetchall() == [("admin",)]


def test_a_write_hidden_in_a_cte_is_refused_and_the_engine_refuses_it_too(
    project: pio.Project, sqlite_path: Path
) -> None:
    """Attack: ``WITH x AS (SELECT 1) INSERT ... RETURNING`` wrote through a "read-only" request and minted
    a token. The statement check refuses it; below it, the reading connection itself (``query_only`` and an
    authorizer) refuses any write, attach or pragma change sent to it."""
    _make_db(sqlite_path)
    connector = project.create_sql_connector("lite", driver="sqlite", database=str(sqlite_path))
    attack = "WITH x AS (SELECT 1) INSERT INTO tokens (digest) SELECT 'minted' FROM x RETURNING digest"
    with pytest.raises(pio.ValidationError) as info:
        project.create_datasource(connector, "mint", request=attack, check=False)
    assert info.value.code == "invalid_source"
    driver = _sqlite_driver(sqlite_path, None)
    for statement in (
        attack,
        "INSERT INTO tokens VALUES ('minted')",
        "PRAGMA query_only = 0",
        f"ATTACH DATABASE '{sqlite_path}' AS other",
        "CREATE TABLE more (x)",
    ):
        with pytest.raises(DriverError), driver._connect() as conn:
            conn.exec_driver_sql(statement).fetchall()
    with driver._connect() as conn:
        assert conn.exec_driver_sql("SELECT digest FROM tokens").fetchall() == [("admin",)]
    assert sqlite3.connect(sqlite_path).execute("SELECT digest FROM tokens").fetchall() == [("admin",)]


def test_sqlite_files_are_confined_to_the_allowed_roots(tmp_path: Path) -> None:
    """An SQLite file outside PREVISIO_SQLITE_ROOTS is refused (root_not_allowed); with no roots at all
    (``previsio serve``'s default) every SQLite connector is refused, and the message names the setting."""
    allowed, elsewhere = tmp_path / "allowed", tmp_path / "elsewhere"
    allowed.mkdir()
    elsewhere.mkdir()
    inside, outside = _make_db(allowed / "ok.db"), _make_db(elsewhere / "no.db")
    settings = Settings(home=tmp_path / "home", sqlite_roots=[allowed])
    _sqlite_driver(inside, settings).check_config()
    with _sqlite_driver(inside, settings)._connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM tokens").scalar() == 1
    with pytest.raises(Invalid) as info:
        _sqlite_driver(outside, settings).check_config()
    assert info.value.code == "root_not_allowed"
    with pytest.raises(Invalid) as info:
        _sqlite_driver(allowed / ".." / "elsewhere" / "no.db", settings).check_config()
    assert info.value.code == "root_not_allowed"
    with pytest.raises(Invalid) as info:
        _sqlite_driver(inside, Settings(home=tmp_path / "home")).check_config()
    assert info.value.code == "root_not_allowed"
    assert "PREVISIO_SQLITE_ROOTS" in info.value.message


def test_a_platform_with_sqlite_roots_refuses_files_outside_them(tmp_path: Path) -> None:
    """A platform started with PREVISIO_SQLITE_ROOTS accepts an SQLite connector on a file inside a root
    and refuses one outside (422 root_not_allowed), whether created or moved there by an update."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    inside, outside = _make_db(allowed / "ok.db"), _make_db(tmp_path / "no.db")
    running = start_platform(tmp_path / "home", env={"PREVISIO_SQLITE_ROOTS": json.dumps([str(allowed)])})
    try:
        project = pio.Project.new("roots", client=running.client())
        connector = project.create_sql_connector("ok", driver="sqlite", database=str(inside))
        assert connector.list_tables() == ["tokens"]
        with pytest.raises(pio.ValidationError) as info:
            project.create_sql_connector("no", driver="sqlite", database=str(outside))
        assert info.value.code == "root_not_allowed"
        assert "PREVISIO_SQLITE_ROOTS" in info.value.message
        with pytest.raises(pio.ValidationError) as info:
            connector.update(database=str(outside))
        assert info.value.code == "root_not_allowed"
    finally:
        stop_platform(running)


def test_links_to_the_platform_files_are_refused_even_inside_an_allowed_root(tmp_path: Path) -> None:
    """A symbolic link or a hard link inside an allowed root that leads to the platform's metadata database
    or key file is refused (unsafe_path): the check looks at the resolved path and at the file itself."""
    home = tmp_path / "home"
    home.mkdir()
    _make_db(home / "platform.db")
    (home / "secret.key").write_text("key")
    settings = Settings(home=home, sqlite_roots=[tmp_path])
    root = tmp_path / "shared"
    root.mkdir()
    os.symlink(home / "platform.db", root / "symlinked.db")
    os.link(home / "platform.db", root / "hardlinked.db")
    os.link(home / "secret.key", root / "key.db")
    for name in ("symlinked.db", "hardlinked.db", "key.db"):
        with pytest.raises(Invalid) as info:
            _sqlite_driver(root / name, settings).check_config()
        assert info.value.code == "unsafe_path", name
    metadata_elsewhere = tmp_path / "meta" / "store.db"
    metadata_elsewhere.parent.mkdir()
    _make_db(metadata_elsewhere)
    moved = Settings(home=home, sqlite_roots=[tmp_path], database_url=f"sqlite:///{metadata_elsewhere}")
    with pytest.raises(Invalid) as info:
        _sqlite_driver(metadata_elsewhere, moved).check_config()
    assert info.value.code == "unsafe_path"


def test_the_path_is_checked_again_at_every_open(
    platform: RunningPlatform, project: pio.Project, tmp_path: Path
) -> None:
    """Attack: a file accepted at creation is replaced by a link to platform.db. The next snapshot resolves
    the path again and is refused (unsafe_path): the check is not only made when the connector is stored."""
    path = _make_db(tmp_path / "swap.db")
    connector = project.create_sql_connector("swap", driver="sqlite", database=str(path))
    source = project.create_datasource(connector, "tokens", table="tokens")
    path.unlink()
    os.symlink(platform.home / "platform.db", path)
    with pytest.raises(pio.JobFailedError) as info:
        project.create_dataset("stolen", datasource=source, progress=False)
    assert info.value.code == "unsafe_path"
    assert project.list_datasets() == []


# -- PostgreSQL (and MySQL) requests -------------------------------------------------------------------------
def _victim(pg_exec, name: str) -> None:
    pg_exec(f"CREATE TABLE {name} (id integer)")
    pg_exec(f"INSERT INTO {name} VALUES (1), (2), (3)")
    pg_exec(f"GRANT ALL ON {name} TO {PG_SCRAM_USER}")


@pytest.mark.parametrize("check", [True, False], ids=["checked", "unchecked"])
def test_request_cannot_leave_its_read_only_transaction(
    project: pio.Project, pg_connector: pio.SQLConnector, pg_exec, check: bool
) -> None:
    """Attack: the creation check pasted the request into ``SELECT * FROM (...)``, so ``SELECT 1) AS a;
    COMMIT; BEGIN READ WRITE; DELETE FROM victim; COMMIT; SELECT (1`` ran several statements and deleted
    rows. The request is parsed as one statement first: refused (invalid_source), the rows stay."""
    victim = f"victim_{uuid.uuid4().hex[:8]}"
    _victim(pg_exec, victim)
    attack = f"SELECT 1) AS a; COMMIT; BEGIN READ WRITE; DELETE FROM {victim}; COMMIT; SELECT (1"
    with pytest.raises(pio.ValidationError) as info:
        project.create_datasource(pg_connector, "inject", request=attack, check=check)
    assert info.value.code == "invalid_source"
    assert pg_exec(f"SELECT COUNT(*) FROM {victim}") == [(3,)]
    assert project.list_datasource() == []


@pytest.mark.parametrize(
    "attack",
    [
        "/* a comment first */ COPY (SELECT 1) TO PROGRAM 'touch /tmp/previsio-pwned'",
        "-- a comment first\nCOPY (SELECT 1) TO PROGRAM 'touch /tmp/previsio-pwned'",
        "SELECT lo_import('/etc/hostname')",
        "SELECT lo_from_bytea(0, 'persisted')",
    ],
    ids=["block-comment-copy", "line-comment-copy", "lo_import", "lo_from_bytea"],
)
def test_side_effecting_requests_are_refused_and_leave_nothing(
    project: pio.Project, pg_connector: pio.SQLConnector, pg_exec, attack: str
) -> None:
    """Attack: a leading comment let ``COPY ... TO PROGRAM`` past the first-word check, and ``lo_import``
    persisted a large object. Both are refused at creation, checked or not, and no large object exists."""
    before = pg_exec("SELECT COUNT(*) FROM pg_largeobject_metadata")
    for check in (True, False):
        with pytest.raises(pio.ValidationError) as info:
            project.create_datasource(pg_connector, "side", request=attack, check=check)
        assert info.value.code == "invalid_source"
    assert pg_exec("SELECT COUNT(*) FROM pg_largeobject_metadata") == before
    assert not Path("/tmp/previsio-pwned").exists()


def test_a_second_statement_is_refused_by_postgresql_itself(
    pg_database: str, pg_exec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below the statement check: with the check switched off, a request holding a second statement is sent
    through the extended protocol, which the server refuses: nothing ran."""
    victim = f"victim_{uuid.uuid4().hex[:8]}"
    _victim(pg_exec, victim)
    monkeypatch.setattr(sql_driver_module, "check_request", lambda sql, dialect: None)
    config = ConnectorConfig(
        type="sql",
        driver="postgresql",
        host="127.0.0.1",
        port=5432,
        username=PG_SCRAM_USER,
        database=pg_database,
        secrets={"password": PG_SCRAM_PASSWORD},
    )
    driver = SQLDriver(config)
    spec = SourceSpec(request=f"SELECT 1 AS a; DELETE FROM {victim}")
    with pytest.raises(DriverError) as info:
        with driver.open_reader(spec, batch_rows=10) as reader:
            reader.read_all()
    assert "multiple commands" in info.value.message
    assert pg_exec(f"SELECT COUNT(*) FROM {victim}") == [(3,)]


@pytest.fixture
def pg_superuser_connector(project: pio.Project, pg_database: str) -> pio.SQLConnector:
    """A connector of the session's PostgreSQL database as the superuser ``postgres``."""
    return project.create_sql_connector(
        "pg-super",
        host="127.0.0.1",
        port=5432,
        username="postgres",
        database=pg_database,
        driver="postgresql",
    )


def test_requests_on_a_superuser_connector_are_refused(
    project: pio.Project, pg_superuser_connector: pio.SQLConnector, pg_exec
) -> None:
    """A request datasource on a PostgreSQL superuser is refused (422 privileged_role) at creation, and an
    unchecked one fails its snapshot the same way; table datasources on that connector stay allowed."""
    table = f"super_{uuid.uuid4().hex[:8]}"
    _victim(pg_exec, table)
    with pytest.raises(pio.ValidationError) as info:
        project.create_datasource(pg_superuser_connector, "q", request=f"SELECT id FROM {table}")
    assert info.value.code == "privileged_role"
    assert "superuser" in info.value.message
    unchecked = project.create_datasource(
        pg_superuser_connector, "q", request=f"SELECT id FROM {table}", check=False
    )
    with pytest.raises(pio.JobFailedError) as failed:
        project.create_dataset("q", datasource=unchecked, progress=False)
    assert failed.value.code == "privileged_role"
    source = project.create_datasource(pg_superuser_connector, "t", table=table)
    assert project.create_dataset("t", datasource=source, progress=False).num_rows == 3


def test_requests_on_a_mysql_user_with_the_file_privilege_are_refused(
    project: pio.Project, my_database: str, my_exec
) -> None:
    """A request datasource on a MySQL user holding FILE or SUPER (root here) is refused: privileged_role."""
    connector = project.create_sql_connector(
        "maria-root", host="127.0.0.1", port=3306, username="root", database=my_database, driver="mysql"
    )
    with pytest.raises(pio.ValidationError) as info:
        project.create_datasource(connector, "q", request="SELECT 1 AS one")
    assert info.value.code == "privileged_role"
    assert "FILE" in info.value.message
    mine = project.create_sql_connector(
        "maria-user",
        host="127.0.0.1",
        port=3306,
        username=MY_USER,
        password=MY_PASSWORD,
        database=my_database,
        driver="mysql",
    )
    assert project.create_datasource(mine, "q", request="SELECT 1 AS one").request == "SELECT 1 AS one"


# -- Credentials in connection strings -----------------------------------------------------------------------
#: A password of every character URLs and connection strings treat specially.
SPECIAL_USER = "previsio_special"
SPECIAL_PASSWORD = "sp ace+plus%25@host/'quote\\back\"dq"
SUITE_SECRETS.add(SPECIAL_PASSWORD)


@pytest.fixture
def special_role(pg_database: str, pg_exec) -> str:
    """A PostgreSQL role with :data:`SPECIAL_PASSWORD`, which must log in with it (scram, tools/test.sh)."""
    with psycopg.connect(
        host="127.0.0.1", port=5432, user="postgres", dbname="postgres", autocommit=True
    ) as c:
        c.execute("SET password_encryption = 'scram-sha-256'")
        exists = c.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (SPECIAL_USER,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        c.execute(
            psycopg_sql.SQL("{} ROLE {} LOGIN PASSWORD {}").format(
                psycopg_sql.SQL(verb),
                psycopg_sql.Identifier(SPECIAL_USER),
                psycopg_sql.Literal(SPECIAL_PASSWORD),
            )
        )
        c.execute(f'GRANT ALL ON DATABASE "{pg_database}" TO {SPECIAL_USER}')
    pg_exec(f"GRANT ALL ON SCHEMA public TO {SPECIAL_USER}")
    return SPECIAL_USER


def _no_password_form(text: str) -> None:
    for form in secret_forms(SPECIAL_PASSWORD) | base_secret_forms(SPECIAL_PASSWORD):
        assert form not in text, (form, text)


def test_a_password_of_special_characters_connects_and_never_shows_in_errors(
    project: pio.Project, pg_database: str, pg_exec, special_role: str, tmp_path: Path
) -> None:
    """Attack route: a PostgreSQL password with a space or ``+`` leaked URL-encoded into job errors viewers
    read, and such connectors could never snapshot. Connection parameters are now passed as a quoted libpq
    connection string: the password works for snapshots and exports, and no form of it is in any error."""
    table = f"special_{uuid.uuid4().hex[:8]}"
    pg_exec(f"CREATE TABLE {table} (id integer)")
    pg_exec(f"INSERT INTO {table} VALUES (1), (2)")
    pg_exec(f"GRANT ALL ON {table} TO {special_role}")
    wrong = project.create_sql_connector(
        "wrong", host="127.0.0.1", port=5432, username=special_role, password="not it", database=pg_database
    )
    outcome = wrong.test()
    assert not outcome, "the role logs in without its password: add its scram rule (tools/test.sh)"
    connector = project.create_sql_connector(
        "special",
        host="127.0.0.1",
        port=5432,
        username=special_role,
        password=SPECIAL_PASSWORD,
        database=pg_database,
    )
    assert connector.test()
    source = project.create_datasource(connector, "ok", table=table)
    assert project.create_dataset("ok", datasource=source, progress=False).num_rows == 2
    missing = project.create_datasource(connector, "missing", table="no_such_table", check=False)
    with pytest.raises(pio.JobFailedError) as failed:
        project.create_dataset("missing", datasource=missing, progress=False)
    assert failed.value.code == "source_not_found"
    _no_password_form(str(failed.value))
    exporter = project.create_exporter(connector, "out", table=f"{table}_out", write_mode="replace")
    export = exporter.export_dataset(
        _upload(project, _people(3), tmp_path), wait_for_export=True, progress=False
    )
    assert export.rows == 3
    assert pg_exec(f"SELECT COUNT(*) FROM {table}_out") == [(3,)]
    bad = project.create_exporter(connector, "bad", table="no_schema.t", write_mode="append")
    with pytest.raises(pio.JobFailedError) as failed:
        bad.export_dataset(_upload(project, _people(1), tmp_path), wait_for_export=True, progress=False)
    _no_password_form(str(failed.value))


@pytest.mark.parametrize(
    "text_of",
    [
        lambda p: f"postgresql://u:{quote(p, safe='')}@h/db",
        lambda p: f"postgresql://u:{quote_plus(p)}@h/db",
        lambda p: f"mysql://u:{quote(p)}@h/db",
        lambda p: "password='" + p.replace("\\", "\\\\").replace("'", "\\'") + "' host=h",
        lambda p: f"connect({p!r})",
        lambda p: json.dumps({"password": p}),
    ],
    ids=["url-component", "url-plus", "url-path", "libpq-conninfo", "python-repr", "json"],
)
def test_redaction_covers_every_encoded_form_of_a_password(text_of) -> None:  # type: ignore[no-untyped-def]
    """A driver error echoing a connection string (URL-encoded, libpq-quoted, a repr, JSON) is redacted."""
    text = text_of(SPECIAL_PASSWORD)
    cleaned = redact(text, {"password": SPECIAL_PASSWORD})
    assert "***" in cleaned
    _no_password_form(cleaned)


# -- Nothing left behind: staging tables of interrupted exports ----------------------------------------------
#: Run by the test below in a process it kills: an export whose rows stop coming after the first batch.
_STALLED_WRITER = """
import os, sys, time
import pyarrow as pa
from previsio_sdk.server.drivers import ConnectorConfig, DestinationSpec, WriteMode
from previsio_sdk.server.drivers import sql as sql_driver_module
from previsio_sdk.server.drivers.base import SourceSpec
from previsio_sdk.server.drivers.sql import SQLDriver

database, table, job_id = sys.argv[1:4]
config = ConnectorConfig(type="sql", driver="mysql", host="127.0.0.1", port=3306, username=os.environ["U"],
                         database=database, secrets={"password": os.environ["P"]})
schema = pa.schema([("id", pa.int64())])

def batches():
    yield pa.record_batch([pa.array([1], pa.int64())], schema=schema)
    time.sleep(3600)

reader = pa.RecordBatchReader.from_batches(schema, batches())
SQLDriver(config).write(DestinationSpec(table=table), reader, WriteMode.replace, None, job_id=job_id)
"""


def _mysql_tables(my_exec, like: str) -> list[str]:
    rows = my_exec(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = DATABASE() AND table_name LIKE %s",
        (like,),
    )
    return [r[0] for r in rows]


def test_a_killed_mysql_export_leaves_a_staging_table_that_discard_staging_removes(
    my_database: str, my_exec
) -> None:
    """Attack route: interrupted MariaDB exports left ``previsio_stage_*`` tables that no restart removed.
    The staging table is named after the export id, so that after the process running the export was killed
    (-9: no clean-up of its own), ``discard_staging`` with the same id leaves no ``previsio_stage_%`` table of
    it; a second run of the same export reuses the name."""
    job_id = uuid.uuid4().hex
    stage = f"previsio_stage_{job_id[:16]}"
    table = f"killed_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "U": MY_USER, "P": MY_PASSWORD}
    proc = subprocess.Popen([sys.executable, "-c", _STALLED_WRITER, my_database, table, job_id], env=env)
    try:
        deadline = time.monotonic() + 30
        while not _mysql_tables(my_exec, stage) and time.monotonic() < deadline:
            assert proc.poll() is None, "the writer ended before it created its staging table"
            time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait()
    assert _mysql_tables(my_exec, stage) == [stage]
    driver = _mysql_driver(3306, my_database)
    driver.discard_staging(DestinationSpec(table=table), job_id)
    assert _mysql_tables(my_exec, f"previsio_stage_{job_id[:16]}%") == []
    driver.discard_staging(DestinationSpec(table=table), job_id)  # nothing left: no error either
    data = _people(2)
    reader = pa.RecordBatchReader.from_batches(data.schema, data.to_batches())
    assert (
        driver.write(DestinationSpec(table=table), reader, WriteMode.replace, None, job_id=job_id).rows == 2
    )
    assert _mysql_tables(my_exec, "previsio_%") == []


def test_discard_staging_drops_a_postgresql_staging_table_of_the_export(
    pg_database: str, pg_exec, pg_connector: pio.SQLConnector
) -> None:
    """PostgreSQL writes stage inside their transaction (a killed one leaves nothing); a staging table of the
    export's name that exists anyway is dropped by ``discard_staging``, and one of another export is kept."""
    job_id, other = uuid.uuid4().hex, uuid.uuid4().hex
    for job in (job_id, other):
        pg_exec(f"CREATE TABLE previsio_stage_{job[:16]} (c0 integer)")
        pg_exec(f"ALTER TABLE previsio_stage_{job[:16]} OWNER TO {PG_SCRAM_USER}")
    config = ConnectorConfig(
        type="sql",
        driver="postgresql",
        host="127.0.0.1",
        port=5432,
        username=PG_SCRAM_USER,
        database=pg_database,
        secrets={"password": PG_SCRAM_PASSWORD},
    )
    SQLDriver(config).discard_staging(DestinationSpec(table="anything"), job_id)
    left = pg_exec("SELECT tablename FROM pg_tables WHERE tablename LIKE 'previsio_stage_%%'")
    assert (f"previsio_stage_{job_id[:16]}",) not in left
    assert (f"previsio_stage_{other[:16]}",) in left
    pg_exec(f"DROP TABLE previsio_stage_{other[:16]}")


def test_a_mysql_password_of_special_characters_connects_and_never_shows_in_errors(
    project: pio.Project, my_database: str, my_exec
) -> None:
    """The same password on MariaDB: ConnectorX takes a URL, so the password is percent-encoded in it; the
    snapshot works and a failing one shows no form of the password."""
    table = f"special_{uuid.uuid4().hex[:8]}"
    my_exec(f"CREATE TABLE {table} (id integer)")
    my_exec(f"INSERT INTO {table} VALUES (1), (2)")
    my_exec(f"CREATE USER IF NOT EXISTS '{SPECIAL_USER}'@'%%' IDENTIFIED BY %s", (SPECIAL_PASSWORD,))
    my_exec(f"ALTER USER '{SPECIAL_USER}'@'%%' IDENTIFIED BY %s", (SPECIAL_PASSWORD,))
    my_exec(f"GRANT ALL ON `{my_database}`.* TO '{SPECIAL_USER}'@'%'")
    try:
        connector = project.create_sql_connector(
            "special-maria",
            host="127.0.0.1",
            port=3306,
            username=SPECIAL_USER,
            password=SPECIAL_PASSWORD,
            database=my_database,
            driver="mysql",
        )
        source = project.create_datasource(connector, "ok", table=table)
        assert project.create_dataset("ok", datasource=source, progress=False).num_rows == 2
        missing = project.create_datasource(connector, "missing", table="no_such_table", check=False)
        with pytest.raises(pio.JobFailedError) as failed:
            project.create_dataset("missing", datasource=missing, progress=False)
        assert failed.value.code == "source_not_found"
        _no_password_form(str(failed.value))
    finally:
        my_exec(f"DROP USER IF EXISTS '{SPECIAL_USER}'@'%'")
