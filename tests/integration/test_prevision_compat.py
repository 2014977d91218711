"""previsionio 11.x scripts, with only ``import previsionio as pio`` changed, against the real platform.

Each test replays an example of previsionio's documentation (``docs/source/getting_started.rst``) or the call
shapes of its own test-suite (``utests/test_project.py``, ``test_datasources.py``, ``test_dataset.py``,
``test_exporters.py``): positional arguments where they use them, their keyword names, ``._id`` everywhere,
and the default client set by ``pio.client.init_client(url, token)``. The servers are real: PostgreSQL,
MariaDB, FTP, SFTP and S3 (moto) on 127.0.0.1.
"""

from __future__ import annotations

import copy
import os
import socket
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import MY_PASSWORD, MY_USER, PG_SCRAM_PASSWORD, PG_SCRAM_USER, RunningPlatform
from fileservers import FileServers, session_file_servers

import previsio_sdk as pio
from previsio_sdk import _default
from previsio_sdk.server.drivers.sql_detect import detect_dialect
from previsio_sdk.server.errors import Invalid
from previsio_sdk.utils import PrevisionException

#: previsionio's ``project.connectors_names``: connector type to the Project method creating it.
CONNECTORS_NAMES = {
    "SQL": "create_sql_connector",
    "FTP": "create_ftp_connector",
    "SFTP": "create_sftp_connector",
    "S3": "create_s3_connector",
}
TITANIC = (
    "PassengerId,Survived,Pclass,Name,Fare\n1,0,3,Braund,7.25\n2,1,1,Cumings,71.2833\n3,1,3,Heikkinen,7.925\n"
)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> FileServers:
    """The session's FTP, SFTP and S3 servers."""
    return session_file_servers(tmp_path_factory.getbasetemp())


