"""A snapshot streams: a 2,000,000-row table goes through a platform whose address space is capped.

It runs in the default suite (~11 s): it guards the memory bound of snapshots against regressions. The
snapshot's work runs in a child process of the platform (:mod:`previsio_sdk.server.sandbox`): the bound is
on that child's peak resident memory, which the platform logs (``job <id> succeeded: ... peak_rss=<bytes>``).
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from conftest import PG_HOST, PG_PORT, PG_SUPERUSER

import previsio_sdk as pio

ROWS = 2_000_000
#: Address-space cap of the platform process (RLIMIT_AS), in MiB: see the test's docstring.
ADDRESS_SPACE_LIMIT_MB = 1000
#: What a snapshot may add to the idle platform's resident memory. Measured: +129 to +133 MB for this table,
#: in runs where the idle platform itself was 151 MB and 194 MB (the idle footprint of the same process
#: varies by run: transparent huge pages are in madvise mode and mimalloc asks for them). Holding the table
#: would add ~330 MB. The issue's absolute bound (peak <= 300 MB) is measured by benchmarks/snapshot.py
#: on a quiet machine (260 MB at 1M and 5M rows).
SNAPSHOT_GROWTH_LIMIT_MB = 160
#: What the platform process itself may grow by while a child takes the snapshot (it records progress).
PLATFORM_GROWTH_LIMIT_MB = 40


def _cap_address_space() -> None:
    """Run in the platform's process between fork and exec."""
    limit = ADDRESS_SPACE_LIMIT_MB << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _status_mb(pid: int) -> dict[str, float]:
    """VmRSS, VmHWM, VmSize and VmPeak of a process, in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "VmSize", "VmPeak"):
            out[key] = int(value.split()[0]) / 1024
    return out


def _fork_server(platform_pid: int) -> int:
    """Pid of the platform's fork server (the parent of every job's child), once it has started."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                cmdline = (entry / "cmdline").read_bytes()
            except (OSError, IndexError, ValueError):
                continue
            if ppid == platform_pid and b"forkserver" in cmdline:
                return int(entry.name)
        time.sleep(0.1)
    raise AssertionError("the platform's fork server did not start")


