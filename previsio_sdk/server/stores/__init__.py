"""Dataset stores: where the platform keeps dataset files, chosen by a setting.

``PREVISIO_STORE_URL`` unset: a directory of the platform's machine (:class:`LocalDatasetStore`);
``s3://bucket/prefix``: an S3-compatible object store (:class:`S3DatasetStore`), which several platform
processes on several machines share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import ROW_GROUP_ROWS, DatasetStore, UploadSink, WrittenFile, schema_to_json, write_parquet
from .local import LocalDatasetStore

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = [
    "ROW_GROUP_ROWS",
    "DatasetStore",
    "LocalDatasetStore",
    "UploadSink",
    "WrittenFile",
    "open_store",
    "schema_to_json",
    "write_parquet",
]


def open_store(settings: Settings) -> DatasetStore:
    """The dataset store the settings name."""
    if not settings.store_url:
        return LocalDatasetStore(settings.datasets_dir, settings.tmp_dir)
    from .s3 import S3DatasetStore, parse_store_url

    bucket, prefix = parse_store_url(settings.store_url)
    return S3DatasetStore(
        bucket,
        prefix,
        endpoint_url=settings.store_endpoint_url,
        access_key=settings.store_access_key,
        secret_key=settings.store_secret_key.get_secret_value() if settings.store_secret_key else None,
        region=settings.store_region,
    )
