"""Google Cloud Storage connectors (previsionio's GCP connector) against a real GCS emulator on 127.0.0.1.

The emulator is ``gcp-storage-emulator`` from PyPI, started by :mod:`gcsserver`; a service account key's
tokens come from a local token service, so the credentials path runs whole without leaving the machine.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SUITE_SECRETS, RunningPlatform
from fileservers import ORDERS_CSV
from gcsserver import GCSServerInfo, session_gcs_server

import previsio_sdk as pio
from previsio_sdk import _default


@pytest.fixture(scope="module")
def gcs(tmp_path_factory: pytest.TempPathFactory) -> GCSServerInfo:
    """The session's GCS emulator, holding orders.csv, a Parquet file and two monthly CSV files."""
    server = session_gcs_server(tmp_path_factory.getbasetemp())
    server.put("orders.csv", ORDERS_CSV.encode())
    buf = io.BytesIO()
    pq.write_table(pa.table({"id": [1, 2, 3], "score": [0.5, 0.25, 1.0]}), buf)
    server.put("formats/data.parquet", buf.getvalue())
    server.put("monthly/2024-01.csv", b"id,amount\n1,10\n")
    server.put("monthly/2024-02.csv", b"id,amount\n2,20\n3,30\n")
    return server


@pytest.fixture
def key(gcs: GCSServerInfo) -> dict[str, str]:
    """A service account key whose private key no platform log or answer may show."""
    key = gcs.service_account_key()
    SUITE_SECRETS.add(key["private_key"].splitlines()[1])
    return key


@pytest.fixture
def connector(project: pio.Project, gcs: GCSServerInfo, key: dict[str, str]) -> pio.FileConnector:
    """A GCP connector with a service account key, to the emulator."""
    return project.create_gcp_connector("gcs", googleCredentials=key, host=gcs.endpoint)


def test_gcp_connector_authenticates_and_tests_fine(
    connector: pio.FileConnector, gcs: GCSServerInfo, key: dict[str, str]
) -> None:
    """create_gcp_connector(name, googleCredentials) tests fine; the key was traded for a token locally."""
    before = len(gcs.token_requests)
    result = connector.test()
    assert result, result.message
    assert len(gcs.token_requests) > before and "jwt-bearer" in gcs.token_requests[-1]
    assert (connector.type, connector.has_password) == ("gcs", False)
    assert key["private_key"] not in repr(connector)


def test_datasources_read_csv_parquet_and_globs(
    project: pio.Project, connector: pio.FileConnector, gcs: GCSServerInfo
) -> None:
    """CSV, Parquet and a glob of objects snapshot from a bucket; gCloud=GCloud.storage is accepted."""
    csv = project.create_datasource(
        connector, "orders", bucket=gcs.bucket, path="/orders.csv", gCloud="Storage"
    )
    assert csv.path == "orders.csv"
    assert project.create_dataset("orders", datasource=csv).num_rows == 4
    parquet = project.create_datasource(
        connector, "scores", path="formats/data.parquet", bucket=gcs.bucket, gCloud=pio.GCloud.storage
    )
    assert project.create_dataset("scores", datasource=parquet).to_pandas()["score"].tolist() == [
        0.5,
        0.25,
        1.0,
    ]
    monthly = project.create_datasource(connector, "monthly", bucket=gcs.bucket, path="monthly/*.csv")
    assert project.create_dataset("monthly", datasource=monthly).to_pandas()["amount"].tolist() == [
        10,
        20,
        30,
    ]


def test_listing_and_a_missing_object(
    project: pio.Project, connector: pio.FileConnector, gcs: GCSServerInfo
) -> None:
    """list_files shows the bucket's objects with sizes and times; a missing object is source_not_found."""
    entries = {e.name: e for e in connector.list_files("monthly", bucket=gcs.bucket)}
    assert set(entries) == {"2024-01.csv", "2024-02.csv"}
    assert entries["2024-01.csv"].size == len(b"id,amount\n1,10\n")
    assert entries["2024-01.csv"].modified_at is not None
    assert gcs.bucket in [e.name for e in connector.list_files()]
    with pytest.raises(pio.ValidationError) as info:
        project.create_datasource(connector, "missing", bucket=gcs.bucket, path="nope.csv")
    assert info.value.code == "source_not_found"


