"""Network access of connectors and where their credentials go, against a real platform.

Every server here listens on the loopback range (127.0.0.1 and 127.0.0.2): a ``previsio serve`` platform that
allows only 127.0.0.2/32 shows loopback refused (its own API included) and a redirect from the allowed host
refused; other denied ranges are shown refused without traffic in ``tests/unit/test_netguard.py``.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import (
    MY_PORT,
    MY_SUPERUSER,
    PG_HOST,
    PG_PORT,
    PG_SCRAM_PASSWORD,
    PG_SCRAM_USER,
    RunningPlatform,
    start_platform,
    stop_platform,
)

import previsio_sdk as pio

CSV = b"id,name\n1,a\n2,b\n"
HTTP_PASSWORD = "http-Secret-7731"
BEARER_TOKEN = "bearer-Secret-5512"
FTP_PASV_PASSWORD = "ftp-Secret-2290"


class Recorder:
    """A loopback HTTP server serving ``/data.csv``, redirecting ``/moved.csv`` to ``redirect_to``, and
    recording the path and ``Authorization`` header of every request it receives."""

    def __init__(self, host: str = "127.0.0.1", redirect_to: str | None = None) -> None:
        self.requests: list[tuple[str, str | None]] = []
        self.redirect_to = redirect_to
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                recorder.requests.append((self.path, self.headers.get("Authorization")))
                if self.path.startswith("/moved") and recorder.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", recorder.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", str(len(CSV)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(CSV)

            do_HEAD = do_GET  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorders() -> Iterator[list[Recorder]]:
    """Recorders made by a test, closed after it."""
    made: list[Recorder] = []
    yield made
    for r in made:
        r.close()


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    """A platform started as ``previsio serve`` (network guard on) that allows 127.0.0.2/32 only."""
    running = start_platform(
        tmp_path_factory.mktemp("guarded-home"),
        env={"PREVISIO_ALLOWED_NETWORKS": '["127.0.0.2/32"]'},
        local=False,
    )
    yield running
    stop_platform(running)


@pytest.fixture
def guarded_project(guarded: RunningPlatform) -> Iterator[pio.Project]:
    project = pio.Project.new(f"guard-{uuid.uuid4().hex[:8]}", client=guarded.client())
    yield project
    project.delete()


# -- A: network access ---------------------------------------------------------------------------------------
def test_serve_refuses_loopback_hosts_at_creation(
    guarded: RunningPlatform, guarded_project: pio.Project
) -> None:
    """previsio serve refuses connectors to 127.0.0.1, localhost and the platform's own API with a 422
    address_not_allowed naming the setting to change; nothing is stored."""
    attempts = [
        lambda: guarded_project.create_http_connector("own-api", host=f"{guarded.url}/api/v1"),
        lambda: guarded_project.create_http_connector("lh", host="http://localhost:8000"),
        lambda: guarded_project.create_sql_connector("pg", host=PG_HOST, port=PG_PORT, driver="postgresql"),
        lambda: guarded_project.create_ftp_connector("ftp", host="127.0.0.1", port=21),
        lambda: guarded_project.create_s3_connector("s3", host="http://[::1]:9000"),
    ]
    for attempt in attempts:
        with pytest.raises(pio.ValidationError) as info:
            attempt()
        assert info.value.code == "address_not_allowed"
        assert "PREVISIO_ALLOWED_NETWORKS" in info.value.message
    assert guarded_project.list_connectors() == []


def test_serve_refuses_a_redirect_out_of_the_allowed_network(
    guarded: RunningPlatform, guarded_project: pio.Project, recorders: list[Recorder]
) -> None:
    """An allowed host (127.0.0.2) is read; its redirect to 127.0.0.1 (the platform's own API) is refused
    after the redirect, before connecting, with address_not_allowed; the target receives nothing."""
    target = Recorder("127.0.0.1")
    allowed = Recorder("127.0.0.2", redirect_to=f"{target.url}/data.csv")
    recorders += [target, allowed]
    connector = guarded_project.create_http_connector("allowed", host=allowed.url)
    source = guarded_project.create_datasource(connector, "direct", path="data.csv")
    assert guarded_project.create_dataset("direct", datasource=source).num_rows == 2
    with pytest.raises(pio.ValidationError) as info:
        guarded_project.create_datasource(connector, "moved", path="moved.csv")
    assert info.value.code == "address_not_allowed"
    assert "'127.0.0.1'" in info.value.message
    assert any(path.startswith("/moved") for path, _ in allowed.requests)
    assert target.requests == []


def test_serve_refuses_an_update_to_a_denied_host(
    guarded_project: pio.Project, recorders: list[Recorder]
) -> None:
    """Moving a stored connector to a denied address is refused like creating one; it keeps its address."""
    allowed = Recorder("127.0.0.2")
    recorders.append(allowed)
    connector = guarded_project.create_http_connector("movable", host=allowed.url)
    with pytest.raises(pio.ValidationError) as info:
        connector.update(host="http://127.0.0.1:9")
    assert info.value.code == "address_not_allowed"
    assert pio.Connector.from_id(connector.id, client=guarded_project.client).host == allowed.url


def test_the_embedded_platform_reaches_loopback(project: pio.Project, recorders: list[Recorder]) -> None:
    """The embedded local platform (--local, one user who is the operator) lets connectors reach loopback."""
    server = Recorder("127.0.0.1")
    recorders.append(server)
    connector = project.create_http_connector("loop", host=server.url)
    assert connector.test()
    source = project.create_datasource(connector, "data", path="data.csv")
    assert project.create_dataset("data", datasource=source).num_rows == 2


# -- B: credentials stay with their origin -------------------------------------------------------------------
@pytest.mark.parametrize("auth", ["basic", "bearer"])
def test_credentials_are_not_sent_to_another_origin(
    project: pio.Project, recorders: list[Recorder], auth: str
) -> None:
    """Basic credentials and bearer tokens go to the connector's origin, and not to the other origin (another
    port) that it redirects to: the redirect is followed without the Authorization header."""
    other = Recorder("127.0.0.1")
    own = Recorder("127.0.0.1", redirect_to=f"{other.url}/data.csv")
    recorders += [other, own]
    if auth == "basic":
        connector = project.create_http_connector("auth", host=own.url, username="me", password=HTTP_PASSWORD)
        expected = "Basic " + base64.b64encode(f"me:{HTTP_PASSWORD}".encode()).decode()
    else:
        connector = project.create_http_connector("auth", host=own.url, token=BEARER_TOKEN)
        expected = f"Bearer {BEARER_TOKEN}"
    source = project.create_datasource(connector, "moved", path="moved.csv")
    assert project.create_dataset("moved", datasource=source).num_rows == 2
    assert own.requests and all(header == expected for _, header in own.requests)
    assert other.requests and all(header is None for _, header in other.requests)


@pytest.fixture
def editor(client: pio.Client, project: pio.Project, platform: RunningPlatform) -> pio.Client:
    """A client of an editor of ``project`` (not its owner)."""
    user = pio.User.create(f"editor-{uuid.uuid4().hex[:8]}", client=client)
    token = user.create_token(expires_in_days=1)
    project.add_member(user, "editor")
    return platform.client(token.value)


def test_moving_a_connector_without_its_secret_clears_it(
    project: pio.Project, editor: pio.Client, recorders: list[Recorder]
) -> None:
    """An editor who points a colleague's HTTP connector at their own server gets a connector without the
    password (needs_credentials): their server receives no credentials, whatever they do with it."""
    owners = Recorder("127.0.0.1")
    theirs = Recorder("127.0.0.1")
    recorders += [owners, theirs]
    created = project.create_http_connector("shared", host=owners.url, username="me", password=HTTP_PASSWORD)
    connector = pio.Connector.from_id(created.id, client=editor)
    connector.update(host=theirs.url)
    assert connector.needs_credentials and not connector.has_password
    outcome = connector.test()
    assert not outcome and outcome.code == "needs_credentials"
    assert "address changed" in outcome.message
    stolen = pio.Project.from_id(project.id, client=editor).create_datasource(
        connector, "steal", path="data.csv"
    )
    assert stolen.id and theirs.requests  # the connector was used against their server, without the password
    for _, header in theirs.requests:
        sent = base64.b64decode(header.split()[1]).decode() if header else ""
        assert HTTP_PASSWORD not in sent


def test_moving_a_database_connector_sends_no_password(
    project: pio.Project, editor: pio.Client, closed_port: int
) -> None:
    """A PostgreSQL connector moved to another port by an editor loses its password; a listener there (a
    fake database) receives nothing of it. Renaming or giving the password again keeps it working."""
    received: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    received.append(conn.recv(65536))
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        created = project.create_sql_connector(
            "pg", host=PG_HOST, port=PG_PORT, driver="postgresql", username=PG_SCRAM_USER,
            password=PG_SCRAM_PASSWORD, database="postgres",
        )  # fmt: skip
        connector = pio.Connector.from_id(created.id, client=editor)
        connector.update(name="pg-renamed")
        assert connector.has_password and not connector.needs_credentials
        assert connector.test()
        connector.update(port=listener.getsockname()[1])
        assert connector.needs_credentials and not connector.has_password
        assert connector.test().code == "needs_credentials"
        connector.update(port=PG_PORT, password=PG_SCRAM_PASSWORD)
        assert connector.has_password and not connector.needs_credentials
        assert connector.test()
    finally:
        stop.set()
        thread.join(5)
        listener.close()
    assert not any(PG_SCRAM_PASSWORD.encode() in data for data in received)


# -- configuration errors and the start-up banner ------------------------------------------------------------
def test_a_bad_database_url_fails_start_up_without_its_password(tmp_path: Path, closed_port: int) -> None:
    """previsio serve and previsio user, given a database URL whose server is unreachable, exit 1 with a
    one-line error that does not hold the URL's password in any form."""
    secret = "dbpw-Secret+9 3"
    url = f"postgresql://someone:{secret.replace('+', '%2B').replace(' ', '%20')}@127.0.0.1:{closed_port}/x"
    env = {**os.environ, "PREVISIO_DATABASE_URL": url, "PREVISIO_HOME": str(tmp_path)}
    for argv in (["-m", "previsio_sdk.server", "--port", "0"], ["-m", "previsio_sdk.cli", "user", "list"]):
        done = subprocess.run(
            [sys.executable, *argv], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        output = done.stdout + done.stderr
        assert done.returncode == 1, output
        assert "error:" in output and "Traceback" not in output
        for form in (secret, "dbpw-Secret%2B9%203", "dbpw-Secret", json.dumps(secret)[1:-1]):
            assert form not in output


def test_an_operator_supplied_bootstrap_token_is_not_printed(guarded: RunningPlatform) -> None:
    """The serve platform was given PREVISIO_BOOTSTRAP_TOKEN: its output says so and holds nothing of it."""
    log = guarded.log_text()
    assert "PREVISIO_BOOTSTRAP_TOKEN" in log
    assert guarded.token not in log and guarded.token[:12] not in log


def test_ftp_data_connections_go_to_the_control_peer(tmp_path: Path) -> None:
    """An FTP server whose PASV replies name another address (127.0.0.2) cannot aim the data connections
    there: the driver connects them to the control connection's peer, and reads the file."""
    from ftplib import FTP

    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.ioloop import IOLoop
    from pyftpdlib.servers import FTPServer

    from previsio_sdk.server.drivers import ConnectorConfig, SourceSpec, driver_class

    (tmp_path / "data.csv").write_bytes(CSV)
    authorizer = DummyAuthorizer()
    authorizer.add_user("reader", FTP_PASV_PASSWORD, str(tmp_path), perm="elr")
    handler = type(
        "PasvHandler", (FTPHandler,), {"authorizer": authorizer, "masquerade_address": "127.0.0.2"}
    )
    # A server of its own loop, single-threaded: ThreadedFTPServer.close_all() would stop the threads of every
    # ThreadedFTPServer of the process (a class-level event), the suite's FTP server included.
    server = FTPServer(("127.0.0.1", 0), handler, ioloop=IOLoop())
    port = server.socket.getsockname()[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.5}, daemon=True)
    thread.start()
    try:
        trusting = FTP()
        trusting.connect("127.0.0.1", port, timeout=5)
        trusting.login("reader", FTP_PASV_PASSWORD)
        trusting.trust_server_pasv_ipv4_address = True  # what the driver must not do
        with pytest.raises(OSError):
            trusting.nlst()
        trusting.close()
        settings = SimpleNamespace(
            deny_private_networks=True, allowed_networks=["127.0.0.1/32"], tmp_dir=tmp_path
        )
        cls = driver_class("ftp")
        config = cls.normalize_config(
            ConnectorConfig(
                type="ftp",
                host="127.0.0.1",
                port=port,
                username="reader",
                secrets={"password": FTP_PASV_PASSWORD},
            )
        )
        driver = cls(config, settings=settings)
        assert driver.test()
        with driver.open_reader(SourceSpec(path="data.csv"), batch_rows=10) as reader:
            assert reader.read_all().num_rows == 2
    finally:
        server.close_all()
        thread.join(5)


