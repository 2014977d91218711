"""A platform cluster of separate processes on 127.0.0.1, for the cluster tests and ``benchmarks/cluster.py``.

Its parts are the ones an operator runs: a PostgreSQL metadata database of its own (created on the local
server, dropped at the end), an S3-compatible store (moto's server), a Redis broker (a database number of the
local server), API replicas (``python -m previsio_sdk.server``) and Celery workers (``previsio worker``), each
with a home of its own so that nothing is shared on disk.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis
import requests
from cryptography.fernet import Fernet

import previsio_sdk as pio

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS_URL_BASE = "redis://127.0.0.1:6379"


@dataclass
class Process:
    """One process of the cluster."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    url: str | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class Cluster:
    """The running cluster: its settings, its replicas and workers."""

    base: Path
    env: dict[str, str]
    token: str
    metadata_db: str
    redis_db: int
    replicas: list[Process] = field(default_factory=list)
    workers: list[Process] = field(default_factory=list)
    store_prefix: str = ""
    s3: Any = None

    # -- processes ------------------------------------------------------------------------------------------
    def start_replica(self, name: str | None = None, timeout: float = 60) -> Process:
        """Start an API replica (``previsio serve`` on a free port) and wait until it answers."""
        name = name or f"replica{len(self.replicas) + 1}"
        home = self.base / name
        home.mkdir(parents=True, exist_ok=True)
        log_path = home / "serve.out"
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(
                [sys.executable, "-m", "previsio_sdk.server", "--host", "127.0.0.1", "--port", "0"],
                env={**self.env, "PREVISIO_HOME": str(home)},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        proc = Process(name, popen, log_path)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if popen.poll() is not None:
                raise RuntimeError(f"{name} exited with {popen.returncode}:\n{proc.log()}")
            found = re.findall(r"listening on (http://\S+)", proc.log())  # a restart appends: the last
            if found:
                try:
                    if requests.get(f"{found[-1]}/api/v1/health", timeout=2).ok:
                        proc.url = found[-1]
                        self.replicas = [r for r in self.replicas if r.name != name] + [proc]
                        return proc
                except requests.RequestException:
                    pass
            time.sleep(0.1)
        popen.kill()
        raise RuntimeError(f"{name} did not start in {timeout} s:\n{proc.log()}")

    def start_worker(
        self, name: str | None = None, concurrency: int = 2, queues: str | None = None
    ) -> Process:
        """Start a Celery worker and wait until it takes jobs."""
        name = name or f"worker{len(self.workers) + 1}"
        home = self.base / name
        home.mkdir(parents=True, exist_ok=True)
        log_path = home / "worker.out"
        args = [sys.executable, "-m", "previsio_sdk.cli", "worker", "--concurrency", str(concurrency)]
        if queues:
            args += ["--queues", queues]
        with open(log_path, "ab") as log:
            popen = subprocess.Popen(
                args,
                env={**self.env, "PREVISIO_HOME": str(home)},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        proc = Process(name, popen, log_path)
        started = proc.log().count(" ready.")  # a restart appends to the same log
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if popen.poll() is not None:
                raise RuntimeError(f"{name} exited with {popen.returncode}:\n{proc.log()}")
            if proc.log().count(" ready.") > started:
                self.workers = [w for w in self.workers if w.name != name] + [proc]
                return proc
            time.sleep(0.1)
        popen.kill()
        raise RuntimeError(f"{name} did not start in 60 s:\n{proc.log()}")

    def client(self, index: int = 0) -> pio.Client:
        """An SDK client of replica ``index``."""
        return pio.Client(url=self.replicas[index].url, token=self.token)

    def stop(self, proc: Process, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        """Stop one process (``SIGKILL`` kills it on the spot)."""
        if proc.popen.poll() is None:
            proc.popen.send_signal(sig)
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.popen.kill()
                proc.popen.wait()

    def close(self) -> None:
        """Stop every process, drop the metadata database and the broker's queues."""
        for proc in self.workers + self.replicas:
            self.stop(proc, timeout=15)
        with psycopg.connect(**PG, dbname="postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{self.metadata_db}" WITH (FORCE)')
        redis.Redis.from_url(f"{REDIS_URL_BASE}/{self.redis_db}").flushdb()

    # -- what the store holds -------------------------------------------------------------------------------
    def store_objects(self, folder: str) -> list[str]:
        """Keys under ``<prefix>/<folder>/`` of the store's bucket."""
        client = self.s3.client()
        answer = client.list_objects_v2(Bucket=self.s3.bucket, Prefix=f"{self.store_prefix}/{folder}/")
        return sorted(o["Key"] for o in answer.get("Contents", []))

    def pending_multipart_uploads(self) -> list[str]:
        """Multipart uploads started and never completed nor aborted under the store's prefix."""
        answer = self.s3.client().list_multipart_uploads(Bucket=self.s3.bucket, Prefix=self.store_prefix)
        return [u["Key"] for u in answer.get("Uploads", [])]

    def sql(self, statement: str) -> list[tuple]:  # type: ignore[type-arg]
        """Run SQL on the metadata database."""
        with psycopg.connect(**PG, dbname=self.metadata_db, autocommit=True) as c:
            cur = c.execute(statement)
            return cur.fetchall() if cur.description else []


def start_cluster(
    base: Path, s3: Any, redis_db: int = 11, lease_seconds: int = 4, **extra_env: str
) -> Cluster:
    """Create the metadata database, a store prefix and a broker database, and set the settings every process
    shares (no process is started)."""
    metadata_db = f"previsio_cluster_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(**PG, dbname="postgres", autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{metadata_db}"')
    redis.Redis.from_url(f"{REDIS_URL_BASE}/{redis_db}").flushdb()
    token = "pvo_cluster_" + uuid.uuid4().hex
    prefix = f"cluster-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "PREVISIO_DATABASE_URL": f"postgresql+psycopg://{PG['user']}@{PG['host']}:{PG['port']}/{metadata_db}",
        "PREVISIO_STORE_URL": f"s3://{s3.bucket}/{prefix}",
        "PREVISIO_STORE_ENDPOINT_URL": s3.endpoint,
        "PREVISIO_STORE_ACCESS_KEY": s3.access_key,
        "PREVISIO_STORE_SECRET_KEY": s3.secret_key,
        "PREVISIO_EXECUTOR": "celery",
        "PREVISIO_BROKER_URL": f"{REDIS_URL_BASE}/{redis_db}",
        "PREVISIO_SECRET_KEY": Fernet.generate_key().decode(),
        "PREVISIO_BOOTSTRAP_TOKEN": token,
        "PREVISIO_LEASE_SECONDS": str(lease_seconds),
        # The test's databases and servers are on this machine: a cluster denies loopback otherwise.
        "PREVISIO_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
        "PREVISIO_LOCAL_ROOTS": "[]",
        **extra_env,
    }
    env.pop("PREVISIO_URL", None)
    return Cluster(base, env, token, metadata_db, redis_db, store_prefix=prefix, s3=s3)
