"""Re-runnable cells against the real platform: exist_ok, re-attaching to a snapshot, cancelling it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import previsio_sdk as pio
from previsio_sdk.cli import sample_database

#: A query long enough (tens of millions of rows) to still run when the test acts on it.
LONG_QUERY = "SELECT g AS id, g * 2 AS twice FROM generate_series(1, 30000000) AS g"


def test_running_the_same_cell_twice_gives_back_the_same_resources(project: pio.Project) -> None:
    """Creating again a connector, datasource and exporter with exist_ok returns the ones that exist."""
    db = str(sample_database())

    def cell() -> tuple[pio.Connector, pio.DataSource, pio.Exporter]:
        connector = project.create_sql_connector("sample", driver="sqlite", database=db, exist_ok=True)
        source = project.create_datasource(connector, "orders", table="orders", exist_ok=True)
        exporter = project.create_exporter(
            connector, "out", table="orders_out", write_mode="replace", exist_ok=True
        )
        return connector, source, exporter

    first, second = cell(), cell()
    assert [x.id for x in first] == [x.id for x in second]
    again = pio.Project.new(
        project.name, description=project.description, client=project.client, exist_ok=True
    )
    assert again.id == project.id == pio.Project.from_name(project.name, client=project.client).id


def test_the_same_name_with_other_settings_still_raises(project: pio.Project, tmp_path: Path) -> None:
    """exist_ok does not hide a real clash: another table under the same name is a ConflictError naming it."""
    connector = project.create_sql_connector("sample", driver="sqlite", database=str(sample_database()))
    project.create_datasource(connector, "orders", table="orders")
    with pytest.raises(pio.ConflictError, match="table 'orders' \\(asked 'customers'\\)"):
        project.create_datasource(connector, "orders", table="customers", exist_ok=True)


def _running(job: pio.Job, deadline: float = 60.0) -> pio.Job:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        job = job.refresh()
        if job.status == "running" and job.progress_rows > 0:
            return job
        assert not job.done, f"the snapshot ended before the test could act on it: {job}"
        time.sleep(0.05)
    raise AssertionError("the snapshot did not start")


def test_asking_again_re_attaches_and_cancel_stops_the_snapshot(pg_connector: pio.SQLConnector) -> None:
    """The same snapshot asked again while it runs is its job; cancel() ends it, keeping no dataset."""
    project = pio.Project.from_id(pg_connector.project_id, client=pg_connector.client)
    source = project.create_datasource(pg_connector, "long", request=LONG_QUERY)
    job = _running(project.create_dataset("long", datasource=source, wait=False))
    again = project.create_dataset("long", datasource=source, wait=False)
    assert again.id == job.id
    job.cancel()
    with pytest.raises(pio.JobFailedError) as info:
        job.wait(timeout=60, progress=False)
    assert info.value.code == "cancelled"
    assert "long" not in {d.name for d in project.list_datasets()}
