"""Settings of the platform, read from ``PREVISIO_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    """Return the default platform home: ``~/.previsio``."""
    return Path.home() / ".previsio"


class Settings(BaseSettings):
    """Every setting of the platform, with its ``PREVISIO_`` environment variable.

    Attributes:
        home: Directory holding the metadata database, the key file, the datasets and the logs.
        database_url: SQLAlchemy URL of the metadata store; an SQLite file under ``home`` when unset.
        secret_key: Fernet key encrypting connector secrets; several keys may be given comma-separated,
            newest first (the first encrypts, all decrypt). Read from ``home/secret.key`` (one key per line,
            newest first; see ``previsio rotate-key``) when unset.
        bootstrap_token: Admin token to create on first start instead of a random one.
        job_workers: Threads running snapshot jobs in the platform process.
        batch_rows: Rows per Arrow record batch read from a source.
        max_page_size: Largest ``page_size`` a list request may ask for.
        max_upload_bytes: Largest file accepted by an upload (413 ``payload_too_large`` over it).
        max_request_bytes: Largest body of any other request, JSON bodies included (413 over it).
        query_timeout_seconds: Longest a query may run on a remote SQL database, streaming its rows included
            (a snapshot, a datasource check, a listing); over it the job fails with ``query_timeout``.
            0 means no limit.
        idempotency_ttl_seconds: How long the answer to a creation request sent with an ``Idempotency-Key``
            is kept, so that the same request sent again gets it back instead of creating a second resource.
        data_dir: Directory of the dataset files and of files being written (``datasets/`` and ``tmp/``);
            the platform home when unset. Put it on a large volume, apart from the metadata store.
        connect_timeout: Seconds allowed to open a connection to a remote system.
        local_roots: Directories of the platform's machine that ``local`` connectors may be rooted in (at or
            below one of them); empty (the default) disables local connectors. Set as a JSON list:
            ``PREVISIO_LOCAL_ROOTS='["/srv/data", "/mnt/exports"]'``.
        share_dataset_files: Tell callers where a dataset's Parquet file is on the platform's disk, so an SDK
            on the same machine reads it in place instead of downloading it. On for the embedded local
            platform (one user, one machine); off by default for ``previsio serve``.
        local_idle_timeout: Seconds without a request (and without a running job) after which the embedded
            local platform stops by itself; the SDK starts it again on the next call. 0 never stops it.
            Not used by ``previsio serve``.
    """

    model_config = SettingsConfigDict(env_prefix="PREVISIO_", extra="ignore")

    home: Path = Field(default_factory=default_home)
    database_url: str | None = None
    secret_key: SecretStr | None = None
    bootstrap_token: SecretStr | None = None
    job_workers: int = 4
    batch_rows: int = 65536
    max_page_size: int = 1000
    max_upload_bytes: int = 10 * 1024**3
    max_request_bytes: int = 4 * 1024**2
    query_timeout_seconds: int = 3600
    idempotency_ttl_seconds: int = 24 * 3600
    data_dir: Path | None = None
    connect_timeout: int = 10
    local_roots: list[Path] = Field(default_factory=list)
    share_dataset_files: bool = False
    local_idle_timeout: float = Field(default=3600.0, ge=0)

    @property
    def datasets_dir(self) -> Path:
        """Directory of the committed Parquet datasets."""
        return (self.data_dir or self.home) / "datasets"

    @property
    def tmp_dir(self) -> Path:
        """Directory of files being written; emptied at start-up."""
        return (self.data_dir or self.home) / "tmp"

    @property
    def metadata_url(self) -> str:
        """SQLAlchemy URL of the metadata store."""
        return self.database_url or f"sqlite:///{self.home / 'platform.db'}"
