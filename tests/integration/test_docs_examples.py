"""The Python examples of README.rst and docs/ run as written, so they cannot rot.

Each document's ``.. code-block:: python`` blocks run in order in one namespace (a guide is one story),
against the test platform, in a temporary directory holding the files the examples name. The example hosts
(``db.example.com``...) are made loopback test servers by replacing the few literal strings of
:data:`SUBSTITUTIONS`; nothing else of an example is changed. An RST comment starting ``.. docs-setup:``
holds code a reader does not need to see (such as data to list), run before the next example.

Documents without Python examples are listed in :data:`NOT_RUN_YET` with the reason; a new document must be
in one list.
"""

from __future__ import annotations

import io
import json
import os
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from conftest import (
    MY_PASSWORD,
    MY_PORT,
    MY_USER,
    PG_HOST,
    PG_PORT,
    PG_SCRAM_PASSWORD,
    PG_SCRAM_USER,
    RunningPlatform,
    start_platform,
    stop_platform,
)
from fileservers import FileServers, S3ServerInfo, session_file_servers, start_s3, stop_process
from gcsserver import session_gcs_server
from test_exporters_plugin import install_plugin

import previsio_sdk as pio
from previsio_sdk import _default

ROOT = Path(__file__).resolve().parents[2]
RUN = [
    "README.rst",
    "docs/index.rst",
    "docs/api.rst",
    "docs/getting_started.rst",
    "docs/guides/datasources_connectors.rst",
    "docs/guides/exporters.rst",
    "docs/guides/moving_projects.rst",
    "docs/guides/drivers.rst",
    "docs/guides/file_connectors.rst",
]
NOT_RUN_YET = {
    "docs/notebook_tour.rst": "no Python block (the notebook runs in test_notebook.py)",
    "docs/changelog.rst": "no Python block",
    "docs/guides/platform.rst": "no Python block",
    "docs/guides/security.rst": "no Python block",
    "docs/guides/scale.rst": "no Python block",
    "docs/guides/coming_from_prevision.rst": (
        "a cheat sheet of previsionio's call shapes, with placeholders; test_prevision_compat.py runs each"
    ),
}
BLOCK = re.compile(
    r"^(?P<indent> *)(?:\.\. code-block:: python|\.\. docs-setup:.*)\n"
    r"(?P<body>(?:[ ]*\n|(?P=indent)    .*\n)+)",  # a block nested in a directive too
    re.MULTILINE,
)


def blocks(path: Path) -> list[str]:
    """The Python code of the document's examples and hidden setups, in order."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in BLOCK.finditer(text):
        body = textwrap.dedent(match.group("body")).strip("\n")
        if body:
            found.append(body)
    return found


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3ServerInfo]:
    """An S3-compatible server (moto) with a bucket, for the exporters guide."""
    info = start_s3(tmp_path_factory.mktemp("docs-s3"))
    yield info
    stop_process(info.process)


@pytest.fixture(scope="module")
def jsonl_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory of the driver guide's jsonl connector, with its clicks."""
    root = tmp_path_factory.mktemp("docs-jsonl")
    (root / "clicks.jsonl").write_text('{"id": 1, "page": "/"}\n{"id": 2, "page": "/docs"}\n')
    return root


