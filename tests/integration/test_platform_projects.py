"""Projects through the SDK: create, fetch, list page by page, delete with their dataset files."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pandas as pd
import pytest

import previsio_sdk as pio


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_new_from_id_list_and_delete_round_trip(client):
    """Project.new returns the stored project; from_id and list find it; after delete() neither does."""
    before = datetime.now(timezone.utc)
    project = pio.Project.new(_name("crud"), description="Ünïcode description ✓", client=client)
    assert len(project.id) >= 16
    assert project.description == "Ünïcode description ✓"
    assert project.created_at is not None and project.created_at.tzinfo is not None
    assert abs((project.created_at - before).total_seconds()) < 60

    fetched = pio.Project.from_id(project.id, client=client)
    assert (fetched.id, fetched.name, fetched.description, fetched.created_at) == (
        project.id,
        project.name,
        project.description,
        project.created_at,
    )
    listed = [p for p in pio.Project.list(client=client) if p.id == project.id]
    assert len(listed) == 1 and isinstance(listed[0], pio.Project) and listed[0].name == project.name
    assert "client" not in repr(project) and project.name in repr(project)

    project.delete()
    with pytest.raises(pio.NotFoundError):
        pio.Project.from_id(project.id, client=client)
    assert project.id not in {p.id for p in pio.Project.list(client=client)}
    with pytest.raises(pio.NotFoundError):
        project.delete()


def test_names_are_stored_without_surrounding_blanks_and_may_be_unicode(client):
    """A project name keeps its inner characters (Unicode, punctuation) and loses its surrounding blanks."""
    inner = f"Ventes 2024 / Été — {uuid.uuid4().hex[:6]} 🚀"
    project = pio.Project.new(f"  {inner}\t", client=client)
    try:
        assert project.name == inner
        assert pio.Project.from_id(project.id, client=client).name == inner
    finally:
        project.delete()


def test_listing_pages_through_more_projects_than_one_page(client):
    """iter_pages('/projects', page_size=3) walks every page: 7 new projects come back once each, in order."""
    created = [pio.Project.new(_name(f"page{i}"), client=client) for i in range(7)]
    try:
        first = client.get("/projects", page=1, page_size=3)
        assert (first["page"], first["page_size"], len(first["items"])) == (1, 3, 3)
        assert first["total"] >= 7
        items = list(client.iter_pages("/projects", page_size=3))
        ids = [item["id"] for item in items]
        assert len(ids) == len(set(ids)) == first["total"]
        mine = [i for i in ids if i in {p.id for p in created}]
        assert mine == [p.id for p in created]  # oldest first
        beyond = client.get("/projects", page=first["total"] // 3 + 2, page_size=3)
        assert beyond["items"] == [] and beyond["total"] == first["total"]
        assert [p.id for p in pio.Project.list(client=client)] == ids
    finally:
        for p in created:
            p.delete()


def test_deleting_a_project_removes_its_dataset_files_and_no_other(client, platform):
    """Project.delete() removes its datasets' Parquet files; another project's dataset stays readable."""
    doomed = pio.Project.new(_name("doomed"), client=client)
    kept = pio.Project.new(_name("kept"), client=client)
    try:
        df = pd.DataFrame({"x": range(50)})
        gone = [doomed.create_dataset(f"d{i}", dataframe=df) for i in range(2)]
        stays = kept.create_dataset("stays", dataframe=df)
        files = platform.home / "datasets"
        for ds in [*gone, stays]:
            assert (files / f"{ds.id}.parquet").is_file()

        doomed.delete()
        for ds in gone:
            assert not (files / f"{ds.id}.parquet").exists()
            with pytest.raises(pio.NotFoundError):
                pio.Dataset.from_id(ds.id, client=client)
        assert (files / f"{stays.id}.parquet").is_file()
        assert pio.Dataset.from_id(stays.id, client=client).to_pandas()["x"].tolist() == list(range(50))
    finally:
        kept.delete()
    assert not (files / f"{stays.id}.parquet").exists()


def test_deleting_a_project_deletes_its_connectors_and_datasources(client, sqlite_path):
    """After Project.delete(), its connectors and datasources answer NotFoundError too."""
    import sqlite3

    con = sqlite3.connect(sqlite_path)
    con.execute("CREATE TABLE t (a INTEGER)")
    con.commit()
    con.close()
    project = pio.Project.new(_name("cascade"), client=client)
    connector = project.create_sql_connector("lite", driver="sqlite", database=str(sqlite_path))
    source = project.create_datasource(connector, "t", table="t")
    project.delete()
    with pytest.raises(pio.NotFoundError):
        pio.Connector.from_id(connector.id, client=client)
    with pytest.raises(pio.NotFoundError):
        pio.DataSource.from_id(source.id, client=client)


def test_list_helpers_page_through_more_than_one_page(project, sqlite_path):
    """list_connectors/list_datasource/list_datasets return every item as resource objects, oldest first."""
    import sqlite3

    con = sqlite3.connect(sqlite_path)
    con.execute("CREATE TABLE t (a INTEGER)")
    con.execute("INSERT INTO t VALUES (1)")
    con.commit()
    con.close()
    connectors = [
        project.create_sql_connector(f"c{i}", driver="sqlite", database=str(sqlite_path)) for i in range(3)
    ]
    sources = [project.create_datasource(connectors[0], f"s{i}", table="t") for i in range(3)]
    datasets = [project.create_dataset(f"d{i}", datasource=sources[0]) for i in range(2)]
    assert [c.id for c in project.list_connectors()] == [c.id for c in connectors]
    assert all(isinstance(c, pio.SQLConnector) for c in project.list_connectors())
    assert [s.id for s in project.list_datasource()] == [s.id for s in sources]
    assert [d.id for d in project.list_datasets()] == [d.id for d in datasets]
    pages = list(project.client.iter_pages(f"/projects/{project.id}/connectors", page_size=2))
    assert [c["id"] for c in pages] == [c.id for c in connectors]