@pytest.fixture(autouse=True)
def default_client(platform: RunningPlatform, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As a previsionio script starts: ``pio.client.init_client(url, token)``; forgotten after the test."""
    for setting in ("default_timeout", "request_retries", "request_retry_time"):
        monkeypatch.setattr(pio.config, setting, getattr(pio.config, setting))
    pio.client.init_client(platform.url, platform.token)
    yield
    _default.reset()


@pytest.fixture
def project() -> Iterator[pio.Project]:
    """A project made as previsionio's tests make theirs (``setup_module``), deleted afterwards."""
    project = pio.Project.new(name=f"sdk_test_{uuid.uuid4().hex[:10]}", description="description test sdk")
    yield project
    try:
        project.delete()
    except pio.NotFoundError:
        pass


@pytest.fixture
def titanic(tmp_path: Path) -> Path:
    """previsionio's ``data_exporter/titanic.csv``, in small."""
    path = tmp_path / "titanic.csv"
    path.write_text(TITANIC)
    return path


# -- the client ----------------------------------------------------------------------------------------------
def test_getting_started_client_setup(platform: RunningPlatform) -> None:
    """The "Set up your client" block runs as written, and its settings take effect."""
    pio.client.init_client(platform.url, platform.token)
    pio.verbose(False, debug=False, event_log=False)
    pio.config.default_timeout = 3600
    pio.config.request_retries = 6
    pio.config.request_retry_time = 10

    client = _default.get_client()
    assert (client.url, client.is_local, client.max_retries) == (platform.url, False, 6)
    project = pio.Project.new(name="project_name" + uuid.uuid4().hex[:6], description="project description")
    assert project.client is client
    project.delete()


def test_prevision_environment_variables_reach_their_platform(
    platform: RunningPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With PREVISION_URL and PREVISION_MASTER_TOKEN set (and no init_client), calls go to that platform."""
    _default.reset()
    for name in ("PREVISIO_URL", "PREVISIO_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PREVISION_URL", platform.url)
    monkeypatch.setenv("PREVISION_MASTER_TOKEN", platform.token)

    project = pio.Project.new(name=f"env_{uuid.uuid4().hex[:8]}")
    assert (project.client.url, project.client.is_local) == (platform.url, False)
    assert project._id in [p._id for p in pio.Project.list(all=True)]
    project.delete()


def test_a_master_token_without_url_never_falls_back_to_the_local_platform(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """PREVISION_MASTER_TOKEN alone raises ConfigurationError naming PREVISION_URL; no local platform."""
    _default.reset()
    for name in ("PREVISIO_URL", "PREVISIO_TOKEN", "PREVISION_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PREVISION_MASTER_TOKEN", "a-token-for-elsewhere")
    monkeypatch.setenv("PREVISIO_HOME", str(tmp_path / "home"))
    with pytest.raises(pio.ConfigurationError, match="PREVISION_URL"):
        pio.Project.list()
    assert not (tmp_path / "home").exists()


def test_every_sdk_error_is_a_prevision_exception() -> None:
    """``except PrevisionException`` (from previsio_sdk.utils) catches the SDK's errors, typed as ours."""
    with pytest.raises(PrevisionException) as info:
        pio.Project.from_id("0" * 32)
    assert isinstance(info.value, pio.NotFoundError)


# -- projects (utests/test_project.py) -----------------------------------------------------------------------
def test_create_delete_project() -> None:
    """previsionio's test_create_delete_project, line for line, plus colour and from_name."""
    testing_id = str(uuid.uuid4())
    project = pio.Project.new(
        name="sdk_test_project_" + testing_id, description="description test sdk", color=pio.ProjectColor.blue
    )
    projects_names = [proj.name for proj in pio.Project.list(all=True) if testing_id in proj.name]
    assert project.name in projects_names
    project_info = project.info()
    assert project_info["name"] == "sdk_test_project_" + testing_id
    assert project_info["color"] is pio.ProjectColor.blue
    assert project_info["admins"] and project_info["dataset_count"] == 0

    assert type(project.users()) == list  # noqa: E721 - previsionio's own assertion
    project_copy = pio.Project.from_id(project._id)
    assert project_copy.info()["_id"] == project_info["_id"]
    assert project_copy.color is pio.ProjectColor.blue
    assert pio.Project.from_name(project.name)._id == project._id

    project.delete()
    projects_names = [proj.name for proj in pio.Project.list(all=True) if testing_id in proj.name]
    assert project.name not in projects_names


# -- connectors and datasources (utests/test_datasources.py) -------------------------------------------------
@pytest.fixture
def connectors(servers: FileServers, my_database: str, my_exec: Any) -> dict[str, dict[str, Any]]:
    """previsionio's ``connectors_config`` file, pointing at the test servers."""
    my_exec("CREATE TABLE IF NOT EXISTS titanic (id INT PRIMARY KEY, name VARCHAR(20))")
    my_exec("REPLACE INTO titanic VALUES (1, 'Braund'), (2, 'Cumings')")
    return {
        "FTP": {
            "host": servers.ftp.host,
            "port": servers.ftp.port,
            "username": servers.ftp.username,
            "password": servers.ftp.password,
            "file": "orders.csv",
        },
        "SFTP": {
            "host": servers.sftp.host,
            "port": servers.sftp.port,
            "username": servers.sftp.username,
            "password": servers.sftp.password,
            "file": "/orders.csv",
        },
        "SQL": {
            "host": "127.0.0.1",
            "port": 3306,
            "username": MY_USER,
            "password": MY_PASSWORD,
            "database": my_database,
            "table": "titanic",
        },
        # previsionio's S3 connector is AWS only; an S3-compatible server needs host= (a keyword we add).
        "S3": {
            "username": servers.s3.access_key,
            "password": servers.s3.secret_key,
            "host": servers.s3.endpoint,
            "bucket": servers.s3.bucket,
            "file": "/orders.csv",
        },
    }


def _make_connector(project: pio.Project, connector_type: str, base_options: dict[str, Any]) -> pio.Connector:
    """previsionio's ``prepare_connector_options`` + ``setup_connector_class``."""
    options = copy.deepcopy(base_options)
    options["name"] = connector_type + str(uuid.uuid4())
    for key in ["database", "table", "file", "bucket"]:
        options.pop(key, None)
    return getattr(project, CONNECTORS_NAMES[connector_type])(**options)


@pytest.mark.parametrize("connector_type", ["FTP", "SFTP", "SQL", "S3"])
def test_connector_new_test_and_datasource(
    project: pio.Project, connectors: dict[str, dict[str, Any]], connector_type: str
) -> None:
    """Connectors made from previsionio's option dicts test fine; datasources made its way are found by id."""
    config = connectors[connector_type]
    conn = _make_connector(project, connector_type, config)
    assert conn is not None
    assert conn.test()
    if connector_type == "SQL":
        databases = conn.list_databases()
        assert config["database"] in databases
        assert config["table"] in conn.list_tables(config["database"])
        options = {"database": config["database"], "table": config["table"]}
    elif connector_type == "S3":
        options = {"bucket": config["bucket"], "path": config["file"]}
    else:
        options = {"path": config["file"]}
    options["connector"] = conn
    options["name"] = f"datasource_{uuid.uuid4()}_{connector_type}"
    datasource = project.create_datasource(**options)
    assert pio.DataSource.from_id(datasource._id)._id == datasource._id

    dataset = project.create_dataset("snap", datasource=datasource)
    assert dataset.num_rows in (2, 4)
    assert [ds._id for ds in project.list_datasource(all=True)] == [datasource._id]
    assert [c._id for c in project.list_connectors(all=True)] == [conn._id]
    datasource.delete()
    conn.delete()


def test_class_level_lists_and_all_flag(project: pio.Project, pg_database: str) -> None:
    """Connector/DataSource/Dataset/Exporter.list(project_id, all=) answer previsionio's objects."""
    pg = project.create_sql_connector("pg", "127.0.0.1", 5432, PG_SCRAM_USER, PG_SCRAM_PASSWORD)
    source = project.create_datasource(pg, "one", database=pg_database, request="SELECT 1 AS x")
    dataset = project.create_dataset("one", datasource=source)
    exporter = project.create_exporter(
        pg, "out", database=pg_database, table="compat_out", write_mode="replace"
    )
    for all_pages in (True, False):
        assert [c._id for c in pio.Connector.list(project._id, all=all_pages)] == [pg._id]
        assert [c._id for c in pio.SQLConnector.list(project._id)] == [pg._id]
        assert [d._id for d in pio.DataSource.list(project._id, all=all_pages)] == [source._id]
        assert [d._id for d in pio.Dataset.list(project._id, all=all_pages)] == [dataset._id]
        assert [e._id for e in pio.Exporter.list(project._id, all=all_pages)] == [exporter._id]
        assert [e._id for e in project.list_exporter(all_pages)] == [exporter._id]
    assert pg.driver == "postgresql"


# -- SQL on any port: the handshake tells --------------------------------------------------------------------
class TcpForwarder:
    """Forwards a free port of 127.0.0.1 to another port (a database moved to an unusual port)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()


@pytest.mark.parametrize(
    ("target", "user", "password", "driver"),
    # PostgreSQL's default database is the user's name: the superuser has one ("postgres").
    [(5432, "postgres", "", "postgresql"), (3306, MY_USER, MY_PASSWORD, "mysql")],
)
def test_sql_connector_on_any_port_finds_its_database(
    project: pio.Project, target: int, user: str, password: str, driver: str
) -> None:
    """create_sql_connector(name, host, port, username, password) on an unusual port detects the database."""
    forwarder = TcpForwarder(target)
    try:
        connector = project.create_sql_connector("moved", "127.0.0.1", forwarder.port, user, password)
        assert (connector.driver, connector.port) == (driver, forwarder.port)
        assert connector.test()
        assert connector.list_databases()
    finally:
        forwarder.close()


def test_driver_stays_an_override(project: pio.Project) -> None:
    """driver= is used as given, nothing is contacted (a port where nothing listens is fine)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    connector = project.create_sql_connector("later", "127.0.0.1", port, "me", "pw", driver="mysql")
    assert connector.driver == "mysql"


def test_detection_fails_fast_and_clearly_where_no_database_answers(project: pio.Project) -> None:
    """A server that neither greets nor answers the SSLRequest is refused quickly, asking for driver=."""
    silent = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True).start()
    try:
        started = time.monotonic()
        with pytest.raises(pio.ValidationError) as info:
            project.create_sql_connector("silent", "127.0.0.1", silent.getsockname()[1], "me", "pw")
        assert (info.value.code, info.value.details) == ("validation_error", {"field": "driver"})
        assert "driver=" in info.value.message
        assert time.monotonic() - started < 6
    finally:
        silent.close()
        for s in accepted:
            s.close()
    assert detect_dialect("127.0.0.1", 5432) == "postgresql"
    assert detect_dialect("127.0.0.1", 3306) == "mysql"


# -- datasets (utests/test_dataset.py) -----------------------------------------------------------------------
@pytest.fixture
def regression(tmp_path: Path) -> dict[str, Path]:
    """previsionio's ``make_supervised_datasets``: a CSV, the same zipped (its path as the name), Parquet."""
    data = tmp_path / "data"
    data.mkdir()
    reg = pd.DataFrame({"feat_0": [0.1, 0.2, 0.3], "feat_1": [1.5, 2.5, 3.5], "target": [1.0, 0.0, 1.0]})
    reg_path = data / "regression.csv"
    reg.to_csv(reg_path, index=False)
    zip_path = data / "regression.zip"
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with zipfile.ZipFile(zip_path, "w") as zip_file:
            zip_file.write("data/regression.csv")
    finally:
        os.chdir(cwd)
    parquet_path = data / "regression.parquet"
    reg.to_parquet(parquet_path, index=False)
    return {"regression": reg_path, "zip_regression": zip_path, "parquet_regression": parquet_path}


def test_upload_dataset_from_dataframe_and_filename(
    project: pio.Project, regression: dict[str, Path]
) -> None:
    """Datasets from a DataFrame (origin=), a CSV, a zipped CSV and a Parquet file; listed with all=True."""
    testing_id = str(uuid.uuid4())
    project.create_dataset(
        "classification" + testing_id,
        dataframe=pd.read_csv(regression["regression"]),
        origin="pipeline_intermediate_file",
    )
    for key, p in regression.items():
        # previsionio names them p.split('/')[-1][:-4]: "regression" twice; names are unique here.
        project.create_dataset(key + testing_id, file_name=str(p))
    datasets = [ds for ds in project.list_datasets(all=True) if testing_id in ds.name]
    assert len(datasets) == 4
    assert {ds.num_rows for ds in datasets} == {3}
    assert pio.Dataset.from_id(datasets[0]._id)._id == datasets[0]._id
    for ds in datasets:
        ds.delete()
    with pytest.raises(pio.ConfigurationError, match="origin"):
        project.create_dataset("bad", dataframe=pd.read_csv(regression["regression"]), origin="elsewhere")


def test_download(project: pio.Project, regression: dict[str, Path], tmp_path: Path) -> None:
    """download(directoy_path=) writes a zip of CSV; extension="parquet" the Parquet file; path= a CSV."""
    frame = pd.read_csv(regression["regression"])
    dataset = project.create_dataset("regression", dataframe=frame, origin="pipeline_intermediate_file")
    ds = pio.Dataset.from_id(dataset._id)
    out = tmp_path / "out"
    out.mkdir()
    path_zip = ds.download(directoy_path=str(out))
    assert path_zip == str(out / "regression.zip") and os.path.isfile(path_zip)
    with zipfile.ZipFile(path_zip) as archive:
        assert archive.namelist() == ["regression.csv"]
        with archive.open("regression.csv") as member:
            pd.testing.assert_frame_equal(pd.read_csv(member), frame, check_dtype=False)
    path_parquet = ds.download(directoy_path=str(out), extension="parquet")
    assert path_parquet.endswith("regression.parquet")
    pd.testing.assert_frame_equal(pq.read_table(path_parquet).to_pandas(), frame)
    path_csv = ds.download(path=str(out / "copy.csv"))
    pd.testing.assert_frame_equal(pd.read_csv(path_csv), frame, check_dtype=False)
    assert ds.download(directory_path=out, extension="csv") == str(out / "regression.csv")
    dataset.delete()


# -- exporters (utests/test_exporters.py) --------------------------------------------------------------------
def check_exporter_and_exports(
    project: pio.Project, exporter: pio.Exporter, dataset: Any, titanic: Path
) -> None:
    """previsionio's check_exporter_and_exports, without the predictions."""
    exporters_id = [exprtr._id for exprtr in project.list_exporter(True)]
    assert exporter._id in exporters_id

    export = exporter.export_dataset(dataset, wait_for_export=True)
    assert export._id in [exprt._id for exprt in exporter.list_exports()]
    assert (export.state, export.status) == ("done", "succeeded")

    export = exporter.export_file(str(titanic), wait_for_export=True)
    assert export._id in [exprt._id for exprt in exporter.list_exports()]

    exporter2 = pio.Exporter.from_id(exporter._id)
    assert exporter2._id == exporter._id

    exporter.delete()
    exporters_id = [exprtr._id for exprtr in project.list_exporter(True)]
    assert exporter._id not in exporters_id


def test_exporter_ftp(project: pio.Project, servers: FileServers, titanic: Path) -> None:
    """previsionio's test_exporter_FTP (the FTP server's writing user)."""
    dataset = project.create_dataset("test_exporter", file_name=str(titanic))
    f = servers.ftp
    connector = project.create_ftp_connector(
        "test_ftp_connector", f.host, f.port, f.writer, f.writer_password
    )
    exporter = project.create_exporter(
        connector,
        "test_ftp_exporter",
        description="test_ftp_exporter description",
        path=f"titanic_{uuid.uuid4().hex[:6]}.csv",
        write_mode=pio.ExporterWriteMode.replace,
    )
    check_exporter_and_exports(project, exporter, dataset, titanic)


def test_exporter_sftp_absolute_path(project: pio.Project, servers: FileServers, titanic: Path) -> None:
    """previsionio's test_exporter_SFTP: an absolute path='/share/test_sdk/titanic.csv' is written there."""
    dataset = project.create_dataset("test_exporter", file_name=str(titanic))
    t = servers.sftp
    connector = project.create_sftp_connector("test_ftp_connector", t.host, t.port, t.username, t.password)
    folder = f"share{uuid.uuid4().hex[:6]}"
    exporter = project.create_exporter(
        connector,
        "test_sftp_exporter",
        description="test_sftp_exporter description",
        path=f"/{folder}/test_sdk/titanic.csv",
        write_mode=pio.ExporterWriteMode.replace,
    )
    assert exporter.path == f"/{folder}/test_sdk/titanic.csv"
    written = servers.files_root / folder / "test_sdk" / "titanic.csv"  # the SFTP server's "/" is files_root
    export = exporter.export_dataset(dataset, wait_for_export=True)
    assert export.destination == f"/{folder}/test_sdk/titanic.csv"
    assert pd.read_csv(written)["Name"].tolist() == ["Braund", "Cumings", "Heikkinen"]
    source = project.create_datasource(connector, "back", path=f"/{folder}/test_sdk/titanic.csv")
    assert project.create_dataset("back", datasource=source).num_rows == 3
    for refused in ("//elsewhere/x.csv", "/%2Fetc/x.csv", "/a/../../x.csv", "/x\x01.csv"):
        with pytest.raises(pio.ValidationError) as info:
            project.create_exporter(connector, "refused", path=refused)
        assert info.value.code in ("unsafe_path", "validation_error"), refused
    check_exporter_and_exports(project, exporter, dataset, titanic)


def test_exporter_mysql(project: pio.Project, my_database: str, my_exec: Any, titanic: Path) -> None:
    """previsionio's test_exporter_MySQL: positional connector arguments, database and table, replace."""
    dataset = project.create_dataset("test_exporter", file_name=str(titanic))
    connector = project.create_sql_connector("test_sftp_connector", "127.0.0.1", 3306, MY_USER, MY_PASSWORD)
    table = f"titanic_{uuid.uuid4().hex[:6]}"
    exporter = project.create_exporter(
        connector,
        "test_sftp_exporter",
        description="test_sftp_exporter description",
        database=my_database,
        table=table,
        write_mode=pio.ExporterWriteMode.replace,
    )
    check_exporter_and_exports(project, exporter, dataset, titanic)
    assert my_exec(f"SELECT COUNT(*) FROM `{table}`") == [(3,)]


def test_exporter_s3_absolute_key(project: pio.Project, servers: FileServers, titanic: Path) -> None:
    """previsionio's test_exporter_S3: path='/test_sdk/titanic.csv' is the key test_sdk/titanic.csv."""
    dataset = project.create_dataset("test_exporter", file_name=str(titanic))
    b = servers.s3
    connector = project.create_s3_connector(
        "test_s3_connector", username=b.access_key, password=b.secret_key, host=b.endpoint
    )
    key = f"test_sdk_{uuid.uuid4().hex[:6]}/titanic.csv"
    exporter = project.create_exporter(
        connector,
        "test_s3_exporter",
        description="test_s3_exporter description",
        bucket=b.bucket,
        path="/" + key,
        write_mode=pio.ExporterWriteMode.replace,
    )
    exporter.export_dataset(dataset, wait_for_export=True)
    body = b.client().get_object(Bucket=b.bucket, Key=key)["Body"].read().decode()
    assert body.splitlines()[0].replace('"', "").startswith("PassengerId,Survived")
    source = project.create_datasource(connector, "back", bucket=b.bucket, path="/" + key)
    assert source.path == key
    check_exporter_and_exports(project, exporter, dataset, titanic)


def test_getting_started_exporter_and_class_level_exports(
    project: pio.Project, servers: FileServers, titanic: Path, tmp_path: Path
) -> None:
    """The documentation's "Exporters" block, Export's class-level calls and export_file's CSV options."""
    dataset = project.create_dataset(name="helloworld", file_name=str(titanic))
    f = servers.ftp
    connector = project.create_ftp_connector("ftp", f.host, f.port, f.writer, f.writer_password)
    folder = f"remote{uuid.uuid4().hex[:6]}"
    exporter = project.create_exporter(
        connector=connector,
        name="my_exporter",
        path=f"{folder}/file/path.csv",
        write_mode=pio.ExporterWriteMode.timestamp,
    )
    export = exporter.export_dataset(dataset=dataset, wait_for_export=False)
    assert export.state in ("pending", "running", "done")
    assert export.wait().state == "done"

    export = pio.Export.export_dataset(exporter._id, dataset, wait_for_export=True)
    assert export.state == "done"
    semicolons = tmp_path / "fr.csv"
    semicolons.write_text("id;amount\n1;1 234,5\n2;7,25\n", encoding="latin-1")
    export = pio.Export.export_file(
        exporter._id, str(semicolons), encoding="latin-1", separator=";", decimal=",", thousands=" "
    )
    assert export.state in ("pending", "running", "done")
    export = export.wait()
    assert export.rows == 2
    written = servers.files_root / export.destination
    assert pd.read_csv(written)["amount"].tolist() == [1234.5, 7.25]
    ids = [e._id for e in pio.Export.list(exporter._id)]
    assert len(ids) == 3 and export._id in ids


def _one_shot_server(behaviour: Any) -> tuple[socket.socket, int]:
    """A listening socket on 127.0.0.1 whose first connection is handed to ``behaviour(conn)``."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            behaviour(conn)

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


#: The start of a MariaDB greeting: length 0x5b, sequence 0, protocol version 10, then the version text.
MYSQL_GREETING = bytes([0x5B, 0, 0, 0, 10]) + b"11.4.2-MariaDB\x00" + b"\x00" * 76


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        (lambda c: (time.sleep(0.8), c.sendall(MYSQL_GREETING), time.sleep(0.5)), "mysql"),
        (lambda c: (c.recv(8), c.sendall(b"N"), time.sleep(0.5)), "postgresql"),
        (lambda c: (c.recv(8), c.sendall(b"S"), time.sleep(0.5)), "postgresql"),
        (lambda c: (c.sendall(b"SSH-2.0-OpenSSH_9.6\r\n"), time.sleep(0.5)), None),
        (lambda c: (c.recv(8), c.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n"), time.sleep(0.5)), None),
    ],
    ids=["slow-mysql-greeting", "postgres-no-ssl", "postgres-ssl", "ssh-speaks-first", "http-answers"],
)
def test_detection_reads_only_the_first_protocol_bytes(behaviour: Any, expected: str | None) -> None:
    """A late MySQL greeting, PostgreSQL's S/N answer, and other protocols (refused) are told apart."""
    server, port = _one_shot_server(behaviour)
    try:
        if expected is None:
            with pytest.raises(Invalid, match="neither PostgreSQL nor MySQL"):
                detect_dialect("127.0.0.1", port)
        else:
            assert detect_dialect("127.0.0.1", port) == expected
    finally:
        server.close()
