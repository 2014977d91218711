"""Bounded memory: a CSV larger than 1 GB snapshotted from the S3 test server (slow; run with ``-m slow``).

The platform runs in its own process for this test, so that its peak resident memory (``VmHWM``) measures
this snapshot alone. Size with ``PREVISIO_BIG_CSV_MB`` (default 1100).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest
from boto3.s3.transfer import TransferConfig
from conftest import start_platform, stop_platform
from fileservers import FileServers, session_file_servers

import previsio_sdk as pio

BIG_CSV_MB = int(os.environ.get("PREVISIO_BIG_CSV_MB", "1100"))
#: The snapshot must not need memory in proportion to the file: the platform's peak stays under this.
PEAK_LIMIT_MB = 700


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> FileServers:
    """The session's file servers."""
    return session_file_servers(tmp_path_factory.getbasetemp())


def write_big_csv(path: Path, target_bytes: int) -> int:
    """Write a CSV of at least ``target_bytes`` (ints, floats, text, booleans, timestamps); return rows."""
    chunk = 1_000_000
    rows = 0
    with pacsv.CSVWriter(
        path,
        pa.schema(
            [
                ("id", pa.int64()),
                ("customer", pa.string()),
                ("amount", pa.float64()),
                ("paid", pa.bool_()),
                ("ordered_at", pa.timestamp("s")),
            ]
        ),
    ) as writer:
        while path.stat().st_size < target_bytes:
            ids = pa.array(range(rows, rows + chunk), pa.int64())
            batch = pa.record_batch(
                [
                    ids,
                    pc.binary_join_element_wise(
                        "customer-", pc.cast(pc.bit_wise_and(ids, 0xFFFF), pa.string()), ""
                    ),
                    pc.divide(pc.cast(pc.multiply(ids, 7919), pa.float64()), 100.0),
                    pc.equal(pc.bit_wise_and(ids, 1), 0),
                    pc.cast(pc.add(pc.multiply(ids, 13), 1_700_000_000), pa.timestamp("s")),
                ],
                names=["id", "customer", "amount", "paid", "ordered_at"],
            )
            writer.write_batch(batch)
            rows += chunk
    return rows


def vm_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in kB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


@pytest.mark.slow
def test_a_csv_larger_than_1_gb_snapshots_from_s3_with_bounded_memory(
    servers: FileServers, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A >= 1 GB CSV on the S3 server snapshots completely while the platform's peak memory stays bounded."""
    csv_path = tmp_path / "big.csv"
    rows = write_big_csv(csv_path, BIG_CSV_MB * 1024 * 1024)
    size = csv_path.stat().st_size
    servers.s3.client().upload_file(
        str(csv_path), servers.s3.bucket, "big/big.csv", Config=TransferConfig(multipart_chunksize=64 << 20)
    )
    csv_path.unlink()

    platform = start_platform(tmp_path / "platform")
    try:
        client = platform.client()
        project = pio.Project.new("big-csv", client=client)
        s3 = servers.s3
        connector = project.create_s3_connector(
            "s3", username=s3.access_key, password=s3.secret_key, host=s3.endpoint, region="us-east-1"
        )
        source = project.create_datasource(connector, "big", bucket=s3.bucket, path="big/big.csv")
        before = vm_status(platform.process.pid)
        started = time.monotonic()
        dataset = project.create_dataset("big", datasource=source, progress=False)
        seconds = time.monotonic() - started
        after = vm_status(platform.process.pid)
    finally:
        stop_platform(platform)
    assert dataset.num_rows == rows
    assert [c.type for c in dataset.schema] == ["int64", "string", "double", "bool", "timestamp[us]"]
    report = {
        "csv_bytes": size,
        "rows": rows,
        "seconds": round(seconds, 1),
        "platform_rss_before_mb": round(before["VmRSS"] / 1024),
        "platform_peak_rss_mb": round(after["VmHWM"] / 1024),
        "dataset_bytes": dataset.size_bytes,
    }
    with capsys.disabled():
        print("\nS3 CSV snapshot:", json.dumps(report))
    assert after["VmHWM"] / 1024 < PEAK_LIMIT_MB, report
