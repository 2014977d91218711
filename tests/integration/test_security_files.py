"""Hostile files never take the platform down: each gives a clean failed job while the platform stays up.

The files are real and served on 127.0.0.1 by a local connector (and uploaded through the SDK):

- ``nested.jsonl``: one JSON value nested 100,000 deep (~600 KB), which overflows libarrow's JSON parser
  (a segfault that used to kill the platform with its running jobs);
- ``wide.csv``: 100,000 columns (~1.7 MB), for which the CSV reader allocated ~1.8 GB;
- ``bomb.csv.gz``: ~10 MB of gzip that decompresses to ~10 GB.

Two platforms: ``guarded`` runs with the default limits, which refuse each file before it is parsed
(``limit_exceeded``); ``bare`` runs with those limits off, so that only the sandbox stands between the file
and the platform: the parser's crash is an ``invalid_file`` job, the memory blow-up a ``limit_exceeded`` job
(``PREVISIO_JOB_MEMORY_BYTES``), and a snapshot running beside them succeeds. The peak resident memory of the
platform process and of the jobs' child processes are printed (``-s``).
"""

from __future__ import annotations

import gzip
import io
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PG_HOST, PG_PORT, PG_SUPERUSER, RunningPlatform, start_platform, stop_platform

import previsio_sdk as pio
from previsio_sdk.server.drivers.limits import InflateGuard, JsonDepthScanner, ReadLimits
from previsio_sdk.server.errors import LimitExceeded

NESTING = 100_000
WIDE_COLUMNS = 100_000
BOMB_MEMBERS = 100
#: Memory a job's child may use on these platforms (the wide CSV needs ~1.8 GB without the column limit).
JOB_MEMORY = 768 << 20


def _write_files(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "nested.jsonl").write_bytes(b'{"a":' * NESTING + b"1" + b"}" * NESTING + b"\n")
    header = ",".join(f"c{i}" for i in range(WIDE_COLUMNS))
    row = ",".join("1" for _ in range(WIDE_COLUMNS))
    (root / "wide.csv").write_text(header + "\n" + "\n".join([row] * 5) + "\n")
    # 100 gzip members of 100 MB of "0\n" each: ~10 MB on disk, ~10 GB decompressed (a valid gzip file).
    member = gzip.compress(b"0\n" * (50 << 20), compresslevel=9)
    with open(root / "bomb.csv.gz", "wb") as out:
        out.write(gzip.compress(b"value\n"))
        for _ in range(BOMB_MEMBERS):
            out.write(member)
    (root / "good.csv").write_text("id,name\n1,a\n2,b\n")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hostile files, in a directory local connectors may read."""
    root = tmp_path_factory.mktemp("hostile")
    _write_files(root)
    return root


def _platform(home: Path, files: Path, **settings: int) -> RunningPlatform:
    env = {"PREVISIO_LOCAL_ROOTS": json.dumps([str(files)]), "PREVISIO_JOB_MEMORY_BYTES": str(JOB_MEMORY)}
    env.update({f"PREVISIO_{k.upper()}": str(v) for k, v in settings.items()})
    return start_platform(home, env=env)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, files: Path) -> Iterator[RunningPlatform]:
    """A platform with the default limits."""
    running = _platform(tmp_path_factory.mktemp("guarded-home"), files)
    yield running
    stop_platform(running)


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory, files: Path) -> Iterator[RunningPlatform]:
    """A platform with the file limits off: only the sandbox (and its memory limit) protects it."""
    running = _platform(
        tmp_path_factory.mktemp("bare-home"),
        files,
        max_json_depth=0,
        max_columns=0,
        max_compression_ratio=0,
        max_decompressed_bytes=256 << 20,
    )
    yield running
    stop_platform(running)


def _project(platform: RunningPlatform, files: Path) -> tuple[pio.Project, pio.Connector]:
    client = platform.client()
    project = pio.Project.new(f"hostile-{time.monotonic_ns()}", client=client)
    return project, project.create_local_connector("files", root=str(files))


#: What each hostile file is in the moment its datasource is created (and checked by the platform).
BENIGN = {
    "nested.jsonl": b'{"a": 1}\n',
    "wide.csv": b"c0,c1\n1,2\n",
    "bomb.csv.gz": gzip.compress(b"value\n0\n"),
}


def _snapshot_fails(
    project: pio.Project, connector: pio.Connector, files: Path, name: str
) -> pio.JobFailedError:
    """Snapshot ``name`` served hostile: benign while its datasource is created and checked, swapped for the
    hostile file before the snapshot (a server changes its files when it likes); the job must fail."""
    run = f"run-{time.monotonic_ns()}"
    (files / run).mkdir()
    (files / run / name).write_bytes(BENIGN[name])
    source = project.create_datasource(connector, run, path=f"{run}/{name}")
    (files / run / name).write_bytes((files / name).read_bytes())
    with pytest.raises(pio.JobFailedError) as info:
        project.create_dataset(f"ds_{run}", datasource=source, progress=False, timeout=120)
    assert project.list_datasets() == []
    return info.value


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise AssertionError(key)


def _peak_rss(platform: RunningPlatform, job_id: str) -> int:
    """The job's child peak RSS, from the platform's log line ``job <id> ... peak_rss=<bytes>``."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = re.search(rf"(?:job|export) {job_id} \w+: .*?peak_rss=(\d+)", platform.log_text())
        if found:
            return int(found.group(1))
        time.sleep(0.1)
    raise AssertionError(f"no peak_rss line for {job_id}")


