"""Cancelling running jobs, and nothing left behind by a platform killed in the middle of an export.

A cancel marks the job ``cancelling``; the thread running it sees the mark within half a second, kills the
job's child process, removes what it wrote (the temporary Parquet file, the export's staging at its
destination) and records ``cancelled``. A platform killed with SIGKILL cannot clean up: at the next start
it fails the unfinished exports and removes their staging, in the background.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pymysql
import pytest
from conftest import (
    MY_HOST,
    MY_PASSWORD,
    MY_PORT,
    MY_USER,
    PG_HOST,
    PG_PORT,
    PG_SCRAM_PASSWORD,
    PG_SCRAM_USER,
    RunningPlatform,
    _mysql_root,
    start_platform,
    stop_platform,
)

import previsio_sdk as pio

#: Rows of the big dataset an export writes: a few seconds of CSV encoding on the reference machine.
BIG_ROWS = 3_000_000
#: Rows of the dataset a killed platform was exporting: enough to be killed in the middle.
KILLED_ROWS = 1_000_000


def _big_frame(rows: int = BIG_ROWS) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype=np.int64),
            "amount": rng.random(rows),
            "label": pd.Series(rng.integers(0, 1_000_000, rows)).astype(str),
            "note": "a long enough text, so that writing the rows as CSV takes a few seconds",
        }
    )


def _until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _running(refresh: Callable[[], Any], rows: bool = True) -> Any:
    """Wait until a job or export is running (with rows read, if ``rows``)."""
    return _until(
        lambda: (r := refresh()).status == "running" and (r.progress_rows > 0 or not rows) and r,
        60,
        "the job to run",
    )


@pytest.fixture
def big_table(pg_database: str, pg_exec) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A PostgreSQL table whose snapshot takes a few seconds."""
    pg_exec("DROP TABLE IF EXISTS cancel_big")
    pg_exec(
        "CREATE TABLE cancel_big AS SELECT g::bigint AS id, md5(g::text) AS label "
        "FROM generate_series(1, 3000000) AS g"
    )
    yield "cancel_big"
    pg_exec("DROP TABLE IF EXISTS cancel_big")


def test_cancel_a_running_snapshot(
    platform: RunningPlatform, project: pio.Project, pg_connector: pio.SQLConnector, big_table: str
) -> None:
    """A running snapshot cancelled ends cancelled within seconds: no dataset, no temporary file; waiting
    on it raises JobCancelledError."""
    # 15M rows: still running when the cancel arrives, however fast the machine.
    source = project.create_datasource(
        pg_connector, "big", request=f"SELECT a.* FROM {big_table} a, {big_table} b WHERE b.id <= 5"
    )
    job = project.create_dataset("big", datasource=source, wait=False)
    _running(job.refresh)

    asked = job.cancel()
    started = time.monotonic()
    assert asked.status in ("cancelling", "cancelled")
    with pytest.raises(pio.JobCancelledError) as info:
        job.wait(timeout=30, progress=False)
    assert time.monotonic() - started < 5
    assert info.value.code == "cancelled"
    ended = job.refresh()
    assert (ended.status, ended.error_code, ended.dataset_id) == ("cancelled", "cancelled", None)
    assert project.list_datasets() == []
    assert not (platform.home / "tmp" / f"job-{job.id}.parquet.part").exists()
    with pytest.raises(pio.ConflictError) as again:
        job.cancel()
    assert again.value.code == "job_finished"
    # The name is free again, and the platform runs the next job.
    small = project.create_datasource(pg_connector, "small", request=f"SELECT * FROM {big_table} LIMIT 10")
    assert project.create_dataset("big", datasource=small, progress=False).num_rows == 10


def test_cancel_a_finished_job_is_refused(project: pio.Project, pg_connector: pio.SQLConnector) -> None:
    """Cancelling a job that succeeded answers 409 job_finished and changes nothing."""
    source = project.create_datasource(pg_connector, "one", request="SELECT 1 AS x")
    job = project.create_dataset("one", datasource=source, wait=False)
    job.wait(progress=False)
    with pytest.raises(pio.ConflictError) as info:
        job.cancel()
    assert info.value.code == "job_finished"
    assert job.refresh().status == "succeeded"


