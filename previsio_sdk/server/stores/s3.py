"""The S3-compatible store: dataset files as objects of a bucket, for platforms spread over several machines.

Committed datasets are ``<prefix>/datasets/<dataset id>.parquet``. A job streams its file into
``<prefix>/staging/job-<job id>.parquet`` (a multipart upload: nothing exists under that key until the last
part is sent), and committing copies it under the dataset's key, then removes the staging object: a dataset
is visible only complete. Uploads are staged as ``<prefix>/uploads/upload-<id>.<format>`` by whichever API
replica received them, and read from there by the worker that runs the job. Readers use ranged GETs:
``head()`` fetches the footer and the first row group, not the file.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import IO, Any
from urllib.parse import urlsplit

import pyarrow as pa

from .base import DatasetStore, HashingWriter, UploadSink, WrittenFile, schema_to_json, write_parquet

#: Bytes per part of a multipart upload (S3 needs at least 5 MiB but for the last part).
PART_BYTES = 16 << 20
#: Bytes fetched per ranged GET when a dataset is read.
READ_BLOCK_BYTES = 4 << 20

_UPLOAD_REF = re.compile(r"^upload-[0-9a-f]{32}\.[a-z]{1,10}$")
_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")


def _id(value: str) -> str:
    if not _ID.match(value):
        raise ValueError(f"not an id: {value!r}")
    return value


def parse_store_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")``.

    Raises:
        ValueError: Not an ``s3://`` URL with a bucket, or one holding credentials.
    """
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.hostname:
        raise ValueError("PREVISIO_STORE_URL must look like s3://bucket/prefix")
    if parts.username or parts.password:
        raise ValueError(
            "PREVISIO_STORE_URL may not hold credentials: use PREVISIO_STORE_ACCESS_KEY/SECRET_KEY"
        )
    return parts.hostname, parts.path.strip("/")


class _S3Upload(UploadSink):
    def __init__(self, fh: Any, ref: str) -> None:
        self.fh = fh
        self.ref = ref

    def write(self, chunk: bytes) -> None:
        self.fh.write(chunk)

    def finish(self) -> None:
        self.fh.close()

    def abort(self) -> None:
        self.fh.discard()  # aborts the multipart upload: no object, no parts left
        self.fh.closed = True


