"""An SQLite connector cannot open the platform's own files: its metadata store holds every user's data."""

from __future__ import annotations

import pytest

import previsio_sdk as pio


@pytest.mark.parametrize("relative", ["platform.db", "datasets", "nested/../platform.db"])
def test_an_sqlite_connector_to_the_platform_home_is_refused(platform, project: pio.Project, relative: str):
    """Creating an SQLite connector on a file of the platform's home is a 422 unsafe_path."""
    with pytest.raises(pio.ValidationError) as caught:
        project.create_sql_connector("own", driver="sqlite", database=str(platform.home / relative))
    assert caught.value.code == "unsafe_path"
    assert not any(c.name == "own" for c in project.list_connectors())


def test_a_connector_cannot_be_moved_onto_the_platform_metadata_store(
    platform, project: pio.Project, sqlite_path
):
    """Updating an SQLite connector's database to the platform's metadata store is refused too."""
    import sqlite3

    sqlite3.connect(sqlite_path).close()
    connector = project.create_sql_connector("mine", driver="sqlite", database=str(sqlite_path))
    with pytest.raises(pio.ValidationError) as caught:
        connector.update(database=str(platform.home / "platform.db"))
    assert caught.value.code == "unsafe_path"
    assert pio.Connector.from_id(connector.id, client=project.client).database == str(sqlite_path)