def test_exporters_write_objects_safely(
    project: pio.Project, connector: pio.FileConnector, gcs: GCSServerInfo
) -> None:
    """previsionio's GCP exporter: path='/test_sdk/titanic.csv' is written; safe refuses to overwrite it."""
    dataset = project.create_dataset("frame", dataframe=pd.DataFrame({"id": [1, 2], "name": ["a", "b"]}))
    folder = f"test_sdk_{uuid.uuid4().hex[:6]}"
    exporter = project.create_exporter(
        connector,
        "test_gcp_exporter",
        description="test_gcp_exporter description",
        bucket=gcs.bucket,
        path=f"/{folder}/titanic.csv",
        g_cloud=pio.GCloud.storage,
        write_mode=pio.ExporterWriteMode.safe,
    )
    export = exporter.export_dataset(dataset, wait_for_export=True)
    assert (export.state, export.rows) == ("done", 2)
    assert pd.read_csv(io.BytesIO(gcs.get(f"{folder}/titanic.csv")))["name"].tolist() == ["a", "b"]
    with pytest.raises(pio.JobFailedError) as info:
        exporter.export_dataset(dataset, wait_for_export=True)
    assert info.value.code == "destination_exists"
    assert gcs.names(folder) == [f"{folder}/titanic.csv"]  # nothing half-written beside it

    stamped = project.create_exporter(
        connector, "stamped", bucket=gcs.bucket, path=f"{folder}/out.parquet", write_mode="timestamp"
    )
    written = stamped.export_dataset(dataset, wait_for_export=True).destination
    assert written and written.startswith(f"{folder}/out_") and written.endswith(".parquet")
    assert pq.read_table(io.BytesIO(gcs.get(written))).num_rows == 2


def test_anonymous_connector_and_refused_settings(
    project: pio.Project, gcs: GCSServerInfo, key: dict[str, str]
) -> None:
    """No key means anonymous requests; a key whose token_uri points elsewhere, or not a service account key,
    is refused."""
    anonymous = project.create_gcp_connector("anon", host=gcs.endpoint)
    assert anonymous.test()
    elsewhere = {**key, "token_uri": "http://127.0.0.2:9/token"}
    with pytest.raises(pio.ValidationError, match="token_uri") as info:
        project.create_gcp_connector("elsewhere", googleCredentials=elsewhere, host=gcs.endpoint)
    assert key["private_key"] not in str(info.value)
    with pytest.raises(pio.ValidationError, match="service account"):
        project.create_gcp_connector("user", googleCredentials={"type": "authorized_user"}, host=gcs.endpoint)
    with pytest.raises(pio.ConfigurationError, match="BigQuery"):
        project.create_datasource(anonymous, "bq", gCloud=pio.GCloud.big_query, database="d", table="t")


@pytest.fixture
def default_client(platform: RunningPlatform) -> Iterator[None]:
    """``pio.client.init_client(url, token)``, forgotten after the test."""
    pio.client.init_client(platform.url, platform.token)
    yield
    _default.reset()


def test_previsionio_gcp_storage_datasource_shape(
    default_client: None, gcs: GCSServerInfo, key: dict[str, str]
) -> None:
    """previsionio's test_datasources GCP/Storage options: {'gCloud': 'Storage', 'bucket':..., 'path':...}."""
    project = pio.Project.new(name=f"sdk_test_gcp_{uuid.uuid4().hex[:8]}", description="description test sdk")
    try:
        conn = project.create_gcp_connector(
            name="GCP" + str(uuid.uuid4()), googleCredentials=key, host=gcs.endpoint
        )
        assert conn.test()
        options = {"gCloud": "Storage", "bucket": gcs.bucket, "path": "orders.csv"}
        datasource = project.create_datasource(connector=conn, name="datasource_GCP", **options)
        assert pio.DataSource.from_id(datasource._id)._id == datasource._id
        assert [c._id for c in project.list_connectors(all=True)] == [conn._id]
    finally:
        project.delete()
