"""Names and lineage: names are unique per project, and a dataset knows where it came from and outlives it."""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from conftest import RunningPlatform

import previsio_sdk as pio


@dataclass
class Setup:
    """A project with one SQLite connector, one datasource on its table ``t`` and one dataset."""

    project: pio.Project
    connector: pio.SQLConnector
    source: pio.DataSource
    dataset: pio.Dataset


def _sqlite_file(path: Path, rows: int = 3) -> Path:
    con = sqlite3.connect(path)
    with con:
        con.execute("CREATE TABLE t (id INTEGER, name TEXT)")
        con.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"name {i}") for i in range(1, rows + 1)])
    con.close()
    return path


def _setup(project: pio.Project, path: Path) -> Setup:
    connector = project.create_sql_connector("warehouse", driver="sqlite", database=str(path))
    source = project.create_datasource(connector, "orders", table="t")
    dataset = project.create_dataset("orders_2024", datasource=source)
    return Setup(project, connector, source, dataset)


@pytest.fixture
def setup(project: pio.Project, tmp_path: Path) -> Setup:
    """The test's project, with a connector, a datasource and a dataset."""
    return _setup(project, _sqlite_file(tmp_path / "a.db"))


@pytest.fixture
def other_project(client: pio.Client) -> Iterator[pio.Project]:
    """A second project, deleted after the test."""
    proj = pio.Project.new(f"it-other-{uuid.uuid4().hex[:8]}", client=client)
    yield proj
    proj.delete()


#: kind -> how to create a second resource of that kind under the name of the first.
DUPLICATES: dict[str, Callable[[Setup], object]] = {
    "connector": lambda s: s.project.create_sql_connector(
        s.connector.name, driver="sqlite", database=s.connector.database
    ),
    "datasource": lambda s: s.project.create_datasource(s.connector, s.source.name, table="t"),
    "dataset": lambda s: s.project.create_dataset(s.dataset.name, datasource=s.source),
}


@pytest.mark.parametrize("kind", sorted(DUPLICATES))
def test_duplicate_name_in_a_project_is_a_conflict_naming_the_existing_resource(
    setup: Setup, kind: str
) -> None:
    """A second connector, datasource or dataset of one name is a ConflictError naming the first one."""
    existing = {"connector": setup.connector, "datasource": setup.source, "dataset": setup.dataset}[kind]
    with pytest.raises(pio.ConflictError) as info:
        DUPLICATES[kind](setup)
    error = info.value
    assert error.status == 409 and error.code == "conflict"
    assert kind in error.message and repr(existing.name) in error.message  # type: ignore[attr-defined]
    assert existing.id in error.message  # type: ignore[attr-defined]
    assert error.details == {"existing_id": existing.id, "name": existing.name}  # type: ignore[attr-defined]
    counts = (
        len(setup.project.list_connectors()),
        len(setup.project.list_datasource()),
        len(setup.project.list_datasets()),
    )
    assert counts == (1, 1, 1)


def test_same_names_in_two_projects_are_independent(
    setup: Setup, other_project: pio.Project, tmp_path: Path
) -> None:
    """Two projects may each have a connector, a datasource and a dataset of the same names."""
    other = _setup(other_project, _sqlite_file(tmp_path / "b.db", rows=5))
    assert (other.connector.name, other.source.name, other.dataset.name) == (
        setup.connector.name,
        setup.source.name,
        setup.dataset.name,
    )
    assert other.dataset.id != setup.dataset.id
    assert (setup.dataset.num_rows, other.dataset.num_rows) == (3, 5)
    assert [d.id for d in setup.project.list_datasets()] == [setup.dataset.id]
    assert [d.id for d in other_project.list_datasets()] == [other.dataset.id]


def test_dataset_name_is_taken_while_its_snapshot_runs(
    project: pio.Project, pg_connector: pio.SQLConnector
) -> None:
    """The name of a snapshot still running: for another datasource, a ConflictError saying a snapshot is in
    progress; for the same datasource, its job (a re-run cell re-attaches instead of failing)."""
    source = project.create_datasource(
        pg_connector,
        "series",
        request="SELECT g AS id, md5(g::text) AS label FROM generate_series(1, 2000000) g",
    )
    other = project.create_datasource(pg_connector, "other", request="SELECT 1 AS id")
    job = project.create_dataset("series", datasource=source, wait=False)
    try:
        with pytest.raises(pio.ConflictError) as info:
            project.create_dataset("series", datasource=other, wait=False)
        assert "in progress" in info.value.message and "'series'" in info.value.message
        assert project.create_dataset("series", datasource=source, wait=False).id == job.id
    finally:
        dataset = job.wait(timeout=120)
    assert dataset.num_rows == 2_000_000
    assert [d.name for d in project.list_datasets()] == ["series"]