@pytest.fixture(scope="module")
def plugin_platform(tmp_path_factory: pytest.TempPathFactory, jsonl_root: Path) -> Iterator[RunningPlatform]:
    """A platform with the driver guide's example plug-in installed, as pip would install it."""
    site = install_plugin(tmp_path_factory.mktemp("docs-site-packages"))
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    running = start_platform(
        tmp_path_factory.mktemp("docs-plugin-home"),
        env={"PYTHONPATH": path, "PREVISIO_LOCAL_ROOTS": json.dumps([str(jsonl_root)])},
    )
    yield running
    stop_platform(running)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FileServers, str]]:
    """The session's FTP, SFTP, S3 and HTTP servers with the files the file guide reads, and the URL of an
    HTTP server without authentication (the guide's open-data site)."""
    import functools
    import gzip
    import threading
    from http.server import ThreadingHTTPServer

    servers = session_file_servers(tmp_path_factory.getbasetemp())
    session_gcs_server(servers.files_root.parent).put("2024/orders.csv", b"id,amount\n1,10.5\n2,20.0\n")
    root = servers.files_root
    csv = "id,amount\n1,10.5\n2,20.0\n"
    for rel, text in {
        "exports/2024/orders.csv": csv,
        "outgoing/sales.csv": csv,
        "exports/events.jsonl": '{"id": 1}\n{"id": 2}\n',
        "exports/2024-01.csv": csv,
        "exports/2024-02.csv": csv,
        "dump_20240101.dat": csv,
        "finance/ledger-01.csv": csv,
        "finance/ledger-02.csv": csv,
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "ventes.csv").write_bytes("id;libellé;montant\n1;café;2,50\n".encode("latin-1"))
    (root / "exports/rates").mkdir(parents=True, exist_ok=True)
    (root / "exports/rates/2024.csv.gz").write_bytes(gzip.compress(csv.encode()))
    buf = io.BytesIO()
    pd.DataFrame({"id": [1, 2]}).to_parquet(buf)
    servers.s3.client().put_object(Bucket=servers.s3.bucket, Key="2024/orders.parquet", Body=buf.getvalue())
    open_site = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    threading.Thread(target=open_site.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    yield servers, f"http://127.0.0.1:{open_site.server_address[1]}"
    open_site.shutdown()


class _QuietHandler(__import__("http.server").server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def file_substitutions(servers: FileServers, open_url: str) -> dict[str, str]:
    """The file guide's hosts and credentials made the test servers' (applied before the common ones)."""
    ftp, sftp, s3, http = servers.ftp, servers.sftp, servers.s3, servers.http
    gcs = session_gcs_server(servers.files_root.parent)
    return {
        # Google Cloud Storage: the emulator, and a service account key its token service accepts
        'key = json.load(open("service-account.json"))': f"key = {gcs.service_account_key()!r}",
        "googleCredentials=key)": f'googleCredentials=key, host="{gcs.endpoint}")',
        'host="ftp.example.com", port=21,': f'host="127.0.0.1", port={ftp.port},',
        'username="previsio", password="..."': f'username="{ftp.username}", password="{ftp.password}"',
        'host="sftp.example.com", port=22,': f'host="127.0.0.1", port={sftp.port},',
        'username="etl", password="..."': f'username="{sftp.username}", password="{sftp.password}"',
        'host="sftp.example.com", username="etl",': (
            f'host="127.0.0.1", port={sftp.port}, username="{sftp.username}",'
        ),
        'private_key="~/.ssh/id_ed25519_etl"': f"private_key={sftp.private_key!r}",
        'username="minio-user", password="...",': f'username="{s3.access_key}", password="{s3.secret_key}",',
        'host="http://minio.internal:9000"': f'host="{s3.endpoint}", region="us-east-1"',
        'root="/srv/exports/finance"': f'root="{servers.files_root / "finance"}"',
        'host="https://data.example.org/exports"': f'host="{open_url}/exports"',
        'host="https://intranet.example.com/files",': f'host="{http.url}",',
        'username="me", password="..."': f'username="{http.username}", password="{http.password}"',
        'host="https://reports.example.com/v1",': f'host="{http.url}",',
        'token="eyJhbGciOi..."': f'token="{http.token}"',
        'host="http://127.0.0.1:8080"': f'host="{open_url}"',
    }


#: Documents whose examples talk to another platform than the shared test one (a fixture's name).
PLATFORM_OF = {"docs/guides/drivers.rst": "plugin_platform"}


@pytest.fixture(scope="module")
def staging(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    """A second platform, the "staging" one of the guide about moving projects."""
    running = start_platform(tmp_path_factory.mktemp("docs-staging"))
    yield running
    stop_platform(running)


@pytest.fixture
def world(  # type: ignore[no-untyped-def]
    client: pio.Client,
    pg_database: str,
    pg_exec,
    my_database: str,
    my_exec,
    s3: S3ServerInfo,
    staging: RunningPlatform,
    jsonl_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    """The databases and files the examples talk about, and the substitutions that point them here."""
    pg_exec("DROP TABLE IF EXISTS orders, orders_copy")
    pg_exec(
        "CREATE TABLE orders AS SELECT g AS id, g % 50 + 1 AS customer_id,"
        " (g * 7 % 500)::numeric(10, 2) AS amount,"
        " timestamptz '2024-01-01' + g * interval '1 hour' AS ordered_at,"
        " (ARRAY['delivered', 'pending'])[g % 2 + 1] AS status, NULLIF(g % 3, 0)::real / 10 AS discount"
        " FROM generate_series(1, 500) g"
    )
    pg_exec("CREATE SCHEMA IF NOT EXISTS sales")
    pg_exec("DROP TABLE IF EXISTS sales.customers")
    pg_exec(
        "CREATE TABLE sales.customers AS SELECT g AS id, 'customer ' || g AS name"
        " FROM generate_series(1, 50) g"
    )
    pg_exec(f"GRANT USAGE ON SCHEMA sales TO {PG_SCRAM_USER}")
    pg_exec(f"GRANT SELECT ON ALL TABLES IN SCHEMA sales, public TO {PG_SCRAM_USER}")
    pg_exec("CREATE SCHEMA IF NOT EXISTS analytics")
    pg_exec(f"GRANT ALL ON SCHEMA analytics TO {PG_SCRAM_USER}")
    my_exec("CREATE TABLE IF NOT EXISTS table1 (id INT PRIMARY KEY, label VARCHAR(20))")
    pd.DataFrame({"customer_id": [1, 2], "score": [0.2, 0.8]}).to_csv(
        tmp_path / "predictions.csv", index=False
    )
    pd.DataFrame({"customer_id": [1, 2], "churned": [0, 1]}).to_csv(tmp_path / "targets.csv", index=False)
    (tmp_path / "previsions.csv").write_text("customer_id;score\n1;0,25\n2;1 000,5\n", encoding="latin-1")
    pd.DataFrame({"customer_id": [1, 2], "orders": [3, 4]}).to_parquet(tmp_path / "history.parquet")
    (tmp_path / "connections.yaml").write_text(
        f"warehouse:\n  driver: postgresql\n  host: {PG_HOST}\n  port: {PG_PORT}\n"
        f"  username: {PG_SCRAM_USER}\n  password: {PG_SCRAM_PASSWORD}\n  database: {pg_database}\n"
    )
    monkeypatch.setenv("NEW_PASSWORD", PG_SCRAM_PASSWORD)
    platform_url = client.url
    substitutions = {
        # PostgreSQL: the session database, through the scram-authenticated role
        'host="db.example.com"': 'host="127.0.0.1"',
        'database="sales"': f'database="{pg_database}"',
        'username="analyst", password="..."': f'username="{PG_SCRAM_USER}", password="{PG_SCRAM_PASSWORD}"',
        'username="etl", password="..."': f'username="{PG_SCRAM_USER}", password="{PG_SCRAM_PASSWORD}"',
        # S3: the moto server and its bucket
        'username="AKIA...", password="...", region="eu-west-3"': (
            f'username="{s3.access_key}", password="{s3.secret_key}", host="{s3.endpoint}"'
        ),
        'bucket="results"': f'bucket="{s3.bucket}"',
        'host="db2.example.com"': 'host="127.0.0.1"',
        'database="/srv/data/events"': f'database="{jsonl_root}"',
        'url="https://previsio.staging.example.com", token="..."': (
            f'url="{staging.url}", token="{staging.token}"'
        ),
        'secrets={"warehouse": {"password": "..."}}': (
            f'secrets={{"warehouse": {{"password": "{PG_SCRAM_PASSWORD}"}}}}'
        ),
        # MySQL/MariaDB: the session database
        'host="mysql.example.com"': 'host="127.0.0.1"',
        'host="legacy.example.com"': 'host="127.0.0.1"',
        # the detection example: the session's MariaDB (its usual port, the protocol is then known)
        '"legacy", "legacy.example.com", 3307, "reader", "..."': (
            f'"legacy", "127.0.0.1", {MY_PORT}, "{MY_USER}", "{MY_PASSWORD}"'
        ),
        '"https://myserver.com"': '"127.0.0.1"',
        'username="reader", password="..."': f'username="{MY_USER}", password="{MY_PASSWORD}"',
        'username="username",': f'username="{MY_USER}",',
        'password="password"': f'password="{MY_PASSWORD}"',
        'database="shop"': f'database="{my_database}"',
        'list_tables("shop")': f'list_tables("{my_database}")',
        'database="my_db"': f'database="{my_database}"',
        # a remote platform: the test platform
        '"http://previsio.example.com:8000", token="pvo_3PDsZL4l..."': (
            f'"{platform_url}", token="{client._token}"'
        ),
    }
    return substitutions


def _projects(client: pio.Client) -> set[str]:
    return {p.id for p in pio.Project.list(client)}


@pytest.fixture
def isolated(client: pio.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The test platform as default client, the temp dir as working directory; projects made are deleted."""
    before = _projects(client)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PREVISIO_PROGRESS", "0")
    monkeypatch.setenv("PREVISIO_URL", client.url)  # pio.Client() never starts a platform in ~/.previsio
    monkeypatch.setenv("PREVISIO_TOKEN", client._token)
    pio.init_client(client.url, client._token)
    yield
    _default.reset()
    for project in pio.Project.list(client):
        if project.id not in before:
            project.delete()


def test_every_document_is_run_or_listed_with_a_reason() -> None:
    """A new document with examples cannot be forgotten: it is in RUN or in NOT_RUN_YET."""
    documents = {"README.rst"} | {str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.rst")}
    assert documents == set(RUN) | set(NOT_RUN_YET)
    for name in NOT_RUN_YET:
        if "no Python block" in NOT_RUN_YET[name]:
            assert not blocks(ROOT / name), f"{name} has Python blocks now: run it"


@pytest.mark.parametrize("document", RUN)
def test_the_examples_run_as_written(
    document: str, world: dict[str, str], isolated: None, request: pytest.FixtureRequest
) -> None:
    """Every Python block of the document runs, in order, without an error."""
    namespace: dict[str, object] = {"__name__": "docs_example"}
    if document in PLATFORM_OF:
        other: RunningPlatform = request.getfixturevalue(PLATFORM_OF[document])
        pio.init_client(other.url, other.token)
    substitutions = dict(world)
    if document == "docs/guides/file_connectors.rst":
        servers, open_url = request.getfixturevalue("files")
        substitutions = {**file_substitutions(servers, open_url), **world}  # the file guide's first
        namespace["DOCS_FILES_ROOT"] = str(servers.files_root)  # for its hidden setup only
    used: set[str] = set()
    code_blocks = blocks(ROOT / document)
    assert code_blocks, f"{document} has no Python example"
    for i, code in enumerate(code_blocks, 1):
        for old, new in substitutions.items():
            if old in code:
                used.add(old)
                code = code.replace(old, new)
        try:
            exec(compile(code, f"{document} example {i}", "exec"), namespace)  # noqa: S102
        except Exception as exc:  # noqa: BLE001 - name the example that failed
            raise AssertionError(f"{document}, example {i} failed: {exc!r}\n{code}") from exc
    assert os.getcwd()  # still in the temp dir


def test_all_substitutions_are_used(world: dict[str, str], files: tuple[FileServers, str]) -> None:
    """Each replaced string is still in some document run (else the substitution hides nothing: remove it)."""
    text = "\n".join("\n".join(blocks(ROOT / d)) for d in RUN)
    every = {**world, **file_substitutions(*files)}
    assert [old for old in every if old not in text] == []