def test_cancel_a_running_export_leaves_the_destination_as_it_was(
    project: pio.Project, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """An export to a local CSV cancelled while writing ends cancelled: no file, no temporary file."""
    root = tmp_path_factory.getbasetemp() / "local-roots" / f"cancel-{time.monotonic_ns()}"
    root.mkdir(parents=True)
    dataset = project.create_dataset("big", dataframe=_big_frame(), progress=False)
    connector = project.create_local_connector("out", root=str(root))
    exporter = project.create_exporter(connector, "csv_out", path="out/big.csv")
    export = exporter.export_dataset(dataset, wait_for_export=False)
    started = time.monotonic()
    _running(export.refresh, rows=False)

    asked = export.cancel()
    assert asked.status in ("cancelling", "cancelled")
    with pytest.raises(pio.JobCancelledError):
        export.wait(timeout=30, progress=False)
    print(f"\nexport cancelled {time.monotonic() - started:.1f} s after it was asked for")
    assert export.refresh().status == "cancelled"
    assert sorted(p.name for p in root.rglob("*") if p.is_file()) == []


# -- a platform killed in the middle of an export ------------------------------------------------------------
def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill(running: RunningPlatform) -> None:
    """SIGKILL the platform and, at once, its job processes: the machine lost power, nobody cleaned up.

    (Killed alone, the platform's job process notices within half a second and removes its own staging.)
    """
    below = _descendants(running.process.pid)
    os.kill(running.process.pid, signal.SIGKILL)
    for pid in below:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    running.process.wait()


@pytest.fixture
def private(tmp_path: Path) -> Iterator[tuple[Path, Path, dict[str, str]]]:
    """A home and a local root for a platform of the test's own."""
    root = tmp_path / "roots"
    root.mkdir()
    yield tmp_path / "home", root, {"PREVISIO_LOCAL_ROOTS": json.dumps([str(root)])}


def test_a_platform_killed_mid_export_leaves_no_temporary_file(
    private: tuple[Path, Path, dict[str, str]],
) -> None:
    """SIGKILL during a local-file export leaves ``<file>.tmp-<export id>``; the restarted platform fails
    the export (platform_restarted) and removes that file, without delaying its start."""
    home, root, env = private
    running = start_platform(home, env=env)
    try:
        client = running.client()
        project = pio.Project.new("killed-export", client=client)
        dataset = project.create_dataset("big", dataframe=_big_frame(KILLED_ROWS), progress=False)
        exporter = project.create_exporter(
            project.create_local_connector("out", root=str(root)), "csv_out", path="big.csv"
        )
        export = exporter.export_dataset(dataset, wait_for_export=False)
        staging = root / f"big.csv.tmp-{export.id}"
        _until(lambda: staging.exists() and staging.stat().st_size > 0, 60, "the export's temporary file")
        _kill(running)
        time.sleep(0.5)
        assert staging.exists()  # a killed platform cannot clean up
        assert not (root / "big.csv").exists()

        running = start_platform(home, env=env)
        _until(lambda: not staging.exists(), 30, "the restarted platform to remove the temporary file")
        ended = pio.Export.from_id(export.id, running.client())
        assert (ended.status, ended.error_code) == ("failed", "platform_restarted")
        assert sorted(p.name for p in root.iterdir()) == []
        assert "staging discarded after a restart" in running.log_text()
    finally:
        stop_platform(running)


def test_a_pending_job_is_cancelled_at_once_and_sigterm_stops_the_running_one(
    private: tuple[Path, Path, dict[str, str]], pg_database: str, big_table: str
) -> None:
    """On a platform with one job worker: a second snapshot waits (pending) and is cancelled at once, its
    pending dataset gone; then SIGTERM during the first one kills its process, records platform_stopped,
    keeps no dataset, and the platform exits in seconds instead of waiting for the job."""
    home, _, env = private
    env = {**env, "PREVISIO_JOB_WORKERS": "1"}
    running = start_platform(home, env=env)
    try:
        project = pio.Project.new("stopped", client=running.client())
        # Not a superuser: a request datasource is refused on one (privileged_role).
        connector = project.create_sql_connector(
            "pg",
            host=PG_HOST,
            port=PG_PORT,
            username=PG_SCRAM_USER,
            password=PG_SCRAM_PASSWORD,
            database=pg_database,
        )
        # 15M rows: the snapshot runs long after the steps below, however loaded the machine.
        longer = project.create_datasource(
            connector, "longer", request=f"SELECT a.* FROM {big_table} a, {big_table} b WHERE b.id <= 5"
        )
        job = project.create_dataset("big", datasource=longer, wait=False)
        _running(job.refresh)
        source = project.create_datasource(connector, "big", table=big_table)
        waiting = project.create_dataset("second", datasource=source, wait=False)
        assert waiting.refresh().status == "pending"
        cancelled = waiting.cancel()
        assert (cancelled.status, cancelled.error_code, cancelled.dataset_id) == (
            "cancelled",
            "cancelled",
            None,
        )
        with pytest.raises(pio.JobCancelledError):
            waiting.wait(timeout=5, progress=False)

        assert job.refresh().status == "running"
        started = time.monotonic()
        running.process.terminate()
        running.process.wait(timeout=15)
        assert time.monotonic() - started < 10
        running = start_platform(home, env=env)
        client = running.client()
        ended = pio.Job.from_dict(client.get(f"/jobs/{job.id}"), client)
        assert (ended.status, ended.error_code) == ("failed", "platform_stopped")
        assert pio.Job.from_dict(client.get(f"/jobs/{waiting.id}"), client).status == "cancelled"
        assert pio.Project.from_id(project.id, client).list_datasets() == []
        assert list((home / "tmp").iterdir()) == []
        # The name of the cancelled job's dataset is free.
        again = pio.Project.from_id(project.id, client)
        small = again.create_datasource(
            pio.Connector.from_id(connector.id, client), "small", request=f"SELECT * FROM {big_table} LIMIT 5"
        )
        assert again.create_dataset("second", datasource=small, progress=False).num_rows == 5
    finally:
        stop_platform(running)


@pytest.fixture(scope="module")
def killed_mariadb_export(
    tmp_path_factory: pytest.TempPathFactory, my_database: str
) -> Iterator[dict[str, Any]]:
    """A platform killed while an export fills its MariaDB staging table, then restarted (once per module)."""

    def my_exec(sql: str) -> list[tuple[Any, ...]]:
        con = _mysql_root(my_database)
        try:
            with con.cursor() as cur:
                cur.execute(sql)
                return list(cur.fetchall()) if cur.description else []
        finally:
            con.close()

    home = tmp_path_factory.mktemp("killed-maria") / "home"
    running = start_platform(home)
    try:
        project = pio.Project.new("killed-maria", client=running.client())
        dataset = project.create_dataset("big", dataframe=_big_frame(KILLED_ROWS), progress=False)
        connector = project.create_sql_connector(
            "maria", host=MY_HOST, port=MY_PORT, username=MY_USER, password=MY_PASSWORD, database=my_database
        )
        exporter = project.create_exporter(connector, "table_out", table="killed_out", write_mode="replace")
        export = exporter.export_dataset(dataset, wait_for_export=False)

        def staging_tables() -> list[str]:
            return [
                r[0]
                for r in my_exec(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = DATABASE() AND table_name LIKE 'previsio\\_stage\\_%%'"
                )
            ]

        before = set(staging_tables())
        _until(lambda: set(staging_tables()) - before, 60, "the export's staging table")
        _kill(running)
        running = start_platform(home)
        time.sleep(2)  # the background removal of the staging
        yield {
            "export": pio.Export.from_id(export.id, running.client()),
            "left": set(staging_tables()) - before,
            "target": my_exec(
                "SELECT COUNT(*) FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name = 'killed_out'"
            )[0][0],
        }
    finally:
        stop_platform(running)
        for name in my_exec(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
            "AND (table_name LIKE 'previsio\\_stage\\_%%' OR table_name = 'killed_out')"
        ):
            try:
                my_exec(f"DROP TABLE IF EXISTS `{name[0]}`")
            except pymysql.Error:
                pass


def test_a_platform_killed_mid_mariadb_export_fails_it_and_keeps_the_table_away(
    killed_mariadb_export: dict[str, Any],
) -> None:
    """After SIGKILL in the middle of a MariaDB export and a restart, the export is failed
    (platform_restarted) and the half-written data never became the target table."""
    export = killed_mariadb_export["export"]
    assert (export.status, export.error_code) == ("failed", "platform_restarted")
    assert killed_mariadb_export["target"] == 0


def test_a_platform_killed_mid_mariadb_export_leaves_no_staging_table(
    killed_mariadb_export: dict[str, Any],
) -> None:
    """After SIGKILL in the middle of a MariaDB export and a restart, no previsio_stage_* table is left."""
    assert killed_mariadb_export["left"] == set()
