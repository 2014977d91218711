"""The previsionio 11.x surface of the SDK, against a mocked platform: names, keywords and return shapes."""

from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import previsio_sdk as pio
from previsio_sdk import _default, config

from .payloads import (
    BASE_URL,
    TOKEN,
    MockApi,
    connector_payload,
    dataset_payload,
    datasource_payload,
    export_payload,
    exporter_payload,
    job_payload,
    json_of,
    page_payload,
    project_payload,
    query_of,
)


@pytest.fixture
def project(client: pio.Client) -> pio.Project:
    return pio.Project.from_dict(project_payload(), client)


# -- client, environment, settings ---------------------------------------------------------------------------
class TestClientSetup:
    def test_pio_client_init_client_sets_the_default_client(self, api: MockApi) -> None:
        """pio.client.init_client(prevision_url, token) is previsionio's call; later calls use that client."""
        api.add("GET", "/projects", json=page_payload([project_payload()]))
        default = pio.client.init_client(BASE_URL, TOKEN)
        assert _default.get_client() is default
        assert [p._id for p in pio.Project.list()] == ["p1"]
        assert api.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"

    def test_prevision_variables_are_honoured(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """PREVISION_URL and PREVISION_MASTER_TOKEN configure Client() as PREVISIO_URL/TOKEN do."""
        monkeypatch.setenv("PREVISION_URL", BASE_URL)
        monkeypatch.setenv("PREVISION_MASTER_TOKEN", TOKEN)
        client = pio.Client()
        assert (client.url, client._token, client.is_local) == (BASE_URL, TOKEN, False)

    def test_our_variables_win_and_keep_their_token(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """PREVISIO_URL wins over PREVISION_URL; the Prevision token is not sent to the other URL."""
        monkeypatch.setenv("PREVISIO_URL", BASE_URL)
        monkeypatch.setenv("PREVISION_URL", "http://prevision.test")
        monkeypatch.setenv("PREVISION_MASTER_TOKEN", "prevision-token")
        client = pio.Client()
        assert (client.url, client._token) == (BASE_URL, None)
        monkeypatch.setenv("PREVISIO_TOKEN", TOKEN)
        assert pio.Client()._token == TOKEN

    def test_disagreeing_url_variables_are_told(
        self, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        """PREVISIO_URL and PREVISION_URL naming different platforms log a warning naming the one used."""
        monkeypatch.setenv("PREVISIO_URL", BASE_URL)
        monkeypatch.setenv("PREVISION_URL", "http://prevision.test")
        with caplog.at_level(logging.WARNING, logger="previsio_sdk"):
            pio.Client()
        assert f"using {BASE_URL}" in caplog.text

    def test_a_master_token_without_url_is_an_error_not_the_local_platform(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """PREVISION_MASTER_TOKEN with no URL raises ConfigurationError (the unit fixture forbids a start)."""
        monkeypatch.setenv("PREVISION_MASTER_TOKEN", TOKEN)
        with pytest.raises(pio.ConfigurationError, match="PREVISION_URL") as info:
            pio.Client()
        assert TOKEN not in str(info.value)

    def test_request_retries_is_read_at_each_request(self, api: MockApi, backoffs: list[int]) -> None:
        """pio.config.request_retries set after the client was made changes how often a GET is retried."""
        client = pio.Client(url=BASE_URL, token=TOKEN)
        config.request_retries = 1
        for _ in range(2):
            api.add("GET", "/projects/p1", status=503)
        with pytest.raises(pio.ServerError):
            client.get("/projects/p1")
        assert len(api.requests) == 2 and backoffs == [1]

    def test_request_retry_time_caps_the_pause(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The pause between two tries never exceeds pio.config.request_retry_time."""
        slept: list[float] = []
        monkeypatch.setattr("time.sleep", slept.append)
        config.request_retry_time = 0.05
        for attempt in range(1, 8):
            pio.Client._backoff(attempt)
        assert slept and max(slept) <= 0.05

    def test_default_timeout_bounds_a_job_wait(self, client: pio.Client, api: MockApi) -> None:
        """With pio.config.default_timeout set, waiting for a job with no timeout= gives up after it."""
        config.default_timeout = 0.0
        api.add("GET", "/jobs/j1", json=job_payload(status="running"))
        with pytest.raises(pio.JobTimeoutError):
            client.wait_job("j1", progress=False)

    def test_verbose_sets_the_sdk_log_level_and_debug_logs_requests(
        self, client: pio.Client, api: MockApi, caplog: pytest.LogCaptureFixture
    ) -> None:
        """pio.verbose(True, debug=True) logs each request's method, path and status, never the token."""
        logger = logging.getLogger("previsio_sdk")
        handlers = list(logger.handlers)
        try:
            pio.verbose(True, debug=True, event_log=False)
            assert logger.level == logging.DEBUG
            api.add("GET", "/projects/p1", json=project_payload())
            with caplog.at_level(logging.DEBUG, logger="previsio_sdk"):
                client.get("/projects/p1")
            assert "GET /api/v1/projects/p1 -> 200" in caplog.text
            assert TOKEN not in caplog.text
            pio.verbose(False)
            assert logger.level == logging.WARNING
        finally:
            logger.handlers[:] = handlers
            logger.setLevel(logging.NOTSET)

    def test_prevision_exception_is_the_base_of_every_error(self) -> None:
        """previsio_sdk.utils.PrevisionException is the base class of the SDK's errors."""
        from previsio_sdk.utils import PrevisionException

        for cls in (
            pio.NotFoundError,
            pio.ConfigurationError,
            pio.JobFailedError,
            pio.ServerUnreachableError,
        ):
            assert issubclass(cls, PrevisionException)


# -- lists and ids -------------------------------------------------------------------------------------------
class TestLists:
    def test_all_false_fetches_only_the_first_page(self, project: pio.Project, api: MockApi) -> None:
        """list_connectors(all=False) sends one request even when the platform has more pages."""
        api.add("GET", "/projects/p1/connectors", json=page_payload([connector_payload()], total=900))
        assert [c._id for c in project.list_connectors(all=False)] == ["c1"]
        assert len(api.requests) == 1 and query_of(api.requests[0]) == {}

    def test_class_level_lists_take_the_project_id(self, client: pio.Client, api: MockApi) -> None:
        """Connector/DataSource/Dataset/Exporter.list(project_id) and Export.list(exporter_id) work."""
        api.add("GET", "/projects/p1/connectors", json=page_payload([connector_payload()]))
        api.add("GET", "/projects/p1/datasources", json=page_payload([datasource_payload()]))
        api.add("GET", "/projects/p1/datasets", json=page_payload([dataset_payload()]))
        api.add("GET", "/projects/p1/exporters", json=page_payload([exporter_payload()]))
        api.add("GET", "/exporters/e1/exports", json=page_payload([export_payload()]))
        assert [c._id for c in pio.Connector.list("p1", all=True, client=client)] == ["c1"]
        assert [d._id for d in pio.DataSource.list("p1", client=client)] == ["s1"]
        assert [d._id for d in pio.Dataset.list("p1", client=client)] == ["d1"]
        assert [e._id for e in pio.Exporter.list("p1", client=client)] == ["e1"]
        assert [x._id for x in pio.Export.list("e1", client=client)] == ["x1"]

    def test_subclass_lists_keep_their_type(self, client: pio.Client, api: MockApi) -> None:
        """SQLConnector.list gives only the SQL connectors, as previsionio filters by conn_type."""
        ftp = connector_payload(id="c2", type="ftp", driver=None)
        api.add("GET", "/projects/p1/connectors", json=page_payload([connector_payload(), ftp]))
        assert [c._id for c in pio.SQLConnector.list("p1", client=client)] == ["c1"]

    def test_project_list_still_takes_a_client_positionally(self, client: pio.Client, api: MockApi) -> None:
        """Project.list(client), the form from before all=, keeps working."""
        api.add("GET", "/projects", json=page_payload([project_payload()]))
        assert [p.id for p in pio.Project.list(client)] == ["p1"]

    def test_every_resource_answers_underscore_id(self, client: pio.Client) -> None:
        """._id and .resource_id are the id, on every resource class."""
        resources = [
            pio.Project.from_dict(project_payload(), client),
            pio.Connector.from_dict(connector_payload(), client),
            pio.DataSource.from_dict(datasource_payload(), client),
            pio.Dataset.from_dict(dataset_payload(), client),
            pio.Exporter.from_dict(exporter_payload(), client),
            pio.Export.from_dict(export_payload(), client),
            pio.Job.from_dict(job_payload(), client),
        ]
        for resource in resources:
            assert resource._id == resource.resource_id == resource.id


# -- projects ------------------------------------------------------------------------------------------------
class TestProjects:
    def test_new_sends_the_colour_value(self, client: pio.Client, api: MockApi) -> None:
        """Project.new(name, description, color) sends #RRGGBB and answers the enum member."""
        api.add("POST", "/projects", status=201, json=project_payload(color="#2996CC"))
        project = pio.Project.new("churn", "about churn", pio.ProjectColor.blue, client=client)
        assert json_of(api.requests[0]) == {"name": "churn", "description": "about churn", "color": "#2996CC"}
        assert project.color is pio.ProjectColor.blue

    def test_from_name_finds_or_raises(self, client: pio.Client, api: MockApi) -> None:
        """Project.from_name returns the project of that name; an unknown name raises NotFoundError."""
        for _ in range(2):
            api.add("GET", "/projects", json=page_payload([project_payload()]))
        assert pio.Project.from_name("churn", client=client)._id == "p1"
        with pytest.raises(pio.NotFoundError):
            pio.Project.from_name("other", client=client)

    def test_info_and_users_have_previsionio_shapes(self, project: pio.Project, api: MockApi) -> None:
        """info() is a dict with previsionio's keys; users() a list of dicts with _id, name and role."""
        members = [
            {"user_id": "u1", "user_name": "ada", "role": "owner"},
            {"user_id": "u2", "user_name": "bob", "role": "viewer"},
        ]
        api.add("GET", "/projects/p1/members", json=page_payload(members))
        api.add("GET", "/projects/p1/datasets", json=page_payload([], total=7, page_size=1))
        info = project.info()
        assert set(info) == {
            "_id",
            "name",
            "description",
            "color",
            "created_by",
            "admins",
            "contributors",
            "viewers",
            "pipelines_count",
            "experiments_count",
            "dataset_count",
            "users",
        }
        assert (info["_id"], info["created_by"], info["admins"], info["viewers"]) == (
            "p1",
            "u1",
            ["ada"],
            ["bob"],
        )
        assert info["dataset_count"] == 7
        assert info["users"][1] == {"_id": "u2", "name": "bob", "role": "viewer"}


# -- connectors, datasources, exporters ----------------------------------------------------------------------
class TestGoogleCloud:
    def test_gcp_connector_sends_the_credentials_as_a_secret(
        self, project: pio.Project, api: MockApi
    ) -> None:
        """create_gcp_connector(name, googleCredentials) creates a gcs connector with the key as a secret."""
        api.add(
            "POST", "/projects/p1/connectors", status=201, json=connector_payload(type="gcs", driver=None)
        )
        key = {"type": "service_account", "project_id": "demo", "private_key": "-----BEGIN..."}
        connector = project.create_gcp_connector("gcs", googleCredentials=key)
        body = json_of(api.requests[0])
        assert (body["type"], body["name"]) == ("gcs", "gcs")
        assert body["secrets"]["credentials"].startswith('{"type": "service_account"')
        assert isinstance(connector, pio.FileConnector)

    @pytest.mark.parametrize("service", [pio.GCloud.big_query, "BigQuery"])
    def test_bigquery_is_refused_before_any_request(
        self, project: pio.Project, api: MockApi, service: object
    ) -> None:
        """gCloud/g_cloud naming BigQuery raise ConfigurationError; nothing is sent."""
        with pytest.raises(pio.ConfigurationError, match="BigQuery"):
            project.create_datasource("c1", "bq", gCloud=service, database="d", table="t")
        with pytest.raises(pio.ConfigurationError, match="BigQuery"):
            project.create_exporter("c1", "bq", g_cloud=service, database="d", table="t")
        assert api.requests == []

    def test_storage_is_accepted_as_enum_or_text(self, project: pio.Project, api: MockApi) -> None:
        """gCloud=GCloud.storage or "Storage" sends the datasource as usual."""
        for service in (pio.GCloud.storage, "Storage"):
            api.add("POST", "/projects/p1/datasources", status=201, json=datasource_payload())
            project.create_datasource("c1", "raw", bucket="lake", path="x.csv", gCloud=service)
        assert "gCloud" not in json_of(api.requests[0])


# -- datasets ------------------------------------------------------------------------------------------------
def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buf)
    return buf.getvalue()


class TestDatasets:
    def test_a_zip_of_csv_is_uploaded_as_its_csv(
        self, project: pio.Project, api: MockApi, tmp_path: Path
    ) -> None:
        """create_dataset(name, file_name='x.zip') uploads the CSV inside (previsionio zips with a folder)."""
        archive = tmp_path / "x.zip"
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("data/regression.csv", "a,b\n1,2\n")
        api.add("POST", "/projects/p1/datasets/upload", status=202, json=job_payload(kind="upload"))
        job = project.create_dataset("x", file_name=str(archive), wait=False)
        assert job._id == "j1"
        assert query_of(api.requests[0]) == {"name": "x", "format": "csv", "file_name": "regression.csv"}
        body = api.requests[0].body
        assert (body if isinstance(body, bytes) else body.read()) == b"a,b\n1,2\n"

    def test_a_zip_of_several_files_is_refused(
        self, project: pio.Project, api: MockApi, tmp_path: Path
    ) -> None:
        """A zip holding two data files raises ConfigurationError before any request."""
        archive = tmp_path / "two.zip"
        with zipfile.ZipFile(archive, "w") as z:
            z.writestr("a.csv", "a\n1\n")
            z.writestr("b.csv", "b\n2\n")
        with pytest.raises(pio.ConfigurationError, match="exactly one"):
            project.create_dataset("x", file_name=archive)
        assert api.requests == []

    def test_an_unknown_origin_is_refused(self, project: pio.Project, api: MockApi) -> None:
        """origin= other than previsionio's two values raises ConfigurationError before any request."""
        with pytest.raises(pio.ConfigurationError, match="origin"):
            project.create_dataset("x", dataframe=pd.DataFrame({"a": [1]}), origin="somewhere")
        assert api.requests == []

    @pytest.mark.parametrize(
        ("kwargs", "written"),
        [
            ({"directoy_path": "."}, "orders_2024_01.zip"),
            ({"directory_path": ".", "extension": "csv"}, "orders_2024_01.csv"),
            ({"path": "out.zip"}, "out.zip"),
            ({"path": "out.csv"}, "out.csv"),
            ({"download_path": "dl.zip"}, "dl.zip"),
            ({}, "orders_2024_01.zip"),
        ],
    )
    def test_download_writes_zip_or_csv(
        self,
        client: pio.Client,
        api: MockApi,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        kwargs: dict[str, str],
        written: str,
    ) -> None:
        """download() as previsionio calls it writes a zip holding <name>.csv, or a CSV, with the rows."""
        monkeypatch.chdir(tmp_path)
        frame = pd.DataFrame({"id": [1, 2], "amount": [1.5, None]})
        api.add("GET", "/datasets/d1/download", body=_parquet_bytes(frame))
        dataset = pio.Dataset.from_dict(dataset_payload(), client)
        client.may_share_files = False
        path = dataset.download(**kwargs)
        assert Path(path).resolve() == (tmp_path / written).resolve()
        if written.endswith(".zip"):
            with zipfile.ZipFile(path) as z:
                assert z.namelist() == ["orders_2024_01.csv"]
                text = z.read("orders_2024_01.csv").decode()
        else:
            text = Path(path).read_text()
        assert text.replace('"', "").splitlines() == ["id,amount", "1,1.5", "2,"]
        assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob(".previsio-*"))

    def test_download_keeps_parquet_for_a_directory_or_a_parquet_path(
        self, client: pio.Client, api: MockApi, tmp_path: Path
    ) -> None:
        """A directory as path= still gets <name>.parquet, and extension="parquet" the stored file."""
        payload = _parquet_bytes(pd.DataFrame({"id": [1]}))
        for _ in range(2):
            api.add("GET", "/datasets/d1/download", body=payload)
        dataset = pio.Dataset.from_dict(dataset_payload(), client)
        assert dataset.download(tmp_path) == str(tmp_path / "orders_2024_01.parquet")
        target = dataset.download(directoy_path=tmp_path, extension="parquet")
        assert Path(target).read_bytes() == payload

    def test_download_refuses_bad_arguments(self, client: pio.Client, tmp_path: Path) -> None:
        """An unknown extension, or both a path and a directory, raise ConfigurationError (nothing sent)."""
        dataset = pio.Dataset.from_dict(dataset_payload(), client)
        with pytest.raises(pio.ConfigurationError, match="extension"):
            dataset.download(directoy_path=tmp_path, extension="xlsx")
        with pytest.raises(pio.ConfigurationError, match="not both"):
            dataset.download(tmp_path / "a.zip", directoy_path=tmp_path)


# -- exports -------------------------------------------------------------------------------------------------
class TestExports:
    def test_wait_for_export_defaults_to_false(self, client: pio.Client, api: MockApi) -> None:
        """export_dataset(dataset) returns the pending export at once, as previsionio does."""
        api.add("POST", "/exporters/e1/exports", status=202, json=export_payload())
        exporter = pio.Exporter.from_dict(exporter_payload(), client)
        export = exporter.export_dataset("d1")
        assert (export.status, export.state, len(api.requests)) == ("pending", "pending", 1)

    @pytest.mark.parametrize(
        ("status", "state"),
        [("pending", "pending"), ("running", "running"), ("succeeded", "done"), ("failed", "failed")],
    )
    def test_state_uses_previsionio_words(self, client: pio.Client, status: str, state: str) -> None:
        """export.state is previsionio's name of export.status (succeeded is done)."""
        assert pio.Export.from_dict(export_payload(status=status), client).state == state

    def test_class_level_export_dataset(self, client: pio.Client, api: MockApi) -> None:
        """Export.export_dataset(exporter_id, dataset, wait_for_export=True) exports and waits."""
        api.add("GET", "/exporters/e1", json=exporter_payload())
        api.add("POST", "/exporters/e1/exports", status=202, json=export_payload())
        api.add("GET", "/exports/x1", json=export_payload(status="succeeded", rows=3))
        export = pio.Export.export_dataset(
            "e1", pio.Dataset.from_dict(dataset_payload(), client), True, client
        )
        assert (export.state, export.rows) == ("done", 3)
        assert json_of(api.requests[1]) == {"dataset_id": "d1"}

    def test_export_file_reads_previsionio_csv_options(
        self, client: pio.Client, api: MockApi, tmp_path: Path
    ) -> None:
        """export_file(path, encoding, separator, decimal, thousands) uploads the rows read with them."""
        path = tmp_path / "fr.csv"
        path.write_text("id;montant\n1;1.234,5\n2;7,25\n", encoding="latin-1")
        api.add("POST", "/exporters/e1/exports/upload", status=202, json=export_payload(source="file"))
        exporter = pio.Exporter.from_dict(exporter_payload(), client)
        exporter.export_file(str(path), "latin-1", ";", ",", ".")
        sent = api.requests[0]
        assert query_of(sent) == {"format": "parquet", "source": "file", "file_name": "fr.csv"}
        body = sent.body if isinstance(sent.body, bytes) else sent.body.read()
        assert pq.read_table(io.BytesIO(body)).to_pylist() == [
            {"id": 1, "montant": 1234.5},
            {"id": 2, "montant": 7.25},
        ]

    def test_export_file_streams_without_thousands(
        self, client: pio.Client, api: MockApi, tmp_path: Path
    ) -> None:
        """separator= and decimal= alone are read by the streaming reader; a plain CSV is sent as it is."""
        path = tmp_path / "semi.csv"
        path.write_text("a;b\n1;2,5\n")
        plain = tmp_path / "plain.csv"
        plain.write_text("a,b\n1,2\n")
        for _ in range(2):
            api.add("POST", "/exporters/e1/exports/upload", status=202, json=export_payload(source="file"))
        exporter = pio.Exporter.from_dict(exporter_payload(), client)
        exporter.export_file(path, separator=";", decimal=",")
        exporter.export_file(plain, origin="pipeline_output")
        first = api.requests[0].body
        assert pq.read_table(io.BytesIO(first if isinstance(first, bytes) else first.read())).to_pylist() == [
            {"a": 1, "b": 2.5}
        ]
        assert query_of(api.requests[1])["format"] == "csv"

    def test_export_file_refuses_unknown_keywords(self, client: pio.Client, tmp_path: Path) -> None:
        """A keyword previsionio does not have either raises ConfigurationError."""
        exporter = pio.Exporter.from_dict(exporter_payload(), client)
        with pytest.raises(pio.ConfigurationError, match="sep"):
            exporter.export_file(tmp_path / "x.csv", sep=";")
