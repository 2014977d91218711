"""Where dataset files live: one Parquet file per dataset under ``<home>/datasets``."""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

#: Rows per Parquet row group; also the unit ``head()`` reads.
ROW_GROUP_ROWS = 128 * 1024


T = TypeVar("T")

#: Batches read ahead of the Parquet writer. Reading (ADBC, ConnectorX, the network) and encoding release the
#: GIL, so the two overlap on two cores; two batches in the queue keep memory bounded.
READ_AHEAD_BATCHES = 2
_DONE = object()


def read_ahead(
    reader: Iterable[T], depth: int = READ_AHEAD_BATCHES, name: str = "previsio-read-ahead"
) -> Iterator[T]:
    """Yield the items of ``reader`` (record batches, chunks), produced by a background thread up to ``depth``
    items ahead.

    An error of the reader is raised here, with its own type; when the consumer stops early (an error while
    writing), the reading thread stops too.
    """
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in reader:
                if not put(batch):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(exc)
            return
        put(_DONE)

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _hash_and_sync(path: Path) -> Any:
    """SHA-256 of a written file, computed while the file is flushed to disk (both release the GIL)."""
    digest = hashlib.sha256()
    failed: list[OSError] = []

    def sync(fd: int) -> None:
        try:
            os.fsync(fd)
        except OSError as exc:  # ENOSPC or EIO at flush time: the write did not happen, say so
            failed.append(exc)

    with open(path, "rb") as fh:
        syncing = threading.Thread(target=sync, args=(fh.fileno(),), name="previsio-fsync")
        syncing.start()
        try:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        finally:
            syncing.join()
    if failed:
        raise failed[0]
    return digest


@dataclass(frozen=True)
class WrittenFile:
    """A Parquet file written under a temporary name, not yet visible."""

    tmp_path: Path
    num_rows: int
    size_bytes: int
    content_hash: str
    schema: list[dict[str, Any]]


def schema_to_json(schema: pa.Schema) -> list[dict[str, Any]]:
    """Describe an Arrow schema as ``[{"name", "type", "nullable"}]``."""
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]


class ParquetDatasetStore:
    """Writes record-batch streams to Parquet files and makes them visible atomically.

    Args:
        root: Directory of committed datasets.
        tmp: Directory of files being written, on the same filesystem so that ``os.replace`` is atomic.
    """

    def __init__(self, root: Path, tmp: Path) -> None:
        self.root = root
        self.tmp = tmp
        root.mkdir(parents=True, exist_ok=True)
        tmp.mkdir(parents=True, exist_ok=True)

    def path(self, dataset_id: str) -> Path:
        """Path of a committed dataset's file."""
        return self.root / f"{dataset_id}.parquet"

    def new_tmp_path(self, suffix: str = ".parquet.part") -> Path:
        """A fresh temporary path in the store's temp directory."""
        return self.tmp / f"{uuid.uuid4().hex}{suffix}"

    def job_tmp_path(self, job_id: str) -> Path:
        """The temporary file of job ``job_id``'s dataset: known to the job's runner, which removes it when
        the process writing it was stopped or crashed."""
        return self.tmp / f"job-{job_id}.parquet.part"

    def write(
        self,
        reader: pa.RecordBatchReader,
        on_progress: Callable[[int], None] | None = None,
        progress_every: float = 0.5,
        tmp: Path | None = None,
    ) -> WrittenFile:
        """Stream ``reader`` into a temporary Parquet file; batches are never held together in memory.

        The file is fsynced before returning. On any error the temporary file is removed.

        Args:
            reader: The rows.
            on_progress: Called with the rows written so far, every ``progress_every`` seconds.
            progress_every: Seconds between two progress calls.
            tmp: The temporary file to write (:meth:`job_tmp_path`); a fresh name when None.
        """
        tmp = tmp or self.new_tmp_path()
        rows = 0
        last = time.monotonic()
        try:
            # Dictionaries only for strings: that is where they pay (categories, labels), while a dictionary
            # of high-cardinality numbers is built and thrown away, costing memory (~50 MB per 1M rows) and
            # time.
            strings = [
                f.name
                for f in reader.schema
                if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            ]
            with pq.ParquetWriter(
                tmp,
                reader.schema,
                compression="snappy",
                write_statistics=True,
                use_dictionary=strings or False,
            ) as writer:
                pending: list[pa.RecordBatch] = []
                pending_rows = 0
                for batch in read_ahead(reader):
                    pending.append(batch)
                    pending_rows += batch.num_rows
                    if pending_rows >= ROW_GROUP_ROWS:
                        writer.write_table(pa.Table.from_batches(pending, reader.schema))
                        pending, pending_rows = [], 0
                    rows += batch.num_rows
                    if on_progress is not None and time.monotonic() - last >= progress_every:
                        on_progress(rows)
                        last = time.monotonic()
                if pending or rows == 0:
                    writer.write_table(pa.Table.from_batches(pending, reader.schema))
            digest = _hash_and_sync(tmp)
            return WrittenFile(
                tmp, rows, tmp.stat().st_size, digest.hexdigest(), schema_to_json(reader.schema)
            )
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def commit(self, written: WrittenFile, dataset_id: str) -> Path:
        """Move a written file to its final name (atomic on one filesystem)."""
        final = self.path(dataset_id)
        os.replace(written.tmp_path, final)
        return final

    def delete(self, dataset_id: str) -> None:
        """Remove a dataset's file if present."""
        self.path(dataset_id).unlink(missing_ok=True)

    def clean(self, keep_ids: set[str]) -> None:
        """Remove temporary files and dataset files that no committed dataset refers to (start-up)."""
        for path in self.tmp.iterdir():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)  # an upload received before the restart
            else:
                path.unlink(missing_ok=True)
        for path in self.root.glob("*.parquet"):
            if path.stem not in keep_ids:
                path.unlink(missing_ok=True)

    def head(self, dataset_id: str, n: int) -> pa.Table:
        """First ``n`` rows, reading only the row groups needed."""
        pf = pq.ParquetFile(self.path(dataset_id))
        batches = []
        got = 0
        if n > 0:
            for batch in pf.iter_batches(batch_size=min(n, 65536)):
                batches.append(batch.slice(0, n - got))
                got += batches[-1].num_rows
                if got >= n:
                    break
        return pa.Table.from_batches(batches, schema=pf.schema_arrow)
