"""Exporters and exports: creation, listing, exporting datasets, files and DataFrames, waiting, errors."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import previsio_sdk as pio

from .payloads import (
    MockApi,
    assert_request,
    dataset_payload,
    error_payload,
    export_payload,
    exporter_payload,
    page_payload,
    path_of,
    project_payload,
    query_of,
)


@pytest.fixture(autouse=True)
def _no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """Export polling does not wait between polls in this module."""
    monkeypatch.setattr("previsio_sdk.client.time.sleep", lambda s: None)


@pytest.fixture
def project(client: pio.Client) -> pio.Project:
    return pio.Project.from_dict(project_payload(), client)


@pytest.fixture
def exporter(client: pio.Client) -> pio.Exporter:
    return pio.Exporter.from_dict(exporter_payload(), client)


def _body(**overrides: object) -> dict[str, object]:
    """The body create_exporter sends, with the defaults of a table exporter."""
    body: dict[str, object] = {
        "name": "scores_out",
        "connector_id": "c1",
        "description": None,
        "path": None,
        "bucket": None,
        "database": None,
        "table": "scores",
        "write_mode": "replace",
        "key": None,
    }
    body.update(overrides)
    return body


class TestCreateExporter:
    def test_posts_the_destination_and_the_write_mode(self, project: pio.Project, api: MockApi) -> None:
        """create_exporter posts the destination fields and the mode's value, and returns an Exporter."""
        api.add("POST", "/projects/p1/exporters", status=201, json=exporter_payload())

        exporter = project.create_exporter(
            "c1", "scores_out", table="scores", write_mode=pio.ExporterWriteMode.replace
        )

        assert_request(api.requests[0], "POST", "/projects/p1/exporters", body=_body())
        assert isinstance(exporter, pio.Exporter)
        assert (exporter.id, exporter.table, exporter.write_mode) == (
            "e1",
            "scores",
            pio.ExporterWriteMode.replace,
        )

    def test_the_default_mode_is_safe(self, project: pio.Project, api: MockApi) -> None:
        """Without write_mode the exporter is safe (files: never overwrite)."""
        api.add(
            "POST",
            "/projects/p1/exporters",
            status=201,
            json=exporter_payload(table=None, path="out/scores.csv", write_mode="safe"),
        )

        project.create_exporter("c1", "scores_out", path="out/scores.csv")

        assert_request(
            api.requests[0],
            "POST",
            "/projects/p1/exporters",
            body=_body(table=None, path="out/scores.csv", write_mode="safe"),
        )

    def test_a_key_given_as_a_name_is_sent_as_a_list(self, project: pio.Project, api: MockApi) -> None:
        """key="id" is sent as ["id"]; a mode given as text is accepted."""
        api.add(
            "POST",
            "/projects/p1/exporters",
            status=201,
            json=exporter_payload(write_mode="upsert", key=["id"]),
        )

        exporter = project.create_exporter("c1", "scores_out", table="scores", write_mode="upsert", key="id")

        assert_request(
            api.requests[0], "POST", "/projects/p1/exporters", body=_body(write_mode="upsert", key=["id"])
        )
        assert exporter.key == ["id"]

    def test_a_format_is_sent_as_an_option(self, project: pio.Project, api: MockApi) -> None:
        """format= goes in the destination's options."""
        api.add(
            "POST", "/projects/p1/exporters", status=201, json=exporter_payload(options={"format": "tsv"})
        )

        project.create_exporter("c1", "scores_out", path="x.data", format="tsv")

        sent = _body(table=None, path="x.data", write_mode="safe", options={"format": "tsv"})
        assert_request(api.requests[0], "POST", "/projects/p1/exporters", body=sent)

    def test_an_unknown_mode_fails_before_any_request(self, project: pio.Project, api: MockApi) -> None:
        """A write mode that does not exist is a ConfigurationError listing the modes; nothing is sent."""
        with pytest.raises(pio.ConfigurationError) as info:
            project.create_exporter("c1", "out", table="t", write_mode="overwrite")
        assert "safe, replace, timestamp, append, upsert" in str(info.value)
        assert api.requests == []

    def test_a_mode_that_does_not_fit_raises_validation_error(
        self, project: pio.Project, api: MockApi
    ) -> None:
        """The platform's 422 (a file mode for a table) comes back as ValidationError with its details."""
        api.add(
            "POST",
            "/projects/p1/exporters",
            status=422,
            json=error_payload(
                "validation_error",
                "The write mode 'safe' does not apply to sql connectors; use one of replace, append, upsert.",
                {"field": "write_mode", "allowed": ["replace", "append", "upsert"]},
            ),
        )

        with pytest.raises(pio.ValidationError) as info:
            project.create_exporter("c1", "out", table="t")
        assert info.value.details["allowed"] == ["replace", "append", "upsert"]

    def test_lists_exporters_under_both_names(self, project: pio.Project, api: MockApi) -> None:
        """list_exporter (the Prevision name) and list_exporters page through the project's exporters."""
        page = page_payload([exporter_payload(), exporter_payload(id="e2", name="other")])
        api.add("GET", "/projects/p1/exporters", json=page)
        api.add("GET", "/projects/p1/exporters", json=page)

        assert [e.id for e in project.list_exporter()] == ["e1", "e2"]
        assert [e.name for e in project.list_exporters()] == ["scores_out", "other"]
        assert query_of(api.requests[0]) == {"page": "1", "page_size": "500"}


