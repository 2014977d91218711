"""File connectors against real FTP, SFTP, S3 (moto) and HTTP servers and a local directory.

The servers are started by :mod:`fileservers`; the platform reaches them over 127.0.0.1.
"""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pytest
from fileservers import (
    FILE_TYPES,
    ORDERS_CSV,
    FileServers,
    closed_port,
    make_connector,
    session_file_servers,
    source_kwargs,
)

import previsio_sdk as pio

REMOTE_TYPES = ("ftp", "sftp", "s3", "http")


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> FileServers:
    """The session's file servers."""
    return session_file_servers(tmp_path_factory.getbasetemp())


# -- test() --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", FILE_TYPES)
def test_connector_test_succeeds(project: pio.Project, servers: FileServers, kind: str) -> None:
    """A connector with the right settings tests successfully and is a FileConnector."""
    connector = make_connector(project, kind, servers)
    assert isinstance(connector, pio.FileConnector)
    result = connector.test()
    assert result, result.message
    assert result.code is None


@pytest.mark.parametrize("kind", REMOTE_TYPES)
def test_wrong_password_is_an_authentication_failure(
    project: pio.Project, servers: FileServers, kind: str
) -> None:
    """A wrong password fails the test with authentication_failed, and the message does not hold it."""
    wrong = "Wrong-Password-0000"
    result = make_connector(project, kind, servers, password=wrong).test()
    assert not result
    assert result.code == "authentication_failed", result.message
    assert wrong not in result.message


@pytest.mark.parametrize("kind", REMOTE_TYPES)
def test_unknown_host_is_a_connection_failure(project: pio.Project, servers: FileServers, kind: str) -> None:
    """A host name that does not resolve fails the test with connection_failed."""
    result = make_connector(project, kind, servers, host="no-such-host.invalid").test()
    assert not result
    assert result.code == "connection_failed", result.message


@pytest.mark.parametrize("kind", REMOTE_TYPES)
def test_closed_port_is_a_connection_failure(project: pio.Project, servers: FileServers, kind: str) -> None:
    """A port nothing listens on fails the test with connection_failed."""
    result = make_connector(project, kind, servers, port=closed_port()).test()
    assert not result
    assert result.code == "connection_failed", result.message


def test_sftp_private_key_authenticates(project: pio.Project, servers: FileServers) -> None:
    """An SFTP connector with the authorised private key (and no password) connects and lists files."""
    connector = make_connector(project, "sftp", servers, private_key=servers.sftp.private_key)
    assert connector.test()
    assert "orders.csv" in [f.name for f in connector.list_files()]


def test_sftp_wrong_private_key_is_refused(project: pio.Project, servers: FileServers) -> None:
    """An SFTP connector with a key the server does not know fails with authentication_failed."""
    result = make_connector(project, "sftp", servers, private_key=servers.sftp.wrong_private_key).test()
    assert result.code == "authentication_failed", result.message


def test_sftp_pinned_host_key(project: pio.Project, servers: FileServers) -> None:
    """A pinned host key that matches connects; another key is refused before logging in."""
    s = servers.sftp
    good = project.create_sftp_connector(
        "pinned", s.host, s.port, s.username, s.password, host_key=s.host_key
    )
    assert good.test()
    other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGnuFbtrYgxS4vq6C2gU0gR2sJcHZXr8x6hZbYp0d1FZ"
    bad = project.create_sftp_connector("mispinned", s.host, s.port, s.username, s.password, host_key=other)
    result = bad.test()
    assert result.code == "connection_failed"
    assert "host key" in result.message


def test_sftp_needs_a_password_or_a_key(project: pio.Project, servers: FileServers) -> None:
    """Creating an SFTP connector with neither password nor key is refused by the SDK."""
    with pytest.raises(pio.ConfigurationError):
        project.create_sftp_connector("nothing", servers.sftp.host, servers.sftp.port, "me")


def test_local_root_outside_the_allowed_roots_is_refused(project: pio.Project, tmp_path) -> None:
    """A local connector rooted outside PREVISIO_LOCAL_ROOTS is refused at creation with root_not_allowed."""
    for root in ("/etc", str(tmp_path)):
        with pytest.raises(pio.ValidationError) as info:
            project.create_local_connector(f"local-{len(root)}", root=root)
        assert info.value.code == "root_not_allowed"


def test_local_root_must_be_absolute(project: pio.Project) -> None:
    """A relative local root is refused (the platform is remote: nothing makes it absolute)."""
    with pytest.raises(pio.ValidationError):
        project.create_local_connector("relative", root="data/files")


# -- list_files() --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", FILE_TYPES)
def test_list_files_gives_names_sizes_and_times(
    project: pio.Project, servers: FileServers, kind: str
) -> None:
    """Listing a directory gives its files with their sizes and modification times, directories first."""
    connector = make_connector(project, kind, servers)
    entries = connector.list_files("formats", **source_kwargs(kind, servers))
    by_name = {e.name: e for e in entries}
    assert isinstance(entries[0], pio.FileInfo)
    assert by_name["data.parquet"].path == "formats/data.parquet"
    assert by_name["data.parquet"].size == len(servers.files["formats/data.parquet"])
    assert not by_name["data.parquet"].is_dir
    assert isinstance(by_name["data.parquet"].modified_at, datetime)
    root = connector.list_files("", **source_kwargs(kind, servers))
    dirs = {e.name for e in root if e.is_dir}
    assert {"formats", "monthly"} <= dirs
    assert "orders.csv" in {e.name for e in root if not e.is_dir}
    assert root[0].is_dir


