"""The dataset store interface, and the Parquet encoding every store shares.

A store keeps one Parquet file per dataset. A job writes its dataset into the job's *staging* object (named
by the job id, so that whoever holds the job knows what to remove when it is stopped), and the platform
*commits* it under the dataset id in the same step as the metadata: only committed files are ever read.
Uploaded files are staged in the store too, so that any process can read what any API replica received.
"""

from __future__ import annotations

import abc
import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from ..streaming import read_ahead

#: Rows per Parquet row group; also the unit ``head()`` reads.
ROW_GROUP_ROWS = 128 * 1024


@dataclass(frozen=True)
class WrittenFile:
    """A dataset file written to a job's staging object, not yet visible."""

    #: The job whose staging object holds the file.
    job_id: str
    num_rows: int
    size_bytes: int
    content_hash: str
    schema: list[dict[str, Any]]


def schema_to_json(schema: pa.Schema) -> list[dict[str, Any]]:
    """Describe an Arrow schema as ``[{"name", "type", "nullable"}]``."""
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]


def write_parquet(
    reader: pa.RecordBatchReader,
    sink: Any,
    on_progress: Callable[[int], None] | None = None,
    progress_every: float = 0.5,
) -> int:
    """Stream ``reader`` into Parquet on ``sink`` (a path or a binary file); return the rows written.

    Batches are never held together in memory beyond one row group; reading runs a little ahead of the
    encoding (:func:`~previsio_sdk.server.streaming.read_ahead`).
    """
    rows = 0
    last = time.monotonic()
    # Dictionaries only for strings: that is where they pay (categories, labels), while a dictionary of
    # high-cardinality numbers is built and thrown away, costing memory (~50 MB per 1M rows) and time.
    strings = [
        f.name for f in reader.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    ]
    with pq.ParquetWriter(
        sink, reader.schema, compression="snappy", write_statistics=True, use_dictionary=strings or False
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
    return rows


class HashingWriter:
    """A binary file wrapper hashing (SHA-256) and counting what is written through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        self.raw.write(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.raw.flush()

    @property
    def closed(self) -> bool:
        return False

    def close(self) -> None:  # the store closes (commits) the raw file itself
        pass


class UploadSink(abc.ABC):
    """Where an API replica streams an uploaded file: staged in the store until a job has read it."""

    #: How the job finds the staged file again (:meth:`DatasetStore.open_upload`).
    ref: str

    @abc.abstractmethod
    def write(self, chunk: bytes) -> None:
        """Add a chunk of the file (blocking I/O: call it from a worker thread)."""

    @abc.abstractmethod
    def finish(self) -> None:
        """The whole file was received: make it readable."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Throw away what was received."""


class DatasetStore(abc.ABC):
    """Where the dataset files live: a local directory or an S3-compatible bucket.

    Every method may be called from any process (an API replica, a job's child, a worker): a store is rebuilt
    from the settings wherever it is needed (:func:`~previsio_sdk.server.stores.open_store`).
    """

    #: What ``/health`` calls the store (``local``, ``s3``).
    kind: str = ""

    # -- writing ---------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def write(
        self,
        reader: pa.RecordBatchReader,
        job_id: str,
        on_progress: Callable[[int], None] | None = None,
        progress_every: float = 0.5,
    ) -> WrittenFile:
        """Stream ``reader`` into job ``job_id``'s staging object; nothing is visible yet.

        On any error the staging object is removed.
        """

    @abc.abstractmethod
    def commit(self, written: WrittenFile, dataset_id: str) -> None:
        """Publish a written file as dataset ``dataset_id`` (the staging object goes away)."""

    @abc.abstractmethod
    def discard(self, job_id: str) -> None:
        """Remove job ``job_id``'s staging object if there is one (a stopped or failed job)."""

    # -- reading ---------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def open(self, dataset_id: str) -> AbstractContextManager[Any]:
        """The committed file of a dataset, for random access (``pq.ParquetFile`` reads only what it needs).

        Raises:
            FileNotFoundError: No such dataset file.
        """

    def reader(self, dataset_id: str, batch_rows: int) -> AbstractContextManager[pa.RecordBatchReader]:
        """A committed dataset as a stream of record batches."""
        from contextlib import contextmanager

        @contextmanager
        def opened() -> Iterator[pa.RecordBatchReader]:
            with self.open(dataset_id) as fh, pq.ParquetFile(fh) as pf:
                yield pa.RecordBatchReader.from_batches(
                    pf.schema_arrow, pf.iter_batches(batch_size=batch_rows)
                )

        return opened()

    def head(self, dataset_id: str, n: int) -> pa.Table:
        """First ``n`` rows, reading only the row groups needed (range reads on an object store)."""
        with self.open(dataset_id) as fh:
            pf = pq.ParquetFile(fh)
            parts = []
            got = 0
            for index in range(pf.num_row_groups):
                if got >= n:
                    break
                # One row group, on this thread: a platform whose address space is capped may not start more.
                part = pf.read_row_group(index, use_threads=False).slice(0, n - got)
                parts.append(part)
                got += part.num_rows
            if not parts:
                return pf.schema_arrow.empty_table()
            return pa.concat_tables(parts)

    @abc.abstractmethod
    def stream(self, dataset_id: str, chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
        """The bytes of a committed dataset file, for a download."""

    def local_path(self, dataset_id: str) -> Path | None:
        """Where the dataset's file is on this machine's disk; None for a store that is not local."""
        return None

    @abc.abstractmethod
    def delete(self, dataset_id: str) -> None:
        """Remove a dataset's file if present."""

    # -- uploads ---------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def new_upload(self, fmt: str) -> UploadSink:
        """Stage a new uploaded file of format ``fmt`` (``csv``, ``parquet``...)."""

    @abc.abstractmethod
    def open_upload(self, ref: str) -> AbstractContextManager[IO[bytes]]:
        """A staged upload, for reading (seekable)."""

    @abc.abstractmethod
    def remove_upload(self, ref: str) -> None:
        """Remove a staged upload."""

    # -- housekeeping ----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def clean(self, keep_datasets: set[str], keep_staging: set[str]) -> None:
        """Remove dataset files no committed dataset refers to, and staging objects and uploads whose name is
        not in ``keep_staging`` (the jobs and uploads some process still holds)."""

    @abc.abstractmethod
    def check(self) -> None:
        """Raise if the store cannot be reached (for ``/health``)."""