class S3DatasetStore(DatasetStore):
    """Dataset files in an S3-compatible bucket (AWS S3, MinIO, Ceph, moto...).

    Args:
        bucket: The bucket (it must exist).
        prefix: Key prefix of everything the platform stores (may be empty).
        endpoint_url: The service's URL; None for AWS.
        access_key: Access key id; None for the environment's credentials.
        secret_key: Secret access key.
        region: The bucket's region.
    """

    kind = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self._access_key = access_key
        self._secret_key = secret_key
        self.region = region
        self._fs: Any = None
        self._fs_pid = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        where = f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket
        return f"S3DatasetStore('s3://{where}', endpoint={self.endpoint_url!r})"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_fs=None, _fs_pid=0, _lock=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def fs(self) -> Any:
        """The s3fs filesystem of this process (one per process: its event loop does not survive a fork)."""
        with self._lock:
            if self._fs is None or self._fs_pid != os.getpid():
                import s3fs

                client_kwargs: dict[str, Any] = {}
                if self.region:
                    client_kwargs["region_name"] = self.region
                self._fs = s3fs.S3FileSystem(
                    key=self._access_key,
                    secret=self._secret_key,
                    endpoint_url=self.endpoint_url,
                    client_kwargs=client_kwargs,
                    config_kwargs={
                        "connect_timeout": 10,
                        "read_timeout": 120,
                        "retries": {"max_attempts": 3},
                    },
                    skip_instance_cache=True,
                    use_listings_cache=False,
                )
                self._fs_pid = os.getpid()
            return self._fs

    # -- keys ------------------------------------------------------------------------------------------------
    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.bucket, self.prefix, *parts) if p)

    def dataset_key(self, dataset_id: str) -> str:
        """The object of a committed dataset."""
        return self._key("datasets", f"{_id(dataset_id)}.parquet")

    def staging_key(self, job_id: str) -> str:
        """The object job ``job_id`` writes its dataset to."""
        return self._key("staging", f"job-{_id(job_id)}.parquet")

    def _upload_key(self, ref: str) -> str:
        if not _UPLOAD_REF.match(ref):
            raise ValueError(f"not an upload reference: {ref!r}")
        return self._key("uploads", ref)

    def _rm(self, key: str) -> None:
        try:
            self.fs.rm_file(key)
        except FileNotFoundError:
            pass

    def _abort_uploads(self, key: str) -> None:
        """Abort the multipart uploads a killed writer left under ``key`` (invisible, stored, billed)."""
        bucket, _, name = key.partition("/")
        answer = self.fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=name)
        for upload in answer.get("Uploads", []):
            if upload.get("Key") == name:
                self.fs.call_s3(
                    "abort_multipart_upload", Bucket=bucket, Key=name, UploadId=upload["UploadId"]
                )

    # -- writing ---------------------------------------------------------------------------------------------
    def write(
        self,
        reader: pa.RecordBatchReader,
        job_id: str,
        on_progress: Callable[[int], None] | None = None,
        progress_every: float = 0.5,
    ) -> WrittenFile:
        fh = self.fs.open(self.staging_key(job_id), "wb", block_size=PART_BYTES)
        sink = HashingWriter(fh)
        try:
            rows = write_parquet(reader, sink, on_progress, progress_every)
            fh.close()  # the last part, then the object appears
        except BaseException:
            fh.discard()
            fh.closed = True
            raise
        return WrittenFile(job_id, rows, sink.size, sink.digest.hexdigest(), schema_to_json(reader.schema))

    def commit(self, written: WrittenFile, dataset_id: str) -> None:
        staging = self.staging_key(written.job_id)
        self.fs.copy(staging, self.dataset_key(dataset_id))
        self._rm(staging)

    def discard(self, job_id: str) -> None:
        key = self.staging_key(job_id)
        self._rm(key)
        self._abort_uploads(key)

    # -- reading ---------------------------------------------------------------------------------------------
    def open(self, dataset_id: str) -> AbstractContextManager[Any]:
        # Exact ranges: pyarrow asks for the footer, then whole column chunks; a cache would read past them.
        return self.fs.open(
            self.dataset_key(dataset_id), "rb", block_size=READ_BLOCK_BYTES, cache_type="none"
        )

    def stream(self, dataset_id: str, chunk_bytes: int = 1 << 20) -> Iterator[bytes]:
        with self.fs.open(self.dataset_key(dataset_id), "rb", block_size=max(chunk_bytes, 1 << 20)) as fh:
            yield from iter(lambda: fh.read(chunk_bytes), b"")

    def delete(self, dataset_id: str) -> None:
        self._rm(self.dataset_key(dataset_id))

    # -- uploads ---------------------------------------------------------------------------------------------
    def new_upload(self, fmt: str) -> UploadSink:
        ref = f"upload-{uuid.uuid4().hex}.{fmt}"
        return _S3Upload(self.fs.open(self._upload_key(ref), "wb", block_size=PART_BYTES), ref)

    @contextmanager
    def open_upload(self, ref: str) -> Iterator[IO[bytes]]:
        with self.fs.open(self._upload_key(ref), "rb", block_size=PART_BYTES) as fh:
            yield fh

    def remove_upload(self, ref: str) -> None:
        key = self._upload_key(ref)
        self._rm(key)
        self._abort_uploads(key)

    # -- housekeeping ----------------------------------------------------------------------------------------
    def _names(self, folder: str) -> list[str]:
        try:
            return [p.rsplit("/", 1)[-1] for p in self.fs.ls(self._key(folder), detail=False, refresh=True)]
        except FileNotFoundError:
            return []

    def clean(self, keep_datasets: set[str], keep_staging: set[str]) -> None:
        for name in self._names("staging"):
            job_id = name.removeprefix("job-").split(".", 1)[0]
            if job_id not in keep_staging:
                self._rm(self._key("staging", name))
        for name in self._names("uploads"):
            if name not in keep_staging:
                self._rm(self._key("uploads", name))
        for name in self._names("datasets"):
            if name.split(".", 1)[0] not in keep_datasets:
                self._rm(self._key("datasets", name))

    def check(self) -> None:
        self.fs.ls(self.bucket, detail=False, refresh=True)
