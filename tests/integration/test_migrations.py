"""The metadata store's schema is managed by Alembic migrations, and a 0.1.0 home upgrades in place.

``tests/fixtures/home-0.1.0`` is a home written by previsio_sdk 0.1.0 itself (see ``make_home_0_1_0.py``
beside it): its metadata store, key file, admin token and one dataset file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import PG_HOST, PG_PORT, PG_SUPERUSER, start_platform, stop_platform
from sqlalchemy import create_engine, inspect

import previsio_sdk as pio
from previsio_sdk.server.db import BASE_REVISION, Database, SchemaOutOfDate, current_revision, head_revision
from previsio_sdk.server.models import Base

LEGACY_HOME = Path(__file__).parents[1] / "fixtures" / "home-0.1.0"


@pytest.fixture
def legacy_home(tmp_path: Path) -> tuple[Path, dict]:
    """A copy of the home made by 0.1.0, and what it holds (ids, content hash)."""
    home = tmp_path / "home"
    shutil.copytree(LEGACY_HOME, home)
    return home, json.loads((home / "fixture.json").read_text())


@pytest.fixture
def pg_metadata_url() -> Iterator[str]:
    """A PostgreSQL database of the test's own for a metadata store (dropped at the end)."""
    name = f"previsio_meta_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_SUPERUSER, dbname="postgres", autocommit=True
    ) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://{PG_SUPERUSER}@{PG_HOST}:{PG_PORT}/{name}"
    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_SUPERUSER, dbname="postgres", autocommit=True
    ) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _schema_differences(url: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrations_build_exactly_the_models_schema(backend: str, tmp_path: Path, request) -> None:
    """Upgrading an empty store (SQLite or PostgreSQL) to the newest revision gives the models' schema, with
    no difference Alembic can find, and records the revision."""
    url = (
        f"sqlite:///{tmp_path / 'meta.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("pg_metadata_url")
    )
    db = Database(url)
    try:
        assert current_revision(db.engine) == head_revision()
    finally:
        db.engine.dispose()
    assert _schema_differences(url) == []


def test_a_store_left_behind_is_refused_without_auto_upgrade(tmp_path: Path) -> None:
    """With automatic upgrades off, a store that is not at the newest revision (here: an empty one) is refused
    with the command to run, and nothing is created in it; a 0.1.0 store is recognised as being at the first
    revision."""
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(SchemaOutOfDate, match="previsio db upgrade"):
        Database(url, upgrade=False)
    con = sqlite3.connect(tmp_path / "empty.db")
    assert con.execute("SELECT name FROM sqlite_master").fetchall() == []
    con.close()
    shutil.copy(LEGACY_HOME / "platform.db", tmp_path / "platform.db")
    engine = create_engine(f"sqlite:///{tmp_path / 'platform.db'}")
    try:
        assert current_revision(engine) == BASE_REVISION
        assert not inspect(engine).has_table("alembic_version")
    finally:
        engine.dispose()


def test_previsio_db_upgrade_upgrades_a_0_1_0_store_once(legacy_home: tuple[Path, dict]) -> None:
    """``previsio db current`` says a 0.1.0 store needs an upgrade; ``previsio db upgrade`` brings it to the
    newest revision with its rows, and a second run changes nothing."""
    home, _ = legacy_home

    def run(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "previsio_sdk.cli", *args, "--home", str(home)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    head = head_revision()
    if head != BASE_REVISION:
        assert "needs `previsio db upgrade`" in run("db", "current")
    first = run("db", "upgrade")
    assert f"to {head}" in first or f"already at revision {head}" in first
    assert f"already at revision {head}" in run("db", "upgrade")
    assert "up to date" in run("db", "current")
    engine = create_engine(f"sqlite:///{home / 'platform.db'}")
    try:
        assert inspect(engine).has_table("alembic_version")
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM datasets").scalar() == 1
    finally:
        engine.dispose()
    assert _schema_differences(f"sqlite:///{home / 'platform.db'}") == []


def test_a_platform_started_on_a_0_1_0_home_keeps_everything(legacy_home: tuple[Path, dict]) -> None:
    """Today's platform started on a home made by 0.1.0 upgrades it by itself and keeps its data: the admin
    token works, the project, connector (with its encrypted password), datasource, dataset (same bytes) and
    exporter are there, and new snapshots and exports work on them."""
    home, made = legacy_home
    running = start_platform(home)
    try:
        client = running.client()
        project = pio.Project.from_id(made["project_id"], client=client)
        assert project.name == "legacy"
        connector = pio.Connector.from_id(made["connector_id"], client=client)
        assert connector.has_password
        source_db = home.parent / made["source_db"]  # the file moved with the home, out of it
        shutil.move(home / made["source_db"], source_db)
        connector.update(database=str(source_db))
        assert connector.has_password
        assert connector.test()
        dataset = pio.Dataset.from_id(made["dataset_id"], client=client)
        assert dataset.num_rows == 100
        assert dataset.content_hash == made["content_hash"]
        target = home.parent / "legacy.parquet"
        dataset.download(str(target))
        assert hashlib.sha256(target.read_bytes()).hexdigest() == made["content_hash"]
        source = pio.DataSource.from_id(made["datasource_id"], client=client)
        again = project.create_dataset("orders_v2", datasource=source)
        assert again.num_rows == 100
        exporter = pio.Exporter.from_id(made["exporter_id"], client=client)
        assert exporter.export_dataset(again, wait_for_export=True).rows == 100
    finally:
        stop_platform(running)
