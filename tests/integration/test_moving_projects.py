"""Connection maps, backup, restore, migration and teardown, across two platforms started side by side.

The session's platform is the source; a second platform, with its own home and port, is the other side (a
"staging" server). Both allow the same local root, so a local file connector can move between them.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import (
    PG_HOST,
    PG_PORT,
    PG_SCRAM_PASSWORD,
    PG_SCRAM_USER,
    RunningPlatform,
    start_platform,
    stop_platform,
)

import previsio_sdk as pio
from previsio_sdk import Project
from previsio_sdk.backup import FORMAT_VERSION


@pytest.fixture(scope="module")
def local_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory both platforms allow local connectors in, holding a CSV file."""
    root = tmp_path_factory.getbasetemp() / "local-roots" / f"moving-{uuid.uuid4().hex[:6]}"
    root.mkdir(parents=True)
    (root / "cities.csv").write_text("city,population\nParis,2100000\nLyon,520000\nNantes,320000\n")
    return root


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    """A second platform, side by side with the session's one: another home, another port."""
    roots = json.dumps([str(tmp_path_factory.getbasetemp() / "local-roots")])
    running = start_platform(tmp_path_factory.mktemp("other-home"), env={"PREVISIO_LOCAL_ROOTS": roots})
    yield running
    stop_platform(running)


@pytest.fixture
def other_client(other: RunningPlatform) -> Iterator[pio.Client]:
    """A client of the other platform; every project created there by the test is deleted after it."""
    client = other.client()
    before = {p.id for p in Project.list(client)}
    yield client
    for p in Project.list(client):
        if p.id not in before:
            p.delete()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    """An SQLite file with a table of 5 orders."""
    path = tmp_path / "shop.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount REAL, customer TEXT)")
    con.executemany("INSERT INTO orders VALUES (?, ?, ?)", [(i, i * 1.5, f"c{i}") for i in range(1, 6)])
    con.commit()
    con.close()
    return path


@pytest.fixture
def pg_table(pg_exec, pg_database: str) -> str:  # type: ignore[no-untyped-def]
    """A PostgreSQL table of 100 rows, readable by the scram role."""
    name = f"sales_{uuid.uuid4().hex[:6]}"
    pg_exec(f"CREATE TABLE {name} (id integer, amount numeric(10, 2), at timestamptz)")
    pg_exec(f"INSERT INTO {name} SELECT g, g * 1.25, now() FROM generate_series(1, 100) g")
    pg_exec(f"GRANT SELECT ON {name} TO {PG_SCRAM_USER}")
    return name


@pytest.fixture
def rich_project(  # type: ignore[no-untyped-def]
    project: Project, pg_database: str, pg_table: str, sqlite_db: Path, local_root: Path, monkeypatch
) -> Project:
    """A project with SQL (PostgreSQL, SQLite) and file connectors, datasources, and four datasets."""
    monkeypatch.setenv("IT_PG_PASSWORD", PG_SCRAM_PASSWORD)
    project.add_connectors(
        {
            "warehouse": {
                "driver": "postgresql",
                "host": PG_HOST,
                "port": PG_PORT,
                "username": PG_SCRAM_USER,
                "password": "${IT_PG_PASSWORD}",
                "database": pg_database,
            },
            "shop": {"driver": "sqlite", "database": str(sqlite_db)},
            "files": {"type": "local", "root": str(local_root)},
        }
    )
    conns = project.connectors
    sales = project.create_datasource(conns["warehouse"], "sales", table=pg_table)
    orders = project.create_datasource(conns["shop"], "orders", table="orders")
    cities = project.create_datasource(conns["files"], "cities", path="cities.csv")
    project.create_dataset("sales_v1", datasource=sales)
    project.create_dataset("orders_v1", datasource=orders)
    project.create_dataset("cities_v1", datasource=cities)
    project.create_dataset("uploaded", file_name=_parquet(sqlite_db.parent / "up.parquet", 42))
    project.create_exporter(conns["shop"], "scores_out", table="scores", write_mode="replace")
    return project


def _parquet(path: Path, rows: int) -> Path:
    pq.write_table(
        pa.table({"n": pa.array(range(rows), pa.int64()), "s": [f"r{i}" for i in range(rows)]}), path
    )
    return path


def _lineage(project: Project) -> dict[str, tuple[str | None, str | None]]:
    """Dataset name -> (datasource name, connector name)."""
    sources = {s.id: s for s in project.list_datasources()}
    connectors = {c.id: c.name for c in project.list_connectors()}
    out: dict[str, tuple[str | None, str | None]] = {}
    for d in project.list_datasets():
        src = sources.get(d.datasource_id or "")
        out[d.name] = (src.name if src else None, connectors[src.connector_id] if src else None)
    return out


