"""Faults: repeated creation requests, a platform killed mid-snapshot, a full disk, twenty clients at once.

The database going away in the middle of a snapshot is proven in test_sql_failures.py
(``test_postgres_backend_killed_mid_snapshot_fails_the_job_and_leaves_no_file``): a failed job with the
reason, no dataset, no file.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
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


def _files(directory: Path) -> set[str]:
    return set(os.listdir(directory)) if directory.exists() else set()


def _pg_connector(project: pio.Project, database: str, name: str = "pg") -> pio.SQLConnector:
    return project.create_sql_connector(
        name,
        host=PG_HOST,
        port=PG_PORT,
        username=PG_SCRAM_USER,
        password=PG_SCRAM_PASSWORD,
        database=database,
    )


# -- idempotent creation -------------------------------------------------------------------------------------
def test_the_same_creation_sent_twice_creates_one_resource(api: Callable[..., requests.Response]) -> None:
    """Two POSTs with one Idempotency-Key create one project; the second gets the first's answer back."""
    key = uuid.uuid4().hex
    name = f"idem-{key[:8]}"
    first = api("POST", "/projects", json={"name": name}, headers={"Idempotency-Key": key})
    second = api("POST", "/projects", json={"name": name}, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers.get("Idempotent-Replayed") == "true" and "Idempotent-Replayed" not in first.headers
    listed = api("GET", "/projects", params={"page_size": 1000}).json()["items"]
    assert [p["id"] for p in listed if p["name"] == name] == [first.json()["id"]]
    # the key is the caller's: the same key with another body is refused, and creates nothing
    other = api("POST", "/projects", json={"name": name + "-other"}, headers={"Idempotency-Key": key})
    assert (other.status_code, other.json()["error"]["code"]) == (422, "idempotency_key_reused")
    listed = api("GET", "/projects", params={"page_size": 1000}).json()["items"]
    assert not [p for p in listed if p["name"] == name + "-other"]
    api("DELETE", f"/projects/{first.json()['id']}")


def test_a_failed_creation_is_not_kept_and_may_be_sent_again(api: Callable[..., requests.Response]) -> None:
    """A creation refused (409: the name is taken) keeps no answer: the same key later creates it."""
    key = uuid.uuid4().hex
    name = f"idem-{key[:8]}"
    taken = api("POST", "/projects", json={"name": name}).json()
    refused = api("POST", "/projects", json={"name": name}, headers={"Idempotency-Key": key})
    assert refused.status_code == 409
    api("DELETE", f"/projects/{taken['id']}")
    created = api("POST", "/projects", json={"name": name}, headers={"Idempotency-Key": key})
    assert created.status_code == 201 and created.json()["id"] != taken["id"]
    api("DELETE", f"/projects/{created.json()['id']}")


def test_a_twin_still_running_is_refused_with_409_in_use(
    api: Callable[..., requests.Response], platform: RunningPlatform, project: pio.Project
) -> None:
    """While a first upload with a key still streams, its twin gets 409 idempotency_key_in_use."""
    key = uuid.uuid4().hex
    sending, release = threading.Event(), threading.Event()

    def slow_body() -> Iterator[bytes]:
        sending.set()  # the request's headers are out: the platform is handling it
        yield b"a,b\n"
        release.wait(30)
        yield b"1,2\n"

    url = f"{platform.url}/api/v1/projects/{project.id}/datasets/upload"
    params = {"name": "twin", "format": "csv"}
    headers = {"Authorization": f"Bearer {platform.token}", "Idempotency-Key": key}
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(requests.post, url, params=params, data=slow_body(), headers=headers, timeout=60)
        assert sending.wait(30)
        time.sleep(0.5)
        twin = api(
            "POST",
            f"/projects/{project.id}/datasets/upload",
            params=params,
            data=b"a,b\n1,2\n",
            headers={"Idempotency-Key": key},
        )
        release.set()
        assert (twin.status_code, twin.json()["error"]["code"]) == (409, "idempotency_key_in_use"), twin.text
        assert first.result().status_code == 202
    replay = api(
        "POST",
        f"/projects/{project.id}/datasets/upload",
        params=params,
        data=b"a,b\n1,2\n",
        headers={"Idempotency-Key": key},
    )
    assert replay.status_code == 202 and replay.json()["id"] == first.result().json()["id"]
    pio.Job.from_dict(replay.json(), project.client).wait(timeout=60)
    assert [d.name for d in project.list_datasets()] == ["twin"]


class DroppingProxy:
    """A TCP proxy to the platform that drops the connection instead of relaying the first answer to a POST.

    The platform has handled the request by then: the client sees a connection error for a request that did
    happen, the case an idempotency key exists for.
    """

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}"
        self.dropped: list[bytes] = []
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.server.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_message(sock: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            request = self._read_message(conn)
            if not request:
                return
            # One request per upstream connection, so the answer's end is the connection's end.
            request = request.replace(b"Connection: keep-alive", b"Connection: close")
            with socket.create_connection(self.target) as upstream:
                upstream.sendall(request)
                answer = b""
                while chunk := upstream.recv(65536):
                    answer += chunk
            if request.startswith(b"POST") and not self.dropped:
                self.dropped.append(request)
                return  # the platform answered; the client never hears it
            conn.sendall(answer)

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self.server.close()


def test_a_creation_whose_answer_is_lost_is_retried_and_creates_one_project(
    platform: RunningPlatform, client: pio.Client
) -> None:
    """The SDK resends a POST whose answer was lost with the same key: one project exists, as it was made."""
    proxy = DroppingProxy(platform.url)
    try:
        session = requests.Session()
        session.headers["Connection"] = "close"
        through_proxy = pio.Client(url=proxy.url, token=platform.token, session=session)
        name = f"lost-answer-{uuid.uuid4().hex[:8]}"
        project = pio.Project.new(name, client=through_proxy)
    finally:
        proxy.close()
    assert len(proxy.dropped) == 1 and b"Idempotency-Key" in proxy.dropped[0]
    mine = [p for p in pio.Project.list(client=client) if p.name == name]
    assert [p.id for p in mine] == [project.id]
    mine[0].delete()


# -- the platform killed in the middle of a snapshot ---------------------------------------------------------
def test_a_platform_killed_mid_snapshot_fails_the_job_at_restart_and_lists_no_half_dataset(
    tmp_path: Path, pg_exec: Callable[..., list], pg_database: str, unique_name: Callable[[str], str]
) -> None:
    """SIGKILL mid-snapshot, then a restart: the job failed (platform_restarted), nothing half-written."""
    table = unique_name("sigkill")
    pg_exec(
        f"CREATE UNLOGGED TABLE {table} AS SELECT g AS id, md5(g::text) AS label, g * 0.5 AS amount "
        f"FROM generate_series(1, 3000000) g"
    )
    home = tmp_path / "home"
    running = start_platform(home)
    try:
        project = pio.Project.new("sigkill", client=running.client())
        connector = _pg_connector(project, pg_database)
        source = project.create_datasource(connector, "big", table=table)
        small = project.create_datasource(connector, "small", request="SELECT 1 AS x")
        kept = project.create_dataset("kept", datasource=small)
        job = project.create_dataset("big", datasource=source, wait=False)
        deadline = time.monotonic() + 60
        while job.refresh().progress_rows == 0:
            assert time.monotonic() < deadline, "the snapshot never got going"
            time.sleep(0.02)
        assert job.refresh().status == "running"
        assert _files(home / "tmp"), "the snapshot should be writing its temporary file"
        os.kill(running.process.pid, signal.SIGKILL)
        running.process.wait(10)
    finally:
        if running.process.poll() is None:
            stop_platform(running)
    restarted = start_platform(home)
    try:
        client = restarted.client()
        project = pio.Project.from_id(project.id, client=client)
        final = pio.Job.from_dict(client.get(f"/jobs/{job.id}"), client)
        assert (final.status, final.error_code, final.dataset_id) == ("failed", "platform_restarted", None)
        assert final.error_message and "again" in final.error_message
        assert [d.name for d in project.list_datasets()] == ["kept"]
        assert _files(home / "datasets") == {f"{kept.id}.parquet"}
        assert _files(home / "tmp") == set()
        # the name is free and the source intact: a second snapshot completes
        assert project.create_dataset("big", datasource=source).num_rows == 3_000_000
    finally:
        stop_platform(restarted)
        pg_exec(f"DROP TABLE {table}")


# -- a full disk ---------------------------------------------------------------------------------------------
def _as_root(*command: str) -> subprocess.CompletedProcess[str]:
    """Run a command as root: directly when the suite runs as root, else through ``sudo -n``."""
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    return subprocess.run([*prefix, *command], capture_output=True, text=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB filesystem (tmpfs; a loop-mounted ext4 image when tmpfs cannot be mounted), owned by us."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    owner = f"uid={os.getuid()},gid={os.getgid()},mode=0700"
    done = _as_root("mount", "-t", "tmpfs", "-o", f"size=16m,{owner}", "tmpfs", str(mount_point))
    if done.returncode != 0:
        image = tmp_path / "small-disk.img"
        with open(image, "wb") as fh:
            fh.truncate(16 * 1024 * 1024)
        steps = [
            ["mkfs.ext4", "-q", "-F", "-E", f"root_owner={os.getuid()}:{os.getgid()}", str(image)],
            ["mount", "-o", "loop", str(image), str(mount_point)],
        ]
        for step in steps:
            again = _as_root(*step)
            if again.returncode != 0:
                pytest.fail(
                    "The full-disk test needs a small filesystem: mounting tmpfs failed "
                    f"({done.stderr.strip()}) and so did {' '.join(step[:2])} ({again.stderr.strip()}). "
                    "Run the suite as root (tools/test.sh does in CI) or with password-less sudo."
                )
    yield mount_point
    _as_root("umount", "-l", str(mount_point))


def test_a_full_disk_fails_the_snapshot_cleanly_and_the_platform_keeps_serving(
    tmp_path: Path,
    small_disk: Path,
    pg_exec: Callable[..., list],
    pg_database: str,
    unique_name: Callable[[str], str],
) -> None:
    """A snapshot larger than the free space fails (storage_full), leaves no file; the next one works."""
    table = unique_name("full_disk")
    pg_exec(
        f"CREATE UNLOGGED TABLE {table} AS SELECT g AS id, md5(g::text) || md5((g + 1)::text) AS label "
        f"FROM generate_series(1, 600000) g"
    )  # about 40 MB of Parquet: random hex does not compress
    running = start_platform(tmp_path / "home", env={"PREVISIO_DATA_DIR": str(small_disk)})
    try:
        client = running.client()
        project = pio.Project.new("full-disk", client=client)
        connector = _pg_connector(project, pg_database)
        big = project.create_datasource(connector, "big", table=table)
        with pytest.raises(pio.JobFailedError) as info:
            project.create_dataset("big", datasource=big, timeout=120)
        assert info.value.code == "storage_full"
        assert "disk space" in info.value.message
        assert project.list_datasets() == []
        assert _files(small_disk / "tmp") == set() and _files(small_disk / "datasets") == set()
        usage = os.statvfs(small_disk)
        assert (usage.f_blocks - usage.f_bfree) * usage.f_frsize < 1024 * 1024  # the space is free again
        assert requests.get(f"{running.url}/api/v1/health", timeout=10).ok
        small = project.create_datasource(
            connector, "small", request=f"SELECT * FROM {table} WHERE id <= 1000"
        )
        assert project.create_dataset("small", datasource=small).num_rows == 1000
    finally:
        stop_platform(running)
        pg_exec(f"DROP TABLE {table}")


# -- twenty clients at once ----------------------------------------------------------------------------------
CONCURRENT_CLIENTS = 20
ROWS_PER_TABLE = 20_000


def _digest(rows: list[tuple[Any, ...]]) -> str:
    """A checksum of a table's content, independent of row order."""
    digest = hashlib.sha256()
    for row in sorted(rows):
        digest.update(repr(row).encode())
    return digest.hexdigest()


def test_twenty_clients_snapshotting_at_once_all_get_complete_correct_datasets(
    platform: RunningPlatform,
    project: pio.Project,
    pg_exec: Callable[..., list],
    pg_database: str,
    tmp_path: Path,
    unique_name: Callable[[str], str],
) -> None:
    """20 clients (threads, each its own Client) snapshot 20 tables at once: every dataset whole and exact."""
    expected: dict[str, str] = {}
    sources: list[tuple[str, str, dict[str, Any]]] = []  # (name, driver, connector settings + table)
    for i in range(CONCURRENT_CLIENTS // 2):
        table = unique_name(f"conc{i}")
        pg_exec(
            f"CREATE TABLE {table} AS SELECT g AS id, md5((g * {i + 1})::text) AS label, "
            f"(g % 97) * {i + 1} AS n FROM generate_series(1, {ROWS_PER_TABLE}) g"
        )
        expected[f"pg-{i}"] = _digest([tuple(r) for r in pg_exec(f"SELECT id, label, n FROM {table}")])
        sources.append((f"pg-{i}", "postgresql", {"table": table}))
        path = tmp_path / f"conc{i}.db"
        con = sqlite3.connect(path)
        rows = [(g, hashlib.md5(f"{g}-{i}".encode()).hexdigest(), g % (i + 7)) for g in range(ROWS_PER_TABLE)]
        with con:
            con.execute("CREATE TABLE t (id INTEGER, label TEXT, n INTEGER)")
            con.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
        con.close()
        expected[f"lite-{i}"] = _digest(rows)
        sources.append((f"lite-{i}", "sqlite", {"table": "t", "path": str(path)}))

    start = threading.Barrier(CONCURRENT_CLIENTS)

    def one_client(name: str, driver: str, where: dict[str, Any]) -> tuple[str, str, int]:
        client = pio.Client(url=platform.url, token=platform.token)
        mine = pio.Project.from_id(project.id, client=client)
        if driver == "postgresql":  # connector names are unique in a project: each client names its own
            connector = _pg_connector(mine, pg_database, name=f"conn-{name}")
        else:
            connector = mine.create_sql_connector(f"conn-{name}", driver="sqlite", database=where["path"])
        source = mine.create_datasource(connector, name, table=where["table"])
        start.wait(30)
        dataset = mine.create_dataset(name, datasource=source, timeout=180)
        table = dataset.to_arrow()
        rows = list(zip(*(table.column(c).to_pylist() for c in ("id", "label", "n")), strict=True))
        return name, _digest([tuple(r) for r in rows]), dataset.num_rows

    def run(args: tuple[str, str, dict[str, Any]]) -> tuple[str, str, int]:
        name, driver, where = args
        return one_client(name, driver, where)

    with ThreadPoolExecutor(CONCURRENT_CLIENTS) as pool:
        results = list(pool.map(run, sources))
    assert len(results) == CONCURRENT_CLIENTS
    for name, digest, num_rows in results:
        assert num_rows == ROWS_PER_TABLE, name
        assert digest == expected[name], name
    assert sorted(d.name for d in project.list_datasets()) == sorted(expected)