class TestExporterResource:
    def test_from_id_fetches_and_delete_deletes(self, client: pio.Client, api: MockApi) -> None:
        """Exporter.from_id GETs /exporters/{id}; delete() DELETEs it."""
        api.add("GET", "/exporters/e1", json=exporter_payload(description="nightly"))
        api.add("DELETE", "/exporters/e1", status=204)

        exporter = pio.Exporter.from_id("e1", client=client)
        exporter.delete()

        assert exporter.description == "nightly"
        assert_request(api.requests[0], "GET", "/exporters/e1")
        assert_request(api.requests[1], "DELETE", "/exporters/e1")

    def test_an_unknown_exporter_raises_not_found(self, client: pio.Client, api: MockApi) -> None:
        api.add(
            "GET",
            "/exporters/nope",
            status=404,
            json=error_payload("not_found", "No exporter with id 'nope'."),
        )

        with pytest.raises(pio.NotFoundError):
            pio.Exporter.from_id("nope", client=client)

    def test_repr_names_the_destination(self, exporter: pio.Exporter) -> None:
        text = repr(exporter)
        assert "scores_out" in text and "scores" in text and "client" not in text


class TestExportDataset:
    def test_posts_the_dataset_then_polls_the_export(self, exporter: pio.Exporter, api: MockApi) -> None:
        """export_dataset posts the dataset id, then polls /exports/{id} until it succeeds."""
        api.add("POST", "/exporters/e1/exports", status=202, json=export_payload())
        api.add("GET", "/exports/x1", json=export_payload(status="running", progress_rows=10))
        api.add(
            "GET",
            "/exports/x1",
            json=export_payload(
                status="succeeded",
                rows=20,
                progress_rows=20,
                destination="sales.public.scores",
                started_at="2024-05-01T12:00:01Z",
                finished_at="2024-05-01T12:00:03.5Z",
            ),
        )

        dataset = pio.Dataset.from_dict(dataset_payload(), exporter.client)
        export = exporter.export_dataset(dataset, wait_for_export=True, progress=False)

        assert_request(api.requests[0], "POST", "/exporters/e1/exports", body={"dataset_id": "d1"})
        assert_request(api.requests[1], "GET", "/exports/x1")
        assert isinstance(export, pio.Export)
        assert (export.status, export.rows, export.destination, export.done) == (
            "succeeded",
            20,
            "sales.public.scores",
            True,
        )
        assert export.duration == 2.5

    def test_without_waiting_returns_the_pending_export(self, exporter: pio.Exporter, api: MockApi) -> None:
        """wait_for_export=False returns after the POST; the export can be waited for later."""
        api.add("POST", "/exporters/e1/exports", status=202, json=export_payload())
        api.add("GET", "/exports/x1", json=export_payload(status="succeeded", rows=3))

        export = exporter.export_dataset("d1", wait_for_export=False)
        assert (export.status, export.done, export.duration) == ("pending", False, None)
        assert len(api.requests) == 1
        assert export.wait(progress=False).rows == 3

    def test_a_failed_export_raises_job_failed_with_the_reason(
        self, exporter: pio.Exporter, api: MockApi
    ) -> None:
        """An export that fails raises JobFailedError carrying the platform's code and message."""
        api.add("POST", "/exporters/e1/exports", status=202, json=export_payload())
        api.add(
            "GET",
            "/exports/x1",
            json=export_payload(
                status="failed",
                error_code="incompatible_schema",
                error_message="The dataset does not fit table 'scores'.",
            ),
        )

        with pytest.raises(pio.JobFailedError) as info:
            exporter.export_dataset("d1", wait_for_export=True, progress=False)
        assert (info.value.code, info.value.job_id) == ("incompatible_schema", "x1")
        assert "does not fit" in info.value.message

    def test_a_slow_export_raises_job_timeout(self, exporter: pio.Exporter, api: MockApi) -> None:
        api.add("POST", "/exporters/e1/exports", status=202, json=export_payload())
        api.add("GET", "/exports/x1", json=export_payload(status="running"))

        with pytest.raises(pio.JobTimeoutError):
            exporter.export_dataset("d1", wait_for_export=True, timeout=0.0, progress=False)

    def test_a_dataset_of_another_project_raises_not_found(
        self, exporter: pio.Exporter, api: MockApi
    ) -> None:
        api.add(
            "POST",
            "/exporters/e1/exports",
            status=404,
            json=error_payload("not_found", "No dataset in this project with id 'd9'."),
        )

        with pytest.raises(pio.NotFoundError):
            exporter.export_dataset("d9")

    def test_lists_exports_and_fetches_one(self, exporter: pio.Exporter, api: MockApi) -> None:
        api.add(
            "GET", "/exporters/e1/exports", json=page_payload([export_payload(status="succeeded", rows=1)])
        )
        api.add("GET", "/exports/x1", json=export_payload(status="succeeded", rows=1))

        exports = exporter.list_exports()
        assert [(e.id, e.rows) for e in exports] == [("x1", 1)]
        assert exports[0].refresh().rows == 1
        assert path_of(api.requests[1]) == "/exports/x1"