def _same_data(a: pio.Dataset, b: pio.Dataset) -> None:
    assert b.num_rows == a.num_rows
    assert [(c.name, c.type) for c in b.schema] == [(c.name, c.type) for c in a.schema]
    assert b.to_arrow().equals(a.to_arrow())


# -- connection maps -----------------------------------------------------------------------------------------
def test_add_connectors_from_a_yaml_file_reads_variables_and_relative_paths(  # type: ignore[no-untyped-def]
    project: Project, tmp_path: Path, sqlite_db: Path, monkeypatch
) -> None:
    """A YAML file creates its connectors; ${VAR} comes from the environment, a relative SQLite path from
    the file's directory; the map looks connectors up by name and its repr shows no secret."""
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    (conf_dir / "data").mkdir()
    os.replace(sqlite_db, conf_dir / "data" / "local.db")
    monkeypatch.setenv("IT_WAREHOUSE_PASSWORD", "s3cr3t-Value")
    config = conf_dir / "connections.yaml"
    config.write_text(
        "warehouse:\n  driver: postgresql\n  host: db.example.com\n  port: 5432\n  username: analyst\n"
        "  password: ${IT_WAREHOUSE_PASSWORD}\n  database: sales\n"
        "local:\n  driver: sqlite\n  database: data/local.db\n"
    )
    made = project.add_connectors(config)
    assert [c.name for c in made] == ["warehouse", "local"]
    conns = project.connectors
    assert conns["warehouse"].has_password and conns["warehouse"].port == 5432
    assert conns["local"].database == str(conf_dir / "data" / "local.db")
    assert conns["local"].test()
    text = repr(conns)
    assert "warehouse" in text and "sql/postgresql" in text and "db.example.com:5432/sales" in text
    assert "s3cr3t" not in text
    with pytest.raises(KeyError) as info:
        conns["warehous"]
    assert isinstance(info.value, pio.ConnectorNotFoundError)
    assert "Did you mean 'warehouse'" in str(info.value)


def test_an_existing_name_is_a_conflict_unless_override(project: Project, sqlite_db: Path) -> None:
    """Adding an existing name fails naming it and creates nothing; override_existing replaces the settings
    and the datasources using the connector keep working."""
    project.add_connectors({"shop": {"driver": "sqlite", "database": "/nowhere/x.db"}})
    src = project.create_datasource(project.connectors["shop"], "orders", table="orders", check=False)
    with pytest.raises(pio.ConflictError, match="'shop'"):
        project.add_connectors(
            {
                "new_one": {"driver": "sqlite", "database": str(sqlite_db)},
                "shop": {"driver": "sqlite", "database": "y"},
            }
        )
    assert list(project.connectors) == ["shop"]
    (updated,) = project.add_connectors(
        {"shop": {"driver": "sqlite", "database": str(sqlite_db)}}, override_existing=True
    )
    assert updated.database == str(sqlite_db)
    assert project.create_dataset("orders", datasource=src).num_rows == 5


def test_a_call_creates_all_its_connectors_or_none(project: Project, sqlite_db: Path) -> None:
    """When the platform refuses one connector, those the call created before it are deleted again."""
    with pytest.raises(pio.ValidationError):
        project.add_connectors(
            {
                "good": {"driver": "sqlite", "database": str(sqlite_db)},
                "bad": {"driver": "oracle", "host": "db.example.com"},
            }
        )
    assert len(project.connectors) == 0


def test_validation_problems_are_reported_before_anything_is_created(project: Project) -> None:
    """Every problem of a configuration is in one error, and nothing is created."""
    with pytest.raises(pio.ConfigurationError) as info:
        project.add_connectors(
            {
                "ok": {"driver": "sqlite", "database": "/tmp/x.db"},
                "a": {"host": "h"},
                "b": {"driver": "sqlite"},
            }
        )
    assert info.value.details == [
        "a.driver: missing: give driver (an SQL database) or type (ftp, s3...)",
        "b.database: missing: the SQLite database file",
    ]
    assert len(project.connectors) == 0


