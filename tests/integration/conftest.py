"""Fixtures of the integration suite: the real platform in a subprocess, real PostgreSQL and MariaDB.

The platform is started with ``python -m previsio_sdk.server`` on 127.0.0.1 and a free port, in a temporary
home; its log (stdout and stderr, access log included) goes to a file that the secrets test reads. Databases
are created fresh for the session and dropped at the end. A service that is down fails the suite: nothing here
skips.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import psycopg
import pymysql
import pytest
import requests

import previsio_sdk as pio

PG_HOST, PG_PORT, PG_SUPERUSER = "127.0.0.1", 5432, "postgres"
MY_HOST, MY_PORT, MY_SUPERUSER = "127.0.0.1", 3306, "root"

#: Role set up by tools/test.sh with a pg_hba rule requiring scram-sha-256 (the server trusts all others).
PG_SCRAM_USER, PG_SCRAM_PASSWORD = "previsio_scram", "scram-Secret-4711"
#: MariaDB user created by the fixtures below, with a password.
MY_USER, MY_PASSWORD = "previsio_it", "maria-Secret-0815"

#: Every credential the suite hands to a platform; none may show in a platform log or an answer (see
#: ``_no_secret_leaves_a_platform`` below). Tests add the ones they make up with ``SUITE_SECRETS.add``.
SUITE_SECRETS: set[str] = {PG_SCRAM_PASSWORD, MY_PASSWORD}
#: The admin tokens of the platforms started by ``start_platform``: never in their logs either.
PLATFORM_TOKENS: set[str] = set()


@dataclass
class RunningPlatform:
    """A platform process started for the tests."""

    url: str
    token: str
    home: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def client(self, token: str | None = None) -> pio.Client:
        """A new SDK client for this platform."""
        return pio.Client(url=self.url, token=token or self.token)

    def log_text(self) -> str:
        """Everything the platform printed so far."""
        return self.log_path.read_text(errors="replace")


def start_platform(
    home: Path, env: dict[str, str] | None = None, timeout: float = 60.0, *, local: bool = True
) -> RunningPlatform:
    """Start ``python -m previsio_sdk.server --port 0`` in ``home`` and wait until it answers.

    With ``local`` (the default) it runs as the embedded local platform (``--local``: it publishes its URL in
    ``platform.json``, and its connectors may reach loopback servers); without, as ``previsio serve`` does,
    with its network guard on: it is given a random ``PREVISIO_BOOTSTRAP_TOKEN`` (so that no token is
    printed) and found by the URL it prints.
    """
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "test-platform.log"
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PREVISIO_URL", None)
    if not local:
        full_env.setdefault("PREVISIO_BOOTSTRAP_TOKEN", f"pvo_test_{uuid.uuid4().hex}")
    with open(log_path, "ab") as log:
        start = log.tell()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "previsio_sdk.server",
                *(["--local"] if local else []),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--home",
                str(home),
                "--log-level",
                "debug",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
        )
    deadline = time.monotonic() + timeout
    state = home / "platform.json"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"platform exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if local:
                url = json.loads(state.read_text())["url"] if state.exists() else None
            else:
                printed = log_path.read_bytes()[start:].decode(errors="replace")
                found = re.search(r"listening on (http://\S+)", printed)
                url = found.group(1) if found else None
            if url and requests.get(f"{url}/api/v1/health", timeout=2).ok:
                token = full_env["PREVISIO_BOOTSTRAP_TOKEN"] if not local else ""
                token = token or (home / "admin.token").read_text().strip()
                PLATFORM_TOKENS.add(token)
                return RunningPlatform(url, token, home, log_path, proc)
        except (ValueError, KeyError, requests.RequestException):
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"platform did not start in {timeout}s:\n{log_path.read_text()}")


def stop_platform(platform: RunningPlatform) -> None:
    """Stop a platform process (SIGTERM, then SIGKILL)."""
    platform.process.terminate()
    try:
        platform.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        platform.process.kill()
        platform.process.wait()


def secret_forms(secret: str) -> set[str]:
    """The ways a secret could show up: as is, URL-quoted, JSON-escaped."""
    return {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }


def _suite_secrets() -> set[str]:
    """SUITE_SECRETS, and the credentials the suite's modules define (file servers, the secrets test)."""
    found = set(SUITE_SECRETS)
    for name, module in list(sys.modules.items()):
        if not (name in ("fileservers", "conftest") or name.startswith("test_")) or module is None:
            continue
        for attr, value in vars(module).items():
            if (
                isinstance(value, str)
                and attr.isupper()
                and attr.endswith(("_PASSWORD", "_TOKEN", "_SECRET"))
                and "FILE" not in attr
            ):
                found.add(value)
        found.update(s for s in getattr(module, "ALL_SECRETS", ()) if isinstance(s, str))
    return {s for s in found if len(s) >= 6}


#: The only networks a platform started by the suite may reach: tests talk to loopback servers, nothing else.
#: Every platform process the suite starts (start_platform, the SDK's embedded platform, a cluster) inherits
#: it, so an example or a test naming another address is refused before a packet leaves (address_not_allowed).
LOOPBACK_ONLY = {
    "PREVISIO_ALLOWED_NETWORKS": '["127.0.0.0/8", "::1/128"]',
    "PREVISIO_ALLOWED_NETWORKS_ONLY": "true",
}