@pytest.mark.parametrize("kind", FILE_TYPES)
def test_list_files_with_a_glob(project: pio.Project, servers: FileServers, kind: str) -> None:
    """Listing a glob gives only the matching files."""
    connector = make_connector(project, kind, servers)
    names = [e.path for e in connector.list_files("monthly/2024-*.csv", **source_kwargs(kind, servers))]
    assert names == ["monthly/2024-01.csv", "monthly/2024-02.csv", "monthly/2024-03.csv"]


def test_s3_lists_buckets_without_a_bucket(project: pio.Project, servers: FileServers) -> None:
    """An S3 connector lists its buckets when no bucket is given."""
    entries = make_connector(project, "s3", servers).list_files()
    assert servers.s3.bucket in [e.name for e in entries if e.is_dir]


def test_long_listing_is_paged(project: pio.Project, servers: FileServers) -> None:
    """A directory of 1,205 files comes back whole through several pages of the API."""
    many = servers.files_root / "many"
    many.mkdir(exist_ok=True)
    for i in range(1205):
        (many / f"f{i:04d}.csv").write_text("a\n1\n")
    entries = make_connector(project, "local", servers).list_files("many")
    assert len(entries) == 1205
    assert entries[0].name == "f0000.csv" and entries[-1].name == "f1204.csv"


# -- path safety ---------------------------------------------------------------------------------------------
UNSAFE_PATHS = (
    "../orders.csv",
    "/etc/passwd",
    "formats/../../x.csv",
    "%2e%2e/x.csv",
    "..\\x.csv",
    "ftp://elsewhere/x.csv",
    "a/\x00b.csv",
    "~/x.csv",
)


#: Connector types whose paths may be absolute: the remote server's own permissions are the boundary.
ABSOLUTE_PATH_TYPES = ("ftp", "sftp", "s3")


@pytest.mark.parametrize("kind", FILE_TYPES)
def test_paths_leaving_the_root_are_refused(project: pio.Project, servers: FileServers, kind: str) -> None:
    """'..', backslashes, URLs and NUL bytes are refused (unsafe_path), in listings too; so are absolute
    paths where the root is a boundary of the platform (local directories, HTTP base URLs)."""
    connector = make_connector(project, kind, servers)
    unsafe = [p for p in UNSAFE_PATHS if not (kind in ABSOLUTE_PATH_TYPES and p.startswith("/"))]
    assert len(unsafe) == len(UNSAFE_PATHS) - (kind in ABSOLUTE_PATH_TYPES)
    for i, path in enumerate(unsafe):
        with pytest.raises(pio.ValidationError) as info:
            project.create_datasource(connector, f"unsafe-{i}", path=path, **source_kwargs(kind, servers))
        # A NUL byte may already be refused by the API's request validation, before the driver's check.
        expected = ("unsafe_path", "validation_error") if "\x00" in path else ("unsafe_path",)
        assert info.value.code in expected, (path, info.value)
    with pytest.raises(pio.ValidationError) as info:
        connector.list_files("../", **source_kwargs(kind, servers))
    assert info.value.code == "unsafe_path"
    assert project.list_datasources() == []


def test_symlinks_out_of_a_local_root_are_refused(project: pio.Project, servers: FileServers) -> None:
    """A symbolic link inside a local root that points outside it is neither listed nor read."""
    connector = make_connector(project, "local", servers)
    for i, path in enumerate(("escape.csv", "escape-dir/secret.csv", "escape-dir/*.csv")):
        with pytest.raises(pio.ValidationError) as info:
            project.create_datasource(connector, f"escape-{i}", path=path)
        assert info.value.code == "unsafe_path", (path, info.value)
    names = {e.name for e in connector.list_files()}
    assert "escape.csv" not in names and "escape-dir" not in names
    with pytest.raises(pio.ValidationError) as info:
        connector.list_files("escape-dir")
    assert info.value.code == "unsafe_path"
    for i, path in enumerate(("escape.csv", "escape-dir/secret.csv")):
        source = project.create_datasource(connector, f"unchecked-escape-{i}", path=path, check=False)
        with pytest.raises(pio.JobFailedError) as failed:
            project.create_dataset(f"escape-{i}", datasource=source)
        assert failed.value.code == "unsafe_path"
    assert project.list_datasets() == []


# -- the same file through every connector -------------------------------------------------------------------
def test_same_csv_through_all_five_connectors_gives_identical_datasets(
    project: pio.Project, servers: FileServers
) -> None:
    """orders.csv snapshotted through FTP, SFTP, S3, local and HTTP gives the same schema, rows, content."""
    tables: dict[str, pa.Table] = {}
    datasets = {}
    for kind in FILE_TYPES:
        connector = make_connector(project, kind, servers)
        source = project.create_datasource(
            connector, f"orders-{kind}", path="orders.csv", **source_kwargs(kind, servers)
        )
        datasets[kind] = project.create_dataset(f"orders-{kind}", datasource=source)
        tables[kind] = datasets[kind].to_arrow()
    reference = tables["local"]
    assert reference.schema == pa.schema(
        [
            ("order_id", pa.int64()),
            ("customer", pa.string()),
            ("amount", pa.float64()),
            ("paid", pa.bool_()),
            ("ordered_at", pa.timestamp("us")),
        ]
    )
    assert reference.num_rows == ORDERS_CSV.count("\n") - 1
    assert reference.column("customer").to_pylist() == ["Ada", "Bob", "Chloé", "Dan"]
    assert reference.column("amount").to_pylist() == [12.5, 7.25, 100.0, None]
    for kind, table in tables.items():
        assert table.schema == reference.schema, kind
        assert table.equals(reference), kind
        assert datasets[kind].num_rows == 4
    assert len({d.content_hash for d in datasets.values()}) == 1