def _start_capped_platform(home: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "platform.log"
    env = {k: v for k, v in os.environ.items() if k != "PREVISIO_URL"}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "previsio_sdk.server",
                "--local",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--home",
                str(home),
                "--log-level",
                "info",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            preexec_fn=_cap_address_space,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the capped platform exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            url = json.loads((home / "platform.json").read_text())["url"]
            if requests.get(f"{url}/api/v1/health", timeout=2).ok:
                return proc, url, (home / "admin.token").read_text().strip()
        except (OSError, ValueError, KeyError, requests.RequestException):
            pass
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"the capped platform did not start in 60 s:\n{log_path.read_text()}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc/<pid>/status: Linux")
def test_snapshot_of_2m_rows_streams_within_a_capped_address_space(tmp_path: Path, pg_database: str, pg_exec):
    """2M rows (~330 MB as Arrow) go through a platform capped at 1000 MiB of address space, adding <= 160 MB.

    Why RLIMIT_AS = 1000 MiB (measured on the reference machine: 2 CPUs, Python 3.11, pyarrow 26, ADBC
    PostgreSQL 1.13): RLIMIT_AS caps virtual memory, not RSS, and the platform maps much more than it uses.
    Idle, it has VmSize ~477 MB and VmPeak ~540 MB (the interpreter and its shared libraries - libarrow
    alone maps ~100 MB -, thread stacks, malloc arenas) for ~137 MB of RSS. Uncapped, pyarrow's mimalloc
    pool reserves a 1 GiB arena at its first allocation, so even a streaming snapshot shows VmPeak ~1.65 GB
    with RSS ~250 MB: a cap of 1.5 GB would not be generous, it would tell neither implementation apart.
    Capped, mimalloc falls back to small segments and the address space tracks real use: the streaming
    snapshot of this table peaks at VmSize ~775 MB (VmHWM ~258 MB), ~225 MB under the cap. An implementation
    that holds the whole table in memory (``reader.read_all()`` before writing, tried on the reference
    machine) needs the table's ~330 MB of Arrow buffers on top: under this cap it fails at ~1.45M rows. Hence
    the 96-character ``payload`` column: with narrow rows only, 2M rows are ~170 MB of Arrow and the
    whole-table variant was measured to pass under 1000 MiB (it only failed under 800 MiB, where the
    streaming snapshot, at ~757 MB, has too little headroom to be a reliable test).

    The snapshot runs in a child forked from the platform's fork server, which inherits the cap. The RSS bound
    is the child's high-water mark (VmHWM, logged by the platform as ``peak_rss``) minus its RSS when the
    work began (``start_rss``: the interpreter and the preloaded libraries it shares with the fork server):
    what the snapshot itself held. The platform process, which only watched, must not have grown by more
    than a few MB either.
    """
    pg_exec("DROP TABLE IF EXISTS membound")
    pg_exec(
        "CREATE TABLE membound AS SELECT g::bigint AS id, md5(g::text) AS label, "
        "repeat(md5((g * 7)::text), 3) AS payload, "
        "timestamp '2020-01-01' + g * interval '1 second' AS created_at, "
        f"(g % 1000)::float8 / 7 AS amount FROM generate_series(1, {ROWS}) AS g"
    )
    pg_exec("VACUUM (FREEZE, ANALYZE) membound")

    proc, url, token = _start_capped_platform(tmp_path / "home")
    try:
        limits = Path(f"/proc/{proc.pid}/limits").read_text()
        assert str(ADDRESS_SPACE_LIMIT_MB << 20) in next(
            line for line in limits.splitlines() if line.startswith("Max address space")
        )
        server = _fork_server(proc.pid)
        time.sleep(3)  # the fork server's imports (started with the platform) are done
        idle = _status_mb(proc.pid)
        server_idle = _status_mb(server)
        client = pio.Client(url=url, token=token)
        project = pio.Project.new("membound", client=client)
        connector = project.create_sql_connector(
            "pg", host=PG_HOST, port=PG_PORT, username=PG_SUPERUSER, database=pg_database
        )
        source = project.create_datasource(connector, "membound", table="membound")

        dataset = project.create_dataset("membound", datasource=source, progress=False, timeout=240)

        after = _status_mb(proc.pid)
        log_text = (tmp_path / "home" / "platform.log").read_text(errors="replace")
        assert dataset.num_rows == ROWS
        found = re.search(r"job \w+ succeeded: \d+ rows peak_rss=(\d+) start_rss=(\d+)", log_text)
        assert found, log_text[-2000:]
        child_peak, child_start = int(found.group(1)) / 2**20, int(found.group(2)) / 2**20
        growth = child_peak - child_start
        print(
            f"\nsnapshot of {ROWS} rows: job child peak {child_peak:.0f} MB, at its start "
            f"{child_start:.0f} MB (fork server {server_idle['VmRSS']:.0f} MB); platform idle "
            f"{idle['VmRSS']:.0f} MB, peak after {after['VmHWM']:.0f} MB"
        )
        assert growth <= SNAPSHOT_GROWTH_LIMIT_MB, (
            f"the snapshot raised its process's RSS by {growth:.0f} MB > {SNAPSHOT_GROWTH_LIMIT_MB} MB "
            f"(child at start {child_start:.0f} MB, peak {child_peak:.0f} MB)\n{log_text[-2000:]}"
        )
        platform_growth = after["VmHWM"] - idle["VmRSS"]
        assert platform_growth <= PLATFORM_GROWTH_LIMIT_MB, (
            f"the platform itself grew by {platform_growth:.0f} MB while its child took the snapshot"
        )
        head = dataset.head(3)
        assert len(head) == 3
        assert head["payload"].str.len().tolist() == [96, 96, 96]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        pg_exec("DROP TABLE IF EXISTS membound")