@pytest.fixture(scope="package", autouse=True)
def _platforms_reach_loopback_only() -> Iterator[None]:
    """Set :data:`LOOPBACK_ONLY` in the environment the suite's platforms inherit, for this package."""
    saved = {name: os.environ.get(name) for name in LOOPBACK_ONLY}
    os.environ.update(LOOPBACK_ONLY)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session", autouse=True)
def _no_secret_leaves_a_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After the whole session: no credential in any answer received, nor in any platform's log.

    Every answer the suite's ``requests`` calls receive (status line, headers, body unless streamed) is kept
    in a file; at the end it and every platform log (``start_platform``'s, the embedded local platforms',
    ``previsio serve``'s output) are searched for every credential the suite used, in clear, URL- or
    JSON-escaped, and for the platforms' admin tokens.
    """
    answers_path = tmp_path_factory.getbasetemp() / "all-answers.txt"
    original = requests.Session.send

    def send(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        resp = original(self, request, **kwargs)
        try:
            body = "" if kwargs.get("stream") else resp.text
            with open(answers_path, "a", encoding="utf-8", errors="replace") as out:
                out.write(
                    f"\n== {request.method} {request.url} -> {resp.status_code}\n{dict(resp.headers)}\n{body}"
                )
        except Exception:  # noqa: BLE001 - recording must never break a test
            pass
        return resp

    requests.Session.send = send  # type: ignore[method-assign]
    yield
    requests.Session.send = original  # type: ignore[method-assign]
    secrets = _suite_secrets()
    base = tmp_path_factory.getbasetemp()
    logs = [
        p for pattern in ("test-platform.log", "platform.log", "serve-*.out") for p in base.rglob(pattern)
    ]
    found = []
    for path in [answers_path, *logs]:
        if not path.exists():
            continue
        text = path.read_text(errors="replace")
        wanted = secrets | (PLATFORM_TOKENS if path.name == "test-platform.log" else set())
        for secret in wanted:
            hits = [form for form in secret_forms(secret) if form in text]
            if hits:
                at = text.find(hits[0])
                found.append((str(path.relative_to(base)), hits, text[max(0, at - 200) : at + 100]))
    assert {PG_SCRAM_PASSWORD, MY_PASSWORD} <= secrets
    assert found == [], f"credentials found in {len(found)} places (file, forms, context): {found}"


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    """The platform shared by the integration tests."""
    # The file tests' local connectors read below <base temp>/local-roots (tests/integration/fileservers.py).
    local_roots = json.dumps([str(tmp_path_factory.getbasetemp() / "local-roots")])
    running = start_platform(
        tmp_path_factory.mktemp("platform-home"), env={"PREVISIO_LOCAL_ROOTS": local_roots}
    )
    yield running
    stop_platform(running)


@pytest.fixture(scope="session")
def client(platform: RunningPlatform) -> pio.Client:
    """An SDK client with the admin token of the shared platform."""
    return platform.client()


@pytest.fixture
def project(client: pio.Client) -> Iterator[pio.Project]:
    """A fresh project, deleted after the test."""
    proj = pio.Project.new(f"it-{uuid.uuid4().hex[:10]}", description="integration test", client=client)
    yield proj
    try:
        proj.delete()
    except pio.NotFoundError:
        pass


# -- PostgreSQL ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for the session (dropped at the end)."""
    name = f"previsio_it_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_SUPERUSER, dbname="postgres", autocommit=True
    ) as c:
        c.execute(f'CREATE DATABASE "{name}"')
        c.execute(f'GRANT ALL ON DATABASE "{name}" TO {PG_SCRAM_USER}')
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_SUPERUSER, dbname=name, autocommit=True) as c:
        c.execute(f"GRANT ALL ON SCHEMA public TO {PG_SCRAM_USER}")
        c.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {PG_SCRAM_USER}")
    yield name
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_SUPERUSER, dbname="postgres", autocommit=True
    ) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_exec(pg_database: str):  # type: ignore[no-untyped-def]
    """Run SQL statements as the PostgreSQL superuser in the session database."""

    def run(sql: str, params: tuple | None = None) -> list[tuple]:  # type: ignore[type-arg]
        with psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_SUPERUSER, dbname=pg_database, autocommit=True
        ) as c:
            cur = c.execute(sql, params)
            return cur.fetchall() if cur.description else []

    return run


@pytest.fixture
def pg_connector(project: pio.Project, pg_database: str) -> pio.SQLConnector:
    """An SQL connector to the session's PostgreSQL database, through the scram-authenticated role."""
    return project.create_sql_connector(
        "pg",
        host=PG_HOST,
        port=PG_PORT,
        username=PG_SCRAM_USER,
        password=PG_SCRAM_PASSWORD,
        database=pg_database,
    )


# -- MariaDB -------------------------------------------------------------------------------------------------
def _mysql_root(database: str | None = None) -> pymysql.connections.Connection:
    return pymysql.connect(
        host=MY_HOST, port=MY_PORT, user=MY_SUPERUSER, password="", database=database, autocommit=True
    )


