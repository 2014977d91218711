"""The platform as a cluster: two API replicas and two Celery workers, separate processes, sharing a
PostgreSQL metadata database, an S3 store (moto) and a Redis broker (see ``cluster.py``).

Each test states what an operator counts on: jobs sent to either replica complete exactly once, a worker
killed in the middle of a snapshot loses nothing but time, a replica restarted leaves the jobs running, and a
cancel leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import signal
import time
from collections.abc import Iterator

import pytest
from cluster import Cluster, start_cluster
from conftest import MY_PASSWORD, MY_USER, PG_SCRAM_PASSWORD, PG_SCRAM_USER
from fileservers import S3ServerInfo, start_s3, stop_process

import previsio_sdk as pio

BIG_ROWS = 2_000_000


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3ServerInfo]:
    """moto's S3 server: the cluster's dataset store and an S3 source."""
    info = start_s3(tmp_path_factory.mktemp("cluster-moto"))
    yield info
    stop_process(info.process)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, s3_server: S3ServerInfo) -> Iterator[Cluster]:
    """Two replicas and two workers."""
    running = start_cluster(tmp_path_factory.mktemp("cluster"), s3_server)
    try:
        running.start_replica()
        running.start_replica()
        running.start_worker()
        running.start_worker()
        yield running
    finally:
        running.close()


@pytest.fixture(scope="module")
def sources(cluster: Cluster, s3_server: S3ServerInfo, pg_database: str, my_database: str) -> dict:
    """A project of the cluster with a PostgreSQL, a MariaDB and an S3 datasource, and their row counts."""
    import psycopg
    import pymysql

    with psycopg.connect(host="127.0.0.1", user="postgres", dbname=pg_database, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS cluster_small, cluster_big")
        c.execute(
            "CREATE TABLE cluster_small AS SELECT g AS id, g * 1.5 AS amount, 'label ' || (g % 17) AS label "
            "FROM generate_series(1, 20000) g"
        )
        c.execute(
            "CREATE TABLE cluster_big AS SELECT g AS id, g * 2.5 AS amount, md5(g::text) AS digest "
            f"FROM generate_series(1, {BIG_ROWS}) g"
        )
        c.execute(f"GRANT SELECT ON cluster_small, cluster_big TO {PG_SCRAM_USER}")
    con = pymysql.connect(host="127.0.0.1", user="root", password="", database=my_database, autocommit=True)
    with con.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS cluster_small")
        cur.execute("CREATE TABLE cluster_small (id INT PRIMARY KEY, name VARCHAR(50))")
        cur.executemany("INSERT INTO cluster_small VALUES (%s, %s)", [(i, f"n{i}") for i in range(5000)])
    con.close()
    csv = "id,value\n" + "".join(f"{i},{i * 3}\n" for i in range(8000))
    s3_server.client().put_object(Bucket=s3_server.bucket, Key="cluster/source.csv", Body=csv.encode())

    project = pio.Project.new("cluster", client=cluster.client(0))
    pg = project.create_sql_connector(
        "pg",
        host="127.0.0.1",
        port=5432,
        username=PG_SCRAM_USER,
        password=PG_SCRAM_PASSWORD,
        database=pg_database,
    )
    maria = project.create_sql_connector(
        "maria", host="127.0.0.1", port=3306, username=MY_USER, password=MY_PASSWORD, database=my_database
    )
    s3 = project.create_s3_connector(
        "lake", username=s3_server.access_key, password=s3_server.secret_key, host=s3_server.endpoint
    )
    return {
        "project": project,
        "pg": pg,
        "maria": maria,
        "sources": {
            "pg": (project.create_datasource(pg, "pg_small", table="cluster_small"), 20000),
            "maria": (project.create_datasource(maria, "maria_small", table="cluster_small"), 5000),
            "s3": (
                project.create_datasource(s3, "s3_csv", bucket=s3_server.bucket, path="cluster/source.csv"),
                8000,
            ),
        },
        "big": project.create_datasource(pg, "pg_big", table="cluster_big"),
    }


def _nothing_staged(cluster: Cluster) -> None:
    assert cluster.store_objects("staging") == []
    assert cluster.store_objects("uploads") == []
    assert cluster.pending_multipart_uploads() == []


def _datasets_match_the_store(cluster: Cluster) -> None:
    """Every object under datasets/ belongs to a ready dataset of the metadata store, and the reverse."""
    ready = {row[0] for row in cluster.sql("SELECT id FROM datasets WHERE status = 'ready'")}
    stored = {key.rsplit("/", 1)[-1].split(".")[0] for key in cluster.store_objects("datasets")}
    assert stored == ready


def _wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_concurrent_snapshots_through_both_replicas_complete_exactly_once(
    cluster: Cluster, sources: dict
) -> None:
    """20 snapshots of PostgreSQL, MariaDB and S3 sources, sent to both replicas in turn, all complete with
    the source's rows; snapshots of one source have one content hash, which is the hash of the bytes
    downloaded from either replica; the store holds the datasets and nothing staged."""
    names = list(sources["sources"])
    jobs = []
    for i in range(20):
        kind = names[i % 3]
        source, _rows = sources["sources"][kind]
        project = pio.Project.from_id(sources["project"].id, client=cluster.client(i % 2))
        jobs.append((kind, project.create_dataset(f"c{i}_{kind}", datasource=source.id, wait=False)))
    hashes: dict[str, set[str]] = {k: set() for k in names}
    for i, (kind, job) in enumerate(jobs):
        dataset = job.wait(timeout=300, progress=False)
        assert dataset.num_rows == sources["sources"][kind][1]
        hashes[kind].add(dataset.content_hash)
        if i < 3:
            target = cluster.base / f"download-{i}.parquet"
            pio.Dataset.from_id(dataset.id, client=cluster.client(1 - i % 2)).download(str(target))
            assert hashlib.sha256(target.read_bytes()).hexdigest() == dataset.content_hash
    assert all(len(h) == 1 for h in hashes.values()), hashes
    assert cluster.sql("SELECT count(*) FROM jobs WHERE status = 'succeeded' AND attempts = 1")[0][0] >= 20
    _nothing_staged(cluster)
    _datasets_match_the_store(cluster)


def test_a_worker_killed_mid_snapshot_loses_nothing_but_time(cluster: Cluster, sources: dict) -> None:
    """A worker SIGKILLed in the middle of a 2M-row snapshot: its lease expires, the reaper gives the job to
    the other worker, which completes it; no half dataset, no staged object or multipart upload left."""
    project = pio.Project.from_id(sources["project"].id, client=cluster.client(0))
    job = project.create_dataset("big_killed", datasource=sources["big"].id, wait=False)

    def running_with_rows() -> bool:
        rows = cluster.sql(f"SELECT lease_owner, progress_rows FROM jobs WHERE id = '{job.id}'")
        return bool(rows and rows[0][0] and rows[0][0].startswith("worker@") and rows[0][1] > 0)

    _wait_for(running_with_rows, 120, "the big snapshot to run on a worker")
    owner = cluster.sql(f"SELECT lease_owner FROM jobs WHERE id = '{job.id}'")[0][0]
    pid = int(owner.split(":")[1])
    victim = next(w for w in cluster.workers if w.pid == pid)
    cluster.stop(victim, signal.SIGKILL)
    dataset = job.wait(timeout=300, progress=False)
    assert dataset.num_rows == BIG_ROWS
    attempts, new_owner = cluster.sql(f"SELECT attempts, lease_owner FROM jobs WHERE id = '{job.id}'")[0]
    assert attempts == 2 and new_owner is None
    _nothing_staged(cluster)
    _datasets_match_the_store(cluster)
    cluster.start_worker(victim.name)


def test_a_replica_restarted_while_jobs_run_leaves_them_running(cluster: Cluster, sources: dict) -> None:
    """Jobs sent to a replica go on while that replica is stopped and started again: they run on the
    workers, and both replicas then see them succeed."""
    project = pio.Project.from_id(sources["project"].id, client=cluster.client(0))
    jobs = [
        project.create_dataset(f"restart_{i}", datasource=sources["sources"]["pg"][0].id, wait=False)
        for i in range(4)
    ]
    replica = cluster.replicas[0]
    cluster.stop(replica)
    cluster.start_replica(replica.name)
    for client in (cluster.client(1), cluster.client(0)):  # the restarted replica has a new address
        for job in jobs:
            dataset = pio.Job.from_dict(client.get(f"/jobs/{job.id}"), client).wait(
                timeout=300, progress=False
            )
            assert dataset.num_rows == 20000
    _nothing_staged(cluster)


def test_a_cancelled_snapshot_and_export_leave_nothing_behind(
    cluster: Cluster, sources: dict, my_exec
) -> None:  # type: ignore[no-untyped-def]
    """A snapshot and an export cancelled while a worker runs them end ``cancelled``: no dataset, nothing
    staged in the store, no staging table at the destination."""
    project = pio.Project.from_id(sources["project"].id, client=cluster.client(1))
    job = project.create_dataset("big_cancelled", datasource=sources["big"].id, wait=False)
    _wait_for(lambda: job.refresh().progress_rows > 0, 120, "the snapshot to write rows")
    job.cancel()
    with pytest.raises(pio.JobCancelledError):
        job.wait(timeout=120, progress=False)
    assert job.refresh().dataset_id is None
    _nothing_staged(cluster)
    _datasets_match_the_store(cluster)

    big = project.create_dataset("big_for_export", datasource=sources["big"].id)
    exporter = project.create_exporter(
        sources["maria"], "to_maria", table="cluster_export", write_mode="replace"
    )
    export = exporter.export_dataset(big, wait_for_export=False)
    _wait_for(lambda: export.refresh().progress_rows > 0, 120, "the export to write rows")
    export.cancel()
    _wait_for(lambda: export.refresh().status == "cancelled", 120, "the export to be cancelled")
    _wait_for(
        lambda: my_exec("SHOW TABLES LIKE 'previsio\\_stage\\_%'") == [],
        60,
        "the staging table to be dropped",
    )
    assert my_exec("SHOW TABLES LIKE 'cluster_export'") == []
    _nothing_staged(cluster)


def test_a_cluster_on_rabbitmq_runs_jobs(
    tmp_path_factory: pytest.TempPathFactory, s3_server: S3ServerInfo
) -> None:
    """The same cluster with RabbitMQ (127.0.0.1:5672, guest/guest) as its broker: a replica and a worker of
    their own run a snapshot and an upload to completion, and nothing stays staged."""
    rabbit = start_cluster(
        tmp_path_factory.mktemp("rabbit"),
        s3_server,
        PREVISIO_BROKER_URL="amqp://guest:guest@127.0.0.1:5672//",
    )
    try:
        rabbit.start_replica()
        rabbit.start_worker(concurrency=1)
        project = pio.Project.new("on-rabbit", client=rabbit.client(0))
        assert (
            project.create_dataset("up", dataframe=__import__("pandas").DataFrame({"x": range(500)})).num_rows
            == 500
        )
        parts = rabbit.client(0).get("/health/parts")
        assert parts == {"status": "ok", "parts": {"metadata": "ok", "store": "ok", "broker": "ok"}}
        _nothing_staged(rabbit)
    finally:
        rabbit.close()
