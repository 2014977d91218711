"""Settings of the platform, read from ``PREVISIO_*`` environment variables."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "PREVISIO_"
#: Settings whose whole value is a secret.
SECRET_SETTINGS = ("SECRET_KEY", "BOOTSTRAP_TOKEN", "STORE_SECRET_KEY")
_URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*:([^@\s]*)@")


def default_home() -> Path:
    """Return the default platform home: ``~/.previsio``."""
    return Path.home() / ".previsio"


class Settings(BaseSettings):
    """Every setting of the platform, with its ``PREVISIO_`` environment variable.

    Attributes:
        home: Directory holding the metadata database, the key file, the datasets and the logs.
        database_url: SQLAlchemy URL of the metadata store; an SQLite file under ``home`` when unset
            (``postgresql+psycopg://user@host/db`` for several platform processes sharing one store).
        db_auto_upgrade: Run the metadata store's missing schema migrations (Alembic) at start-up. Several
            replicas starting together upgrade one after the other (a PostgreSQL advisory lock); turn it off
            to upgrade only with ``previsio db upgrade`` (the platform then refuses to start on an old
            schema).
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
        store_url: Where dataset files are kept: unset for ``data_dir`` on this machine, or
            ``s3://bucket/prefix`` for an S3-compatible object store shared by several platform processes.
        store_endpoint_url: URL of the S3-compatible service (MinIO, Ceph...); unset for AWS.
        store_access_key: Access key id of the object store; unset for the environment's AWS credentials.
        store_secret_key: Secret access key of the object store.
        store_region: Region of the store's bucket.
        executor: Who runs the jobs: ``inprocess`` (threads of the API process, the default) or ``celery``
            (``previsio worker`` processes taking them from ``broker_url``).
        broker_url: The Celery broker of the ``celery`` executor: ``redis://host:6379/0`` or
            ``amqp://user:password@host:5672//``.
        lease_seconds: How long a process holds a job without renewing its lease (it renews every third of
            it); a job whose lease expired is given to another process, or failed with ``worker_lost`` after
            ``max_attempts``.
        max_attempts: Times a job is started before a lost process fails it instead of sending it again.
        connect_timeout: Seconds allowed to open a connection to a remote system.
        remote_call_timeout_seconds: Longest an API request may wait on a remote system (a connector test, a
            listing of databases, tables or files, the check of a new datasource), waiting for its turn
            included; over it the call is stopped and answered with the code ``timeout``.
        max_remote_calls: Remote calls of API requests running at once, each in a child process; more wait
            their turn (within their deadline) without holding anything else.
        remote_call_memory_bytes: Resident memory a remote call's child process may use before it is stopped
            (422 ``limit_exceeded``).
        api_threads: Threads running the API's database work (the requests' sessions); the metadata store's
            connection pool is sized from it: ``api_threads + job_workers + 10`` connections kept, up to
            ``api_threads`` more under load, so that a request never waits for a connection.
        local_roots: Directories of the platform's machine that ``local`` connectors may be rooted in (at or
            below one of them); empty (the default) disables local connectors. Set as a JSON list:
            ``PREVISIO_LOCAL_ROOTS='["/srv/data", "/mnt/exports"]'``.
        sqlite_roots: Directories of the platform's machine that SQLite connectors' files may be in (at or
            below one of them); empty (the default) refuses SQLite connectors. Set as a JSON list:
            ``PREVISIO_SQLITE_ROOTS='["/srv/sqlite"]'``. The embedded local platform (one user, who is its
            operator) allows any path when it is unset. The platform's own files are refused in every case.
        share_dataset_files: Tell callers where a dataset's Parquet file is on the platform's disk, so an SDK
            on the same machine reads it in place instead of downloading it. On for the embedded local
            platform (one user, one machine); off by default for ``previsio serve``.
        job_timeout_seconds: Longest a job's work (a snapshot, an upload, an export) may take, from its start
            to its end, whatever it waits on (a remote system that trickles its answer); over it the job's
            process is killed and the job fails with ``job_timeout``. 0 means no limit.
        job_memory_bytes: Most resident memory one job's work may use (its child process, see
            :mod:`.sandbox`); over it the job is stopped and fails with ``limit_exceeded``. 0 means no limit.
        max_json_depth: Deepest nesting of a JSON value a JSON-lines file may hold (objects and arrays); a
            deeper file fails with ``limit_exceeded`` before it is parsed.
        max_columns: Most columns a file (its header line, or the schema read) may have.
        max_decompressed_bytes: Most bytes a compressed file (gzip, a zip member) may decompress to.
        max_compression_ratio: Most a compressed file may expand (decompressed bytes over compressed bytes),
            checked once it has given more than 64 MiB; 0 means no ratio limit.
        deny_private_networks: Refuse connections of connectors to loopback, private, link-local, shared,
            multicast and reserved addresses (checked after DNS resolution, at every connection and redirect;
            see :mod:`previsio_sdk.server.netguard`). On for ``previsio serve``; off for the embedded local
            platform unless this variable is set.
        allowed_networks: Networks connectors may reach even so, as CIDRs in a JSON list:
            ``PREVISIO_ALLOWED_NETWORKS='["10.1.0.0/16", "fd00:1::/64"]'``.
        allowed_networks_only: Connectors reach the ``allowed_networks`` and nothing else, public addresses
            included (an egress allow-list); whatever ``deny_private_networks`` says.
        local_idle_timeout: Seconds without a request (and without a running job) after which the embedded
            local platform stops by itself; the SDK starts it again on the next call. 0 never stops it.
            Not used by ``previsio serve``.
    """

    model_config = SettingsConfigDict(env_prefix="PREVISIO_", extra="ignore")

    home: Path = Field(default_factory=default_home)
    database_url: str | None = None
    db_auto_upgrade: bool = True
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
    store_url: str | None = None
    store_endpoint_url: str | None = None
    store_access_key: str | None = None
    store_secret_key: SecretStr | None = None
    store_region: str | None = None
    executor: Literal["inprocess", "celery"] = "inprocess"
    broker_url: str | None = None
    lease_seconds: int = 30
    max_attempts: int = 3
    connect_timeout: int = 10
    remote_call_timeout_seconds: int = Field(default=60, ge=1)
    max_remote_calls: int = Field(default=40, ge=1)
    remote_call_memory_bytes: int = Field(default=1024**3, ge=64 * 1024**2)
    api_threads: int = Field(default=40, ge=2)
    local_roots: list[Path] = Field(default_factory=list)
    sqlite_roots: list[Path] = Field(default_factory=list)
    share_dataset_files: bool = False
    job_memory_bytes: int = 2 * 1024**3
    job_timeout_seconds: int = Field(default=24 * 3600, ge=0)
    max_json_depth: int = 64
    max_columns: int = 10_000
    max_decompressed_bytes: int = 20 * 1024**3
    max_compression_ratio: int = 200
    deny_private_networks: bool = True
    allowed_networks: list[str] = Field(default_factory=list)
    allowed_networks_only: bool = False

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        from .netguard import parse_networks

        return [str(n) for n in parse_networks(value)]

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
    def pool_size(self) -> int:
        """Connections the metadata store's pool keeps: one per API thread and job worker, and a margin."""
        return self.api_threads + self.job_workers + 10

    @property
    def metadata_url(self) -> str:
        """SQLAlchemy URL of the metadata store."""
        return self.database_url or f"sqlite:///{self.home / 'platform.db'}"