@pytest.fixture(scope="session")
def my_database() -> Iterator[str]:
    """A fresh MariaDB database for the session, and a user with a password allowed to read it."""
    name = f"previsio_it_{uuid.uuid4().hex[:8]}"
    con = _mysql_root()
    with con.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}`")
        cur.execute(f"CREATE USER IF NOT EXISTS '{MY_USER}'@'%' IDENTIFIED BY '{MY_PASSWORD}'")
        cur.execute(f"CREATE USER IF NOT EXISTS '{MY_USER}'@'localhost' IDENTIFIED BY '{MY_PASSWORD}'")
        cur.execute(f"ALTER USER '{MY_USER}'@'%' IDENTIFIED BY '{MY_PASSWORD}'")
        cur.execute(f"ALTER USER '{MY_USER}'@'localhost' IDENTIFIED BY '{MY_PASSWORD}'")
        cur.execute(f"GRANT ALL ON `{name}`.* TO '{MY_USER}'@'%'")
        cur.execute(f"GRANT ALL ON `{name}`.* TO '{MY_USER}'@'localhost'")
    con.close()
    yield name
    con = _mysql_root()
    with con.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    con.close()


@pytest.fixture
def my_exec(my_database: str):  # type: ignore[no-untyped-def]
    """Run SQL statements as MariaDB root in the session database."""

    def run(sql: str, params: tuple | None = None) -> list[tuple]:  # type: ignore[type-arg]
        con = _mysql_root(my_database)
        try:
            with con.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall()) if cur.description else []
        finally:
            con.close()

    return run


@pytest.fixture
def my_connector(project: pio.Project, my_database: str) -> pio.SQLConnector:
    """An SQL connector to the session's MariaDB database, with a password-protected user."""
    return project.create_sql_connector(
        "maria",
        host=MY_HOST,
        port=MY_PORT,
        username=MY_USER,
        password=MY_PASSWORD,
        database=my_database,
    )


# -- SQLite --------------------------------------------------------------------------------------------------
@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    """Path of a new, empty SQLite database file."""
    return tmp_path / "it.db"


# -- shared by the SQL suites (test_sql_*.py) -------------------------------------------------------------
@dataclass
class SQLBackend:
    """One SQL database behind a connector of the test's project, and a way to change it as its superuser."""

    driver: str
    connector: pio.SQLConnector
    exec: Callable[..., list[tuple]]  # type: ignore[type-arg]


def sqlite_exec(path: Path):  # type: ignore[no-untyped-def]
    """Like pg_exec and my_exec, for an SQLite file (autocommit)."""

    def run(sql: str, params: tuple | None = None) -> list[tuple]:  # type: ignore[type-arg]
        con = sqlite3.connect(path, isolation_level=None)
        try:
            cur = con.execute(sql, params or ())
            return cur.fetchall() if cur.description else []
        finally:
            con.close()

    return run


def make_sql_backend(request: pytest.FixtureRequest, project: pio.Project, driver: str) -> SQLBackend:
    """The SQLBackend of ``driver`` ("postgresql", "mysql" or "sqlite") in ``project``."""
    if driver == "postgresql":
        pg = request.getfixturevalue("pg_connector")
        return SQLBackend("postgresql", pg, request.getfixturevalue("pg_exec"))
    if driver == "mysql":
        maria = request.getfixturevalue("my_connector")
        return SQLBackend("mysql", maria, request.getfixturevalue("my_exec"))
    path: Path = request.getfixturevalue("sqlite_path")
    run = sqlite_exec(path)
    run("CREATE TABLE IF NOT EXISTS _created (x INTEGER)")  # the file exists before the connector reads it
    connector = project.create_sql_connector("lite", driver="sqlite", database=str(path))
    return SQLBackend("sqlite", connector, run)


@pytest.fixture(params=["postgresql", "mysql", "sqlite"])
def sql_backend(request: pytest.FixtureRequest, project: pio.Project) -> SQLBackend:
    """Each SQL database in turn: PostgreSQL (scram role), MariaDB (password user), an SQLite file."""
    return make_sql_backend(request, project, request.param)


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """Make a table name no other test of the session uses (the server databases live for the session)."""
    return lambda prefix: f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def closed_port() -> int:
    """A TCP port of 127.0.0.1 on which nothing listens (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- raw HTTP calls (test_platform_*.py, test_uploads.py, test_secrets.py) ---------------------------------
@pytest.fixture
def api(platform: RunningPlatform) -> Callable[..., requests.Response]:
    """Send one raw HTTP request to the shared platform, below ``/api/v1``, with the admin token by default.

    ``api("GET", "/projects", token=None)`` sends no ``Authorization`` header; ``token="..."`` sends that
    token; other keyword arguments go to ``requests.request`` (``json=``, ``data=``, ``params=``...).
    """

    def send(method: str, path: str, *, token: object = ..., **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if token is ...:
            token = platform.token
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, f"{platform.url}/api/v1{path}", headers=headers, timeout=60, **kwargs)

    return send