# -- lineage -------------------------------------------------------------------------------------------------
def test_dataset_points_to_its_datasource(setup: Setup, tmp_path: Path) -> None:
    """A snapshot records its datasource, its creation time, its row count, its schema and its file's hash."""
    dataset = pio.Dataset.from_id(setup.dataset.id, client=setup.project.client)
    assert dataset.datasource_id == setup.source.id
    source = dataset.datasource
    assert source is not None
    assert (source.id, source.table, source.connector_id) == (setup.source.id, "t", setup.connector.id)
    assert dataset.origin == "snapshot" and dataset.project_id == setup.project.id
    assert dataset.num_rows == 3
    assert [(c.name, c.type) for c in dataset.schema] == [("id", "int64"), ("name", "string")]
    assert dataset.created_at is not None and dataset.created_at.tzinfo is not None
    assert abs(datetime.now(timezone.utc) - dataset.created_at) < timedelta(minutes=5)
    path = Path(dataset.download(tmp_path))
    data = path.read_bytes()
    assert len(data) == dataset.size_bytes
    assert hashlib.sha256(data).hexdigest() == dataset.content_hash


class _Recorder:
    """Records the path and body size of every answer a requests session receives."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def __call__(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        self.calls.append((requests.utils.urlparse(response.url).path, len(response.content)))


def test_head_transfers_only_the_first_rows(
    platform: RunningPlatform, project: pio.Project, pg_connector: pio.SQLConnector
) -> None:
    """dataset.head(3) returns the first 3 rows and transfers a few KB, not the dataset's file."""
    source = project.create_datasource(
        pg_connector,
        "series",
        request="SELECT g AS id, md5(g::text) AS label FROM generate_series(1, 300000) g ORDER BY g",
    )
    dataset = project.create_dataset("series", datasource=source)
    assert dataset.size_bytes > 1_000_000
    recorder = _Recorder()
    session = requests.Session()
    session.hooks["response"].append(recorder)
    watched = pio.Client(url=platform.url, token=platform.token, session=session)
    head = pio.Dataset.from_id(dataset.id, client=watched).head(3)
    assert list(head["id"]) == [1, 2, 3]
    assert list(head["label"]) == [hashlib.md5(str(i).encode()).hexdigest() for i in (1, 2, 3)]
    assert str(head["id"].dtype) == "int32"  # no NULLs in the column: the plain integer dtype
    assert not any(path.endswith("/download") for path, _size in recorder.calls)
    head_bytes = sum(size for path, size in recorder.calls if path.endswith("/head"))
    assert 0 < head_bytes < 16_384
    assert len(dataset.head(10_000)) == 10_000


def test_head_of_a_small_dataset_returns_all_its_rows(setup: Setup) -> None:
    """head(n) with n beyond the row count returns every row; head(0) returns the columns and no row."""
    assert list(setup.dataset.head(50)["id"]) == [1, 2, 3]
    empty = setup.dataset.head(0)
    assert len(empty) == 0 and list(empty.columns) == ["id", "name"]


def test_deleting_the_datasource_leaves_the_dataset_loadable(setup: Setup) -> None:
    """Once its datasource is deleted, a dataset still loads, and no longer points to a datasource."""
    before = setup.dataset.to_pandas()
    setup.source.delete()
    with pytest.raises(pio.NotFoundError):
        pio.DataSource.from_id(setup.source.id, client=setup.project.client)
    dataset = pio.Dataset.from_id(setup.dataset.id, client=setup.project.client)
    assert dataset.datasource_id is None and dataset.datasource is None
    assert dataset.num_rows == 3
    assert dataset.to_pandas().equals(before)
    assert [d.id for d in setup.project.list_datasets()] == [dataset.id]


def test_deleting_the_connector_with_force_leaves_the_dataset_loadable(setup: Setup) -> None:
    """A connector in use is deleted only with force=True, dropping its datasources, keeping the datasets."""
    with pytest.raises(pio.ConflictError) as info:
        setup.connector.delete()
    assert repr(setup.source.name) in info.value.message
    setup.connector.delete(force=True)
    assert setup.project.list_connectors() == [] and setup.project.list_datasource() == []
    dataset = pio.Dataset.from_id(setup.dataset.id, client=setup.project.client)
    assert dataset.datasource_id is None
    assert list(dataset.to_pandas()["id"]) == [1, 2, 3]