class SettingsError(ValueError):
    """The platform's settings are invalid; the message holds no secret that was set."""


def configured_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """The secrets the environment's ``PREVISIO_*`` variables hold: whole secret settings, URL passwords."""
    env = os.environ if environ is None else environ
    found = []
    for name, value in env.items():
        if not name.upper().startswith(ENV_PREFIX) or not value:
            continue
        if name.upper()[len(ENV_PREFIX) :] in SECRET_SETTINGS:
            found.append(value)
        found += [m.group(1) for m in _URL_PASSWORD.finditer(value) if m.group(1)]
    return found


def redact_configuration(
    text: str, extra: list[str] | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """``text`` without the secrets of the settings (every encoded form) nor any URL's password."""
    from .logs import MASK, secret_forms

    forms: set[str] = set()
    for secret in [*configured_secrets(environ), *(extra or [])]:
        forms |= secret_forms(secret)
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, MASK)
    return _URL_PASSWORD.sub(lambda m: m.group(0).replace(f":{m.group(1)}@", f":{MASK}@"), text)


def load_settings(**overrides: Any) -> Settings:
    """The settings of the environment (``PREVISIO_*``) with ``overrides``.

    Raises:
        SettingsError: A setting is invalid; the message names it and why, never the value given.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = [
            f"{ENV_PREFIX}{str(err['loc'][0]).upper() if err['loc'] else '?'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        ]
        raise SettingsError(redact_configuration("invalid settings: " + "; ".join(problems))) from None
    except ValueError as exc:  # pydantic-settings' own parse errors (a JSON list that is not one)
        raise SettingsError(redact_configuration(f"invalid settings: {exc}")) from None