def _real_driver(kind: str, servers: Any, settings: Any, host: str) -> Any:
    """A driver of ``kind`` for the suite's real server of that kind, reached through ``host``."""
    from previsio_sdk.server.drivers import ConnectorConfig, driver_class

    if kind == "ftp":
        f = servers.ftp
        config = ConnectorConfig(
            type="ftp", host=host, port=f.port, username=f.username, secrets={"password": f.password}
        )
    elif kind == "sftp":
        t = servers.sftp
        config = ConnectorConfig(
            type="sftp", host=host, port=t.port, username=t.username, secrets={"password": t.password}
        )
    elif kind == "s3":
        b = servers.s3
        endpoint = b.endpoint.replace("127.0.0.1", host)
        config = ConnectorConfig(
            type="s3", host=endpoint, username=b.access_key, secrets={"password": b.secret_key},
            options={"region": "us-east-1", "bucket": b.bucket},
        )  # fmt: skip
    elif kind == "http":
        h = servers.http
        config = ConnectorConfig(
            type="http", host=h.url.replace("127.0.0.1", host), username=h.username,
            secrets={"password": h.password},
        )  # fmt: skip
    elif kind == "postgresql":
        config = ConnectorConfig(
            type="sql", driver="postgresql", host=host, port=PG_PORT, username=PG_SCRAM_USER,
            secrets={"password": PG_SCRAM_PASSWORD}, database="postgres",
        )  # fmt: skip
    else:
        config = ConnectorConfig(type="sql", driver="mysql", host=host, port=MY_PORT, username=MY_SUPERUSER)
    cls = driver_class(config.type)
    return cls(cls.normalize_config(config), settings=settings)


@pytest.mark.parametrize("kind", ["ftp", "sftp", "s3", "http", "postgresql", "mysql"])
def test_real_servers_in_an_allowed_network_are_reached(
    kind: str, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """With the guard on, each connector type reaches the suite's real server when 127.0.0.1/32 is allowed
    (through the checked address), and is refused with address_not_allowed, by name too, when it is not."""
    from fileservers import session_file_servers

    servers = session_file_servers(tmp_path_factory.getbasetemp())
    allowed = SimpleNamespace(
        deny_private_networks=True,
        allowed_networks=["127.0.0.1/32"],
        tmp_dir=tmp_path,
        query_timeout_seconds=0,
    )
    denied = SimpleNamespace(**{**vars(allowed), "allowed_networks": []})
    outcome = _real_driver(kind, servers, allowed, "127.0.0.1").test()
    assert outcome.ok, outcome.message
    for host in ("127.0.0.1", "localhost"):
        outcome = _real_driver(kind, servers, denied, host).test()
        assert (outcome.ok, outcome.code) == (False, "address_not_allowed"), outcome.message