def test_rename_and_credential_rotation(project: Project, pg_database: str, pg_table: str) -> None:
    """A connector renamed and given a new password keeps its datasources, and the new password is used."""
    (conn,) = project.add_connectors(
        {
            "pg": {
                "driver": "postgresql",
                "host": PG_HOST,
                "port": PG_PORT,
                "username": PG_SCRAM_USER,
                "password": "wrong-password",
                "database": pg_database,
            }
        }
    )
    assert not conn.test()
    src = project.create_datasource(conn, "sales", table=pg_table, check=False)
    assert conn.update(password=PG_SCRAM_PASSWORD) is conn
    assert conn.test()
    conn.rename("warehouse")
    assert conn.name == "warehouse" and list(project.connectors) == ["warehouse"]
    assert project.create_dataset("sales", datasource=src).num_rows == 100


# -- teardown ------------------------------------------------------------------------------------------------
def test_connector_delete_lists_its_users_unless_forced(project: Project, sqlite_db: Path, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Deleting a used connector is refused, naming its datasources and exporters; force deletes them too."""
    (conn,) = project.add_connectors({"shop": {"driver": "sqlite", "database": str(sqlite_db)}})
    project.create_datasource(conn, "orders", table="orders")
    project.create_exporter(conn, "out", table="orders_copy", write_mode="replace")
    with pytest.raises(pio.ConflictError) as info:
        conn.delete()
    assert "'orders'" in str(info.value) and "'out'" in str(info.value)
    assert [d["name"] for d in info.value.details["datasources"]] == ["orders"]
    assert [e["name"] for e in info.value.details["exporters"]] == ["out"]
    conn.delete(force=True)
    assert project.list_datasources() == [] and project.list_exporters() == []
    assert len(project.connectors) == 0


def test_project_delete_removes_its_files_and_nothing_of_other_projects(
    client: pio.Client, platform, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    """Deleting a project removes its dataset files; another project's files stay."""
    a = Project.new(f"it-del-a-{uuid.uuid4().hex[:6]}", client=client)
    b = Project.new(f"it-del-b-{uuid.uuid4().hex[:6]}", client=client)
    try:
        da = a.create_dataset("d", file_name=_parquet(tmp_path / "a.parquet", 10))
        db = b.create_dataset("d", file_name=_parquet(tmp_path / "b.parquet", 11))
        files = {p.stem: p for p in platform.home.rglob("*.parquet")}
        assert da.id in files and db.id in files
        a.delete()
        assert not files[da.id].exists()
        assert files[db.id].exists() and b.list_datasets()[0].num_rows == 11
    finally:
        b.delete()


# -- migration -----------------------------------------------------------------------------------------------
def test_migrate_a_project_to_another_platform(rich_project: Project, other_client: pio.Client) -> None:
    """Every dataset arrives with its rows, schema and lineage; connectors arrive without secrets (marked as
    needing credentials), and a second run duplicates nothing."""
    name = f"{rich_project.name}-staging"
    target = rich_project.migrate(to=other_client, name=name)
    assert target.client is other_client and target.name == name
    source_sets = {d.name: d for d in rich_project.list_datasets()}
    target_sets = {d.name: d for d in target.list_datasets()}
    assert set(target_sets) == {"sales_v1", "orders_v1", "cities_v1", "uploaded"}
    for ds_name, ds in source_sets.items():
        _same_data(ds, target_sets[ds_name])
    assert (
        _lineage(target)
        == _lineage(rich_project)
        == {
            "sales_v1": ("sales", "warehouse"),
            "orders_v1": ("orders", "shop"),
            "cities_v1": ("cities", "files"),
            "uploaded": (None, None),
        }
    )
    conns = target.connectors
    assert conns["warehouse"].needs_credentials and not conns["warehouse"].has_password
    assert not conns["warehouse"].test() and conns["warehouse"].test().code == "needs_credentials"
    assert not conns["shop"].needs_credentials and conns["shop"].test()
    assert "needs credentials" in repr(conns)

    (exporter,) = target.list_exporters()
    assert (exporter.name, exporter.table, exporter.write_mode.value) == ("scores_out", "scores", "replace")
    assert exporter.connector_id == conns["shop"].id

    again = rich_project.migrate(to=other_client, name=name)
    assert again.id == target.id
    assert len(target.list_datasets()) == 4 and len(target.list_connectors()) == 3

    conns["warehouse"].update(password=PG_SCRAM_PASSWORD)
    assert not conns["warehouse"].needs_credentials and conns["warehouse"].test()
    src = {s.name: s for s in target.list_datasources()}["sales"]
    assert target.create_dataset("sales_v2", datasource=src).num_rows == 100


def test_migrate_a_subset_and_copy_one_dataset(rich_project: Project, other_client: pio.Client) -> None:
    """Chosen datasets go with their datasource and connector only; copy_to moves one dataset."""
    target = rich_project.migrate(to=other_client, datasets=["orders_v1"], name=f"{rich_project.name}-sub")
    assert [d.name for d in target.list_datasets()] == ["orders_v1"]
    assert list(target.connectors) == ["shop"] and [s.name for s in target.list_datasources()] == ["orders"]
    cities = {d.name: d for d in rich_project.list_datasets()}["cities_v1"]
    copied = cities.copy_to(target)
    assert copied.project_id == target.id
    _same_data(cities, copied)
    assert _lineage(target)["cities_v1"] == ("cities", "files")


# -- backup and restore --------------------------------------------------------------------------------------
def test_backup_then_restore_on_a_fresh_platform(  # type: ignore[no-untyped-def]
    rich_project: Project, other_client: pio.Client, tmp_path: Path
) -> None:
    """The archive holds a versioned manifest and the Parquet files; restoring it with the passphrase brings
    back everything, secrets included; without it, connectors are marked as needing credentials."""
    archive = rich_project.backup(tmp_path / "p.tar", include_secrets=True, passphrase="correct horse")
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        assert sorted(tar.getnames()) == sorted(["manifest.json"] + [d["file"] for d in manifest["datasets"]])
    assert manifest["format"] == "previsio-backup" and manifest["version"] == FORMAT_VERSION
    assert {c["name"] for c in manifest["connectors"]} == {"warehouse", "shop", "files"}
    assert [(e["name"], e["connector"]) for e in manifest["exporters"]] == [("scores_out", "shop")]
    assert PG_SCRAM_PASSWORD not in archive.read_bytes().decode("latin-1")

    restored = Project.restore(
        archive, name=f"{rich_project.name}-r1", client=other_client, passphrase="correct horse"
    )
    assert restored.connectors["warehouse"].test()
    for d in rich_project.list_datasets():
        _same_data(d, {x.name: x for x in restored.list_datasets()}[d.name])
    assert _lineage(restored) == _lineage(rich_project)
    assert [e.name for e in restored.list_exporters()] == ["scores_out"]

    with pytest.raises(pio.ConfigurationError, match="passphrase"):
        Project.restore(
            archive, name=f"{rich_project.name}-r2", client=other_client, passphrase="wrong horse"
        )
    assert f"{rich_project.name}-r2" not in [p.name for p in Project.list(other_client)]

    bare = Project.restore(archive, name=f"{rich_project.name}-r3", client=other_client)
    assert bare.connectors["warehouse"].needs_credentials
    given = Project.restore(
        archive,
        name=f"{rich_project.name}-r4",
        client=other_client,
        secrets={"warehouse": {"password": PG_SCRAM_PASSWORD}},
    )
    assert given.connectors["warehouse"].test()


def _archive_of(project: Project, path: Path) -> Path:
    return project.backup(path)


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "newer_version", "not_a_tar"])
def test_a_damaged_archive_is_refused_before_anything_is_created(  # type: ignore[no-untyped-def]
    project: Project, other_client: pio.Client, tmp_path: Path, damage: str
) -> None:
    """A corrupt, truncated, newer or foreign archive raises ArchiveError and creates no project."""
    project.create_dataset("d1", file_name=_parquet(tmp_path / "d1.parquet", 5000))
    archive = _archive_of(project, tmp_path / "p.tar")
    data = bytearray(archive.read_bytes())
    if damage == "flip_byte":
        with tarfile.open(archive) as tar:
            offset = tar.getmember("datasets/1.parquet").offset_data
        data[offset + 100] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "newer_version":
        with tarfile.open(archive) as tar:
            member = tar.getmember("manifest.json")
            text = tar.extractfile(member).read()  # type: ignore[union-attr]
        patched = text.replace(b'"version": 1', b'"version": 9')
        data[member.offset_data : member.offset_data + len(text)] = patched
    else:
        data = bytearray(b"PK\x03\x04 not a tar file at all" * 100)
    archive.write_bytes(bytes(data))
    name = f"{project.name}-damaged"
    messages = {
        "flip_byte": "checksum",
        "truncate": "truncated",
        "newer_version": "version 9",
        "not_a_tar": "not a readable backup archive",
    }
    with pytest.raises(pio.ArchiveError, match=messages[damage]):
        Project.restore(archive, name=name, client=other_client)
    assert name not in [p.name for p in Project.list(other_client)]