class TestExportFileAndDataFrame:
    @pytest.mark.parametrize(("name", "fmt"), [("scores.csv", "csv"), ("scores.parquet", "parquet")])
    def test_uploads_the_file_as_raw_bytes(
        self, exporter: pio.Exporter, api: MockApi, tmp_path: Path, name: str, fmt: str
    ) -> None:
        """export_file posts the file's bytes with its format and name."""
        path = tmp_path / name
        path.write_bytes(b"id\n1\n")
        api.add("POST", "/exporters/e1/exports/upload", status=202, json=export_payload(source="file"))

        export = exporter.export_file(path, wait_for_export=False)

        sent = api.requests[0]
        assert path_of(sent) == "/exporters/e1/exports/upload"
        assert query_of(sent) == {"format": fmt, "source": "file", "file_name": name}
        assert sent.headers["Content-Type"] == "application/octet-stream"
        assert export.source == "file"

    def test_an_unknown_file_format_fails_before_any_request(
        self, exporter: pio.Exporter, api: MockApi, tmp_path: Path
    ) -> None:
        path = tmp_path / "scores.xlsx"
        path.write_bytes(b"PK")
        with pytest.raises(pio.ConfigurationError):
            exporter.export_file(path)
        assert api.requests == []

    def test_uploads_a_dataframe_as_parquet(self, exporter: pio.Exporter, api: MockApi) -> None:
        """export_dataframe uploads Parquet bytes of the frame (without its index) as a dataframe source."""
        df = pd.DataFrame({"id": [1, 2], "score": [0.5, 0.25]}, index=[7, 8])
        api.add("POST", "/exporters/e1/exports/upload", status=202, json=export_payload(source="dataframe"))
        api.add("GET", "/exports/x1", json=export_payload(source="dataframe", status="succeeded", rows=2))

        export = exporter.export_dataframe(df, wait_for_export=True, progress=False)

        sent = api.requests[0]
        assert query_of(sent) == {"format": "parquet", "source": "dataframe"}
        body = sent.body if isinstance(sent.body, bytes) else sent.body.read()
        assert pq.read_table(io.BytesIO(body)).to_pylist() == [
            {"id": 1, "score": 0.5},
            {"id": 2, "score": 0.25},
        ]
        assert (export.source, export.rows) == ("dataframe", 2)


def test_write_modes_are_strings() -> None:
    """ExporterWriteMode values compare and format as their names."""
    assert pio.ExporterWriteMode.upsert == "upsert"
    assert str(pio.ExporterWriteMode.timestamp) == "timestamp"
    assert [m.value for m in pio.ExporterWriteMode] == ["safe", "replace", "timestamp", "append", "upsert"]
