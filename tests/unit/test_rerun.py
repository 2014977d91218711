"""Re-runnable cells: exist_ok gives what exists if the settings match; a stopped wait says how to resume."""

from __future__ import annotations

import pytest

import previsio_sdk as pio

from .payloads import (
    MockApi,
    connector_payload,
    dataset_payload,
    datasource_payload,
    exporter_payload,
    job_payload,
    project_payload,
)

TAKEN = {"error": {"code": "conflict", "message": "taken", "details": {"name": "x"}}}


def page(*items: dict) -> dict:
    return {"items": list(items), "total": len(items), "page": 1, "page_size": 500}


@pytest.fixture
def project(client: pio.Client) -> pio.Project:
    return pio.Project.from_dict(project_payload(), client)


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("previsio_sdk.client.time.sleep", lambda s: None)


class TestExistOk:
    def test_a_project_of_the_same_name_is_returned(self, client: pio.Client, api: MockApi) -> None:
        """Project.new(exist_ok=True) returns the project that took the name instead of raising."""
        api.add("POST", "/projects", json=TAKEN, status=409)
        api.add("GET", "/projects", json=page(project_payload(id="p9")))
        project = pio.Project.new("churn", client=client, exist_ok=True)
        assert project.id == "p9"

    def test_a_project_with_another_description_still_raises(self, client: pio.Client, api: MockApi) -> None:
        """A different description is a different project: ConflictError names the difference."""
        api.add("POST", "/projects", json=TAKEN, status=409)
        api.add("GET", "/projects", json=page(project_payload(description="old")))
        with pytest.raises(pio.ConflictError, match="description 'old' \\(asked 'new'\\)"):
            pio.Project.new("churn", description="new", client=client, exist_ok=True)

    def test_without_exist_ok_a_taken_name_raises(self, client: pio.Client, api: MockApi) -> None:
        """By default a taken name is still a ConflictError, with no extra request."""
        api.add("POST", "/projects", json=TAKEN, status=409)
        with pytest.raises(pio.ConflictError):
            pio.Project.new("churn", client=client)

    def test_from_name_finds_a_project_or_suggests_close_names(
        self, client: pio.Client, api: MockApi
    ) -> None:
        """Project.from_name returns the project of that name; a typo gets 'did you mean'."""
        api.add("GET", "/projects", json=page(project_payload()))
        assert pio.Project.from_name("churn", client=client).id == "p1"
        api.add("GET", "/projects", json=page(project_payload()))
        with pytest.raises(pio.NotFoundError, match="Did you mean 'churn'"):
            pio.Project.from_name("chrun", client=client)

    def test_a_connector_with_the_same_settings_is_returned(self, project: pio.Project, api: MockApi) -> None:
        """A re-run create_sql_connector gets the existing connector (its password is set, not compared)."""
        api.add("POST", "/projects/p1/connectors", json=TAKEN, status=409)
        api.add("GET", "/projects/p1/connectors", json=page(connector_payload()))
        connector = project.create_sql_connector(
            "warehouse",
            host="db.example.com",
            port=5432,
            username="me",
            password="pw",
            database="sales",
            exist_ok=True,
        )
        assert isinstance(connector, pio.SQLConnector) and connector.id == "c1"

    def test_a_connector_with_another_host_raises_naming_it(self, project: pio.Project, api: MockApi) -> None:
        """Different settings raise ConflictError naming each one; the password is never in the message."""
        api.add("POST", "/projects/p1/connectors", json=TAKEN, status=409)
        api.add("GET", "/projects/p1/connectors", json=page(connector_payload()))
        with pytest.raises(pio.ConflictError) as info:
            project.create_sql_connector(
                "warehouse",
                host="other.example.com",
                port=5432,
                username="me",
                password="pw-secret",
                database="sales",
                exist_ok=True,
            )
        assert "host 'db.example.com' (asked 'other.example.com')" in str(info.value)
        assert "pw-secret" not in str(info.value)
        assert info.value.details["existing_id"] == "c1"

    def test_a_datasource_and_an_exporter_are_returned_when_the_same(
        self, project: pio.Project, api: MockApi
    ) -> None:
        """create_datasource and create_exporter with exist_ok return the existing ones."""
        api.add("POST", "/projects/p1/datasources", json=TAKEN, status=409)
        api.add("GET", "/projects/p1/datasources", json=page(datasource_payload()))
        source = project.create_datasource("c1", "orders", database="sales", table="orders", exist_ok=True)
        assert source.id == "s1"
        api.add("POST", "/projects/p1/exporters", json=TAKEN, status=409)
        api.add("GET", "/projects/p1/exporters", json=page(exporter_payload()))
        exporter = project.create_exporter(
            "c1", "scores_out", table="scores", write_mode="replace", exist_ok=True
        )
        assert exporter.id == "e1"


class TestSnapshotAgain:
    def test_the_same_snapshot_asked_again_re_attaches(
        self, project: pio.Project, api: MockApi, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A snapshot of the same datasource running under that name is waited for, not a ConflictError."""
        conflict = {
            "error": {
                "code": "conflict",
                "message": "A snapshot in progress named 'o' already exists",
                "details": {"existing_id": "d1", "name": "o", "job_id": "j1", "datasource_id": "s1"},
            }
        }
        api.add("POST", "/projects/p1/datasets", json=conflict, status=409)
        api.add("GET", "/jobs/j1", json=job_payload(status="running", progress_rows=5))
        api.add("GET", "/jobs/j1", json=job_payload(status="succeeded", progress_rows=3))
        api.add("GET", "/datasets/d1", json=dataset_payload())
        dataset = project.create_dataset("o", datasource="s1", progress=False)
        assert dataset.id == "d1"
        assert "already running: waiting for it (pio.Job.from_id('j1'))" in capsys.readouterr().err

    def test_a_snapshot_of_another_datasource_still_conflicts(
        self, project: pio.Project, api: MockApi
    ) -> None:
        """The name taken by a snapshot of another datasource is a ConflictError."""
        conflict = {
            "error": {
                "code": "conflict",
                "message": "taken",
                "details": {"job_id": "j1", "datasource_id": "s2"},
            }
        }
        api.add("POST", "/projects/p1/datasets", json=conflict, status=409)
        with pytest.raises(pio.ConflictError):
            project.create_dataset("o", datasource="s1", progress=False)


class TestInterrupt:
    def test_an_interrupted_wait_says_how_to_get_back_to_the_job(
        self,
        client: pio.Client,
        api: MockApi,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Ctrl-C while waiting prints Job.from_id(...).wait() and .cancel(), then re-raises the interrupt."""
        api.add("GET", "/jobs/j1", json=job_payload(status="running", progress_rows=5))

        def interrupt(_: float) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr("previsio_sdk.client.time.sleep", interrupt)
        job = pio.Job.from_dict(job_payload(), client)
        with pytest.raises(KeyboardInterrupt):
            job.wait(progress=False)
        err = capsys.readouterr().err
        assert "pio.Job.from_id('j1').wait()" in err and "pio.Job.from_id('j1').cancel()" in err

    def test_a_job_is_found_again_and_cancelled(self, client: pio.Client, api: MockApi) -> None:
        """Job.from_id fetches the job; cancel() posts to /jobs/<id>/cancel."""
        api.add("GET", "/jobs/j1", json=job_payload(status="running"))
        api.add("POST", "/jobs/j1/cancel", json=job_payload(status="running"))
        job = pio.Job.from_id("j1", client=client)
        assert job.cancel().id == "j1"
        assert api.requests[1].method == "POST"