def _report(platform: RunningPlatform, label: str, job_id: str) -> None:
    pid = platform.process.pid
    print(
        f"\n[{label}] child peak RSS {_peak_rss(platform, job_id) / 2**20:.0f} MiB; platform RSS "
        f"{_status_kb(pid, 'VmRSS') / 1024:.0f} MiB, platform peak {_status_kb(pid, 'VmHWM') / 1024:.0f} MiB"
    )


def _assert_up(platform: RunningPlatform, project: pio.Project, connector: pio.Connector) -> None:
    assert platform.process.poll() is None, "the platform process died"
    source = project.create_datasource(connector, f"good_{time.monotonic_ns()}", path="good.csv")
    ds = project.create_dataset(f"good_{time.monotonic_ns()}", datasource=source, progress=False, timeout=60)
    assert ds.num_rows == 2


# -- the limits, checked before parsing ----------------------------------------------------------------------
def test_deeply_nested_json_lines_fail_with_limit_exceeded(guarded: RunningPlatform, files: Path) -> None:
    """A JSON-lines file nested 100,000 deep fails its snapshot with limit_exceeded naming the setting."""
    project, connector = _project(guarded, files)
    with pytest.raises(pio.ValidationError) as refused:  # checked when the datasource is created, too
        project.create_datasource(connector, "nested", path="nested.jsonl")
    assert refused.value.code == "limit_exceeded"
    error = _snapshot_fails(project, connector, files, "nested.jsonl")
    assert error.code == "limit_exceeded"
    assert "PREVISIO_MAX_JSON_DEPTH" in error.message
    _report(guarded, "nested.jsonl, guarded", error.job_id or "")
    _assert_up(guarded, project, connector)


def test_a_csv_of_100k_columns_fails_with_limit_exceeded(guarded: RunningPlatform, files: Path) -> None:
    """A CSV whose header has 100,000 columns fails (snapshot and upload) before the reader allocates."""
    project, connector = _project(guarded, files)
    error = _snapshot_fails(project, connector, files, "wide.csv")
    assert (error.code, "PREVISIO_MAX_COLUMNS" in error.message) == ("limit_exceeded", True)
    _report(guarded, "wide.csv snapshot, guarded", error.job_id or "")
    with pytest.raises(pio.JobFailedError) as info:
        project.create_dataset("wide_upload", file_name=files / "wide.csv", progress=False, timeout=120)
    assert info.value.code == "limit_exceeded"
    _report(guarded, "wide.csv upload, guarded", info.value.job_id or "")
    _assert_up(guarded, project, connector)


def test_a_gzip_bomb_fails_with_limit_exceeded(guarded: RunningPlatform, files: Path) -> None:
    """10 MB of gzip expanding to 10 GB stops at the compression ratio limit (after 64 MiB), quickly."""
    assert (files / "bomb.csv.gz").stat().st_size > 9_000_000
    project, connector = _project(guarded, files)
    started = time.monotonic()
    error = _snapshot_fails(project, connector, files, "bomb.csv.gz")
    assert (error.code, "PREVISIO_MAX_COMPRESSION_RATIO" in error.message) == ("limit_exceeded", True)
    assert time.monotonic() - started < 60
    _report(guarded, "bomb.csv.gz, guarded", error.job_id or "")
    _assert_up(guarded, project, connector)


