"""The local store: one Parquet file per dataset in a directory of the platform's machine.

Committed files are ``<datasets_dir>/<dataset id>.parquet``; a job writes ``<tmp_dir>/job-<job
id>.parquet.part`` and an upload is staged as ``<tmp_dir>/upload-<id>.<format>``, on the same filesystem so
that publishing is an atomic rename.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import IO, Any

import pyarrow as pa

from .base import DatasetStore, UploadSink, WrittenFile, schema_to_json, write_parquet

_UPLOAD_REF = re.compile(r"^upload-[0-9a-f]{32}\.[a-z]{1,10}$")
_JOB_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


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


def _job_id(job_id: str) -> str:
    if not _JOB_ID.match(job_id):
        raise ValueError(f"not a job id: {job_id!r}")
    return job_id


class _LocalUpload(UploadSink):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.ref = path.name
        self._fh: IO[bytes] | None = open(path, "xb")  # noqa: SIM115 - closed by finish() or abort()

    def write(self, chunk: bytes) -> None:
        assert self._fh is not None
        self._fh.write(chunk)

    def finish(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def abort(self) -> None:
        self.finish()
        self.path.unlink(missing_ok=True)


class LocalDatasetStore(DatasetStore):
    """Dataset files in a directory.

    Args:
        root: Directory of committed datasets.
        tmp: Directory of staging files, on the same filesystem so that ``os.replace`` is atomic.
    """

    kind = "local"

    def __init__(self, root: Path, tmp: Path) -> None:
        self.root = root
        self.tmp = tmp
        root.mkdir(parents=True, exist_ok=True)
        tmp.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalDatasetStore({str(self.root)!r})"

    def path(self, dataset_id: str) -> Path:
        """Path of a committed dataset's file."""
        return self.root / f"{_job_id(dataset_id)}.parquet"

    def staging_path(self, job_id: str) -> Path:
        """The file job ``job_id`` writes its dataset to."""
        return self.tmp / f"job-{_job_id(job_id)}.parquet.part"

    def write(
        self,
        reader: pa.RecordBatchReader,
        job_id: str,
        on_progress: Callable[[int], None] | None = None,
        progress_every: float = 0.5,
    ) -> WrittenFile:
        """Stream ``reader`` into the job's staging file, fsynced before returning (removed on any error)."""
        tmp = self.staging_path(job_id)
        try:
            rows = write_parquet(reader, str(tmp), on_progress, progress_every)
            digest = _hash_and_sync(tmp)
            return WrittenFile(
                job_id, rows, tmp.stat().st_size, digest.hexdigest(), schema_to_json(reader.schema)
            )
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def commit(self, written: WrittenFile, dataset_id: str) -> None:
        os.replace(self.staging_path(written.job_id), self.path(dataset_id))

    def discard(self, job_id: str) -> None:
        self.staging_path(job_id).unlink(missing_ok=True)

    def open(self, dataset_id: str) -> AbstractContextManager[Any]:
        return pa.memory_map(str(self.path(dataset_id)), "r")

    def stream(self, dataset_id: str, chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
        with open(self.path(dataset_id), "rb") as fh:
            yield from iter(lambda: fh.read(chunk_bytes), b"")

    def local_path(self, dataset_id: str) -> Path | None:
        return self.path(dataset_id)

    def delete(self, dataset_id: str) -> None:
        self.path(dataset_id).unlink(missing_ok=True)

    def new_upload(self, fmt: str) -> UploadSink:
        return _LocalUpload(self.tmp / f"upload-{uuid.uuid4().hex}.{fmt}")

    @contextmanager
    def open_upload(self, ref: str) -> Iterator[IO[bytes]]:
        if not _UPLOAD_REF.match(ref):
            raise ValueError(f"not an upload reference: {ref!r}")
        with open(self.tmp / ref, "rb") as fh:
            yield fh

    def remove_upload(self, ref: str) -> None:
        if _UPLOAD_REF.match(ref):
            (self.tmp / ref).unlink(missing_ok=True)

    def clean(self, keep_datasets: set[str], keep_staging: set[str]) -> None:
        for path in self.tmp.iterdir():
            name = path.name
            held = name if name.startswith("upload-") else name.removeprefix("job-").split(".", 1)[0]
            if held in keep_staging:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)  # an upload directory of version 0.1
            else:
                path.unlink(missing_ok=True)
        for path in self.root.glob("*.parquet"):
            if path.stem not in keep_datasets:
                path.unlink(missing_ok=True)

    def check(self) -> None:
        if not os.access(self.root, os.W_OK) or not os.access(self.tmp, os.W_OK):
            raise OSError(f"the dataset directory {self.root} is not writable")