def test_restore_retried_after_an_interruption_completes_without_duplicates(  # type: ignore[no-untyped-def]
    rich_project: Project, other_client: pio.Client, tmp_path: Path, monkeypatch
) -> None:
    """A restore cut off at the second dataset leaves what it made; run again, it completes the rest."""
    archive = rich_project.backup(tmp_path / "p.tar")
    calls = {"n": 0}
    real_upload = Project._upload

    def flaky(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise pio.ServerUnreachableError("connection lost (simulated)")
        return real_upload(self, *args, **kwargs)

    monkeypatch.setattr(Project, "_upload", flaky)
    name = f"{rich_project.name}-retry"
    with pytest.raises(pio.ServerUnreachableError):
        Project.restore(archive, name=name, client=other_client)
    (partial,) = [p for p in Project.list(other_client) if p.name == name]
    assert len(partial.list_datasets()) == 1
    restored = Project.restore(archive, name=name, client=other_client)
    assert restored.id == partial.id
    assert sorted(d.name for d in restored.list_datasets()) == sorted(
        d.name for d in rich_project.list_datasets()
    )
    assert len(restored.list_connectors()) == 3 and len(restored.list_datasources()) == 3
    assert len([p for p in Project.list(other_client) if p.name == name]) == 1


# -- memory ------------------------------------------------------------------------------------------------
def _vm(key: str) -> int:
    """A memory line of this process's /proc status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def test_backup_restore_and_migration_stream_large_datasets(  # type: ignore[no-untyped-def]
    project: Project, other_client: pio.Client, tmp_path: Path
) -> None:
    """Backing up, restoring and migrating a 2-million-row dataset (~25 MB of Parquet) keeps this process's
    peak memory within a few MiB of where it started: the data never sits in memory."""
    n = 2_000_000
    data = tmp_path / "big.parquet"
    pq.write_table(
        pa.table({"id": pa.array(range(n), pa.int64()), "x": pa.array([i * 0.5 for i in range(n)])}), data
    )
    project.create_dataset("big", file_name=data, progress=False)
    data.unlink()
    Path("/proc/self/clear_refs").write_text("5")  # the peak restarts from here
    before = _vm("VmRSS")
    archive = project.backup(tmp_path / "big.tar")
    restored = Project.restore(archive, name=f"{project.name}-big", client=other_client)
    migrated = project.migrate(to=other_client, name=f"{project.name}-big-m")
    growth_mib = (_vm("VmHWM") - before) / 1024
    assert restored.list_datasets()[0].num_rows == migrated.list_datasets()[0].num_rows == n
    assert growth_mib < 40, f"peak memory grew by {growth_mib:.0f} MiB"


# -- the platform's side -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "missing"),
    [
        ({"type": "sftp", "host": "files.example.com", "username": "etl"}, ["private_key", "passphrase"]),
        ({"type": "sftp", "host": "files.example.com", "username": "etl"}, ["password"]),
        ({"type": "s3", "username": "AKIA", "options": {"bucket": "raw"}}, ["password"]),
        ({"type": "http", "host": "https://files.example.com", "username": "u"}, ["password"]),
        ({"type": "sql", "driver": "postgresql", "host": "db", "username": "u"}, ["password"]),
    ],
    ids=["sftp-key", "sftp-password", "s3", "http-basic", "postgresql"],
)
def test_a_connector_may_be_created_without_the_secrets_it_needs(  # type: ignore[no-untyped-def]
    project: Project, body, missing
) -> None:
    """With missing_secrets the driver checks the rest; the connector needs credentials until given them,
    may be renamed meanwhile, and stores no placeholder."""
    client = project.client
    data = client.post(
        f"/projects/{project.id}/connectors", {"name": "c", **body, "missing_secrets": missing}
    )
    assert data["needs_credentials"] and data["secret_fields"] == [] and not data["has_password"]
    conn = project.connectors["c"]
    assert conn.test().code == "needs_credentials"
    conn.rename("renamed")
    assert conn.needs_credentials and conn.name == "renamed"
    if body["type"] != "sftp" or missing == ["password"]:
        conn.update(password="now-given")
        assert not conn.needs_credentials and conn.has_password


def test_an_upload_lineage_must_be_a_datasource_of_the_project(  # type: ignore[no-untyped-def]
    project: Project, client: pio.Client, sqlite_db: Path, tmp_path: Path
) -> None:
    """An upload's datasource_id must name a datasource of the same project."""
    other_project = Project.new(f"it-other-{uuid.uuid4().hex[:6]}", client=client)
    try:
        (conn,) = other_project.add_connectors({"shop": {"driver": "sqlite", "database": str(sqlite_db)}})
        foreign = other_project.create_datasource(conn, "orders", table="orders")
        with pytest.raises(pio.NotFoundError, match="datasource"):
            project._upload("d", _parquet(tmp_path / "d.parquet", 3), "parquet", "d.parquet", foreign.id)
        assert project.list_datasets() == []
    finally:
        other_project.delete()