# -- the sandbox alone ---------------------------------------------------------------------------------------
def test_a_parser_crash_fails_the_job_while_another_snapshot_runs_on(
    bare: RunningPlatform, files: Path, pg_database: str, pg_exec
) -> None:  # type: ignore[no-untyped-def]
    """With the depth limit off, libarrow crashes on the nested file: that job fails with invalid_file, the
    platform stays up, and a snapshot running at the same time succeeds."""
    pg_exec("DROP TABLE IF EXISTS sec_long")
    pg_exec(
        "CREATE TABLE sec_long AS SELECT g::bigint AS id, md5(g::text) AS label "
        "FROM generate_series(1, 3000000) AS g"
    )
    project, connector = _project(bare, files)
    pg = project.create_sql_connector(
        "pg", host=PG_HOST, port=PG_PORT, username=PG_SUPERUSER, database=pg_database
    )
    long_job = project.create_dataset(
        "long", datasource=project.create_datasource(pg, "long", table="sec_long"), wait=False
    )
    deadline = time.monotonic() + 30
    while long_job.refresh().status == "pending" and time.monotonic() < deadline:
        time.sleep(0.05)

    error = _snapshot_fails(project, connector, files, "nested.jsonl")

    assert long_job.refresh().status == "running", "the long snapshot ended before the crash: make it longer"
    assert error.code == "invalid_file"
    assert "crashed" in error.message
    _report(bare, "nested.jsonl, no depth limit (crash)", error.job_id or "")
    assert long_job.wait(timeout=180, progress=False).num_rows == 3_000_000
    _assert_up(bare, project, connector)
    pg_exec("DROP TABLE IF EXISTS sec_long")


def test_a_memory_blow_up_is_stopped_at_the_job_memory_limit(bare: RunningPlatform, files: Path) -> None:
    """With the column limit off, the 100k-column CSV passes the per-job memory limit: limit_exceeded."""
    project, connector = _project(bare, files)
    error = _snapshot_fails(project, connector, files, "wide.csv")
    assert error.code == "limit_exceeded"
    assert "PREVISIO_JOB_MEMORY_BYTES" in error.message
    _report(bare, "wide.csv, no column limit (memory)", error.job_id or "")
    _assert_up(bare, project, connector)


def test_a_gzip_bomb_stops_at_the_decompressed_size_limit(bare: RunningPlatform, files: Path) -> None:
    """With no ratio limit, the bomb stops at PREVISIO_MAX_DECOMPRESSED_BYTES (256 MiB here)."""
    project, connector = _project(bare, files)
    error = _snapshot_fails(project, connector, files, "bomb.csv.gz")
    assert (error.code, "PREVISIO_MAX_DECOMPRESSED_BYTES" in error.message) == ("limit_exceeded", True)
    _report(bare, "bomb.csv.gz, size limit only", error.job_id or "")
    _assert_up(bare, project, connector)


# -- the checks themselves -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "deepest_over_2"),
    [
        (b'{"a": "[[[[[[", "b": [1]}\n', False),  # brackets inside a string do not count
        (b'{"a": "\\"[[[[[["}\n', False),  # an escaped quote does not end the string
        (b'{"a": "x\\\\"}\n[[[[1]]]]\n', True),  # an escaped backslash does not escape the quote
        (b"[[1],[2],[3],[4],[5]]\n", False),  # many arrays, shallow
        (b'{"a": "]]]]]]", "b": [[[[1]]]]}\n', True),  # closing brackets in a string hide nothing
    ],
)
def test_the_depth_scan_reads_strings_and_escapes(text: bytes, deepest_over_2: bool) -> None:
    """The scan counts nesting outside strings only, fed whole or byte by byte."""
    assert (JsonDepthScanner(2).feed(text) > 2) is deepest_over_2
    scanner = JsonDepthScanner(2)
    assert (max(scanner.feed(text[i : i + 1]) for i in range(len(text))) > 2) is deepest_over_2


def test_the_inflate_guard_stops_past_the_decompressed_size() -> None:
    """Reading past max_decompressed_bytes raises limit_exceeded, even when everything is read at once."""
    guard = InflateGuard(io.BytesIO(b"x" * 5000), lambda: 5000, ReadLimits(max_decompressed_bytes=4096), "f")
    with pytest.raises(LimitExceeded) as info:
        guard.read()
    assert info.value.code == "limit_exceeded"
