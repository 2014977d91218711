"""The driver contract and the registry of connector types.

A driver knows one kind of remote system. It is registered under its connector type name with
:func:`register` (in-tree drivers) or through the ``previsio_sdk.drivers`` entry-point group (installed
packages). Nothing outside ``drivers/`` knows what a particular system is.
"""

from __future__ import annotations

import abc
import enum
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from typing import Any, ClassVar, TypeVar

import pyarrow as pa

from ..errors import Invalid, PlatformError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "previsio_sdk.drivers"


@dataclass(frozen=True)
class ConnectorConfig:
    """What a driver is given to reach a system. ``secrets`` never appears in a repr."""

    type: str
    driver: str | None = None
    host: str | None = None
    port: int | None = None
    username: str | None = None
    database: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, Any] = field(default_factory=dict, repr=False)

    def evolve(self, **changes: Any) -> ConnectorConfig:
        """Return a copy with ``changes`` applied."""
        return replace(self, **changes)


@dataclass(frozen=True)
class SourceSpec:
    """The resource a datasource points at, as stored: only the fields its driver uses are set."""

    database: str | None = None
    table: str | None = None
    request: str | None = None
    path: str | None = None
    bucket: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


class WriteMode(str, enum.Enum):
    """How an export treats what is already at its destination."""

    #: Files: fail when the file exists.
    safe = "safe"
    #: Files: overwrite the file. Tables: replace the table by one made from the dataset.
    replace = "replace"
    #: Files: write a new file whose name carries the export time (``name_20240131T120000Z.csv``).
    timestamp = "timestamp"
    #: Tables: add the rows to the table.
    append = "append"
    #: Tables: replace the rows whose key columns match, add the others.
    upsert = "upsert"


#: The write modes of a file destination.
FILE_WRITE_MODES: tuple[WriteMode, ...] = (WriteMode.safe, WriteMode.replace, WriteMode.timestamp)
#: The write modes of a table destination.
TABLE_WRITE_MODES: tuple[WriteMode, ...] = (WriteMode.replace, WriteMode.append, WriteMode.upsert)


@dataclass(frozen=True)
class DestinationSpec:
    """Where an exporter writes, as stored: only the fields its driver uses are set."""

    database: str | None = None
    table: str | None = None
    path: str | None = None
    bucket: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WriteResult:
    """What :meth:`Driver.write` did: the rows written and where (a table name, a file path)."""

    rows: int
    destination: str


@dataclass(frozen=True)
class TestOutcome:
    """Result of :meth:`Driver.test`: ``ok`` and, on failure, a code and a redacted reason."""

    ok: bool
    code: str | None = None
    message: str = ""


class DriverError(PlatformError):
    """A failure reaching or reading a remote system; the message is already redacted."""

    code_name: ClassVar[str] = "driver_error"
    status_code: ClassVar[int] = 422

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(self.status_code, self.code_name, message, details)


class ConnectionFailed(DriverError):
    """The system could not be reached (refused, unknown host, timeout)."""

    code_name = "connection_failed"


class AuthenticationFailed(DriverError):
    """The system refused the credentials."""

    code_name = "authentication_failed"


class SourceNotFound(DriverError):
    """The database, table or file named does not exist."""

    code_name = "source_not_found"


class InvalidSource(DriverError):
    """The datasource definition cannot be read (bad query, write statement, unreadable format)."""

    code_name = "invalid_source"


class ReadFailed(DriverError):
    """Reading started but failed part way."""

    code_name = "read_failed"


class QueryTimeout(DriverError):
    """A query ran longer than the platform allows (``query_timeout_seconds``) and was stopped."""

    code_name = "query_timeout"


class Unsupported(DriverError):
    """The driver does not offer this operation."""

    code_name = "unsupported_operation"


class DestinationExists(DriverError):
    """The destination exists and the write mode does not overwrite it (``safe``)."""

    code_name = "destination_exists"
    status_code = 409


class IncompatibleSchema(DriverError):
    """The dataset's columns do not fit the existing table (checked before anything is written)."""

    code_name = "incompatible_schema"


class WriteFailed(DriverError):
    """Writing started but failed part way; the destination was left as it was."""

    code_name = "write_failed"


def refuse_credentials_in_host(host: str | None, message: str) -> None:
    """Refuse a host or URL that holds ``user:password@``, before any message quotes it back.

    Raises:
        Invalid: ``host`` holds credentials; ``message`` (which must not quote it) says where to give them.
    """
    authority = (host or "").strip().split("://", 1)[-1]
    for end in "/?#":
        authority = authority.split(end, 1)[0]
    if "@" in authority:
        raise Invalid(message, {"field": "host"})


#: Secrets shorter than this are not searched for inside messages: replacing every "x" of a message would
#: destroy it while protecting nothing (a one-letter password is guessed faster than read).
MIN_REDACTED_LENGTH = 4


def redact(text: str, secrets: dict[str, Any], username: str | None = None) -> str:
    """Return ``text`` with every secret value replaced by ``***``, in every encoded form a library may echo.

    The forms are those of :func:`~previsio_sdk.server.logs.secret_forms`: raw, percent-encoded (any hex
    case, ``+`` or ``%20`` for spaces), JSON-escaped, conninfo-quoted, and base64 (with ``username``, of
    ``username:secret``, as in an HTTP basic ``Authorization`` header).
    """
    from ..logs import secret_forms

    forms: set[str] = set()
    for value in secrets.values():
        if not value or not isinstance(value, str):
            continue
        if text == value:
            return "***"
        if len(value) >= MIN_REDACTED_LENGTH:
            forms |= secret_forms(value, username)
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "***")
    return text


class Driver(abc.ABC):
    """Base class of every connector type.

    Subclasses set ``type_name`` (by registering) and implement the operations their system offers; the
    default implementations raise :class:`Unsupported`.

    Args:
        config: Address and credentials of the remote system.
        connect_timeout: Seconds allowed to open a connection.
        settings: The platform's settings (the operator's policy, such as the allowed local roots); None
            outside a platform.
    """

    type_name: ClassVar[str] = ""

    def __init__(self, config: ConnectorConfig, *, connect_timeout: int = 10, settings: Any = None) -> None:
        self.config = config
        self.connect_timeout = connect_timeout
        self.settings = settings

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={self.config.host!r}, port={self.config.port!r})"

    # -- validation ------------------------------------------------------------------------------------------
    @classmethod
    def normalize_config(cls, config: ConnectorConfig) -> ConnectorConfig:
        """Check and normalise a connector's settings before they are stored.

        Raises:
            Invalid: A setting is missing or wrong.
        """
        return config

    def check_config(self) -> None:
        """Check a normalised connector against the platform's policy, before it is stored (no remote call).

        Raises:
            Invalid: The platform does not allow this connector.
        """
        return None

    # -- network -------------------------------------------------------------------------------------------
    @classmethod
    def destination(cls, config: ConnectorConfig) -> tuple[Any, ...]:
        """Where this connector's secrets are sent: a connector whose destination changes loses them.

        The host, the port and the dialect; drivers add what else decides who receives the secrets (the
        pinned host key of SFTP, TLS of FTP).
        """
        return (config.driver, (config.host or "").lower(), config.port)

    def network_address(self) -> tuple[str, int] | None:
        """The host and port this connector connects to; None for one that reaches no network."""
        if not self.config.host:
            return None
        return self.config.host, self.config.port or 0

    def check_network(self) -> None:
        """Refuse, before the connector is stored, a host that is or resolves to a denied address.

        A name that does not resolve yet is accepted: :meth:`connect_address` checks again at each connection.

        Raises:
            AddressNotAllowed: The platform's network policy denies the host (see :mod:`..netguard`).
        """
        from ..netguard import check_host_early

        target = self.network_address()
        if target is not None:
            check_host_early(target[0], target[1], self.settings)

    def settle_config(self) -> ConnectorConfig:
        """The connector's settings completed by what only the remote system can tell (an SQL server's
        protocol on an unusual port), after :meth:`check_network`; the settings as they are by default.

        Raises:
            DriverError: The remote system cannot tell (the message says which setting to give).
        """
        return self.config

    def connect_address(self, host: str, port: int) -> str:
        """The address to open a connection to for ``host``: resolved once and checked against the policy.

        Connecting to this address rather than to the name leaves no window for the name to resolve
        elsewhere between the check and the connection.

        Raises:
            AddressNotAllowed: ``host`` is or resolves to a denied address.
            ConnectionFailed: The name does not resolve.
        """
        from ..netguard import connect_address

        return connect_address(host, port, self.settings)

    def normalize_source(self, spec: SourceSpec) -> SourceSpec:
        """Check and normalise a datasource definition before it is stored (no remote call).

        Raises:
            Invalid: The definition does not fit this connector type.
        """
        return spec

    def check_source(self, spec: SourceSpec) -> None:
        """Check with the remote system that the source exists and can be read.

        Raises:
            DriverError: It cannot be reached or read.
        """
        with self.open_reader(spec, batch_rows=1) as reader:
            reader.schema  # noqa: B018 - opening is the check

    # -- operations ------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def test(self) -> TestOutcome:
        """Open a connection and report whether it works; never raises for a remote failure."""

    def list_databases(self) -> list[str]:
        """List the databases the credentials can see."""
        raise Unsupported(f"{self.type_name} connectors have no databases to list.")

    def list_tables(self, database: str | None) -> list[str]:
        """List the tables of ``database``."""
        raise Unsupported(f"{self.type_name} connectors have no tables to list.")

    def list_files(self, path: str = "", bucket: str | None = None) -> list[dict[str, Any]]:
        """List the files under ``path``."""
        raise Unsupported(f"{self.type_name} connectors have no files to list.")

    def estimate_rows(self, spec: SourceSpec) -> int | None:
        """How many rows the source holds, when the system can tell cheaply (catalog statistics); else None.

        An estimate for a progress bar only: never exact, never a full scan, never an error.
        """
        return None

    @abc.abstractmethod
    @contextmanager
    def open_reader(self, spec: SourceSpec, batch_rows: int) -> Iterator[pa.RecordBatchReader]:
        """Open the source as a stream of Arrow record batches of about ``batch_rows`` rows.

        Raises:
            DriverError: The source cannot be reached or read.
        """

    # -- writing -------------------------------------------------------------------------------------------
    #: The write modes this driver accepts; empty for a driver that cannot write.
    write_modes: ClassVar[tuple[WriteMode, ...]] = ()

    def normalize_destination(
        self, dest: DestinationSpec, mode: WriteMode, key: Sequence[str] | None
    ) -> DestinationSpec:
        """Check and normalise an exporter's destination before it is stored (no remote call).

        The base implementation checks the write mode against :attr:`write_modes` and the key against the
        mode (``upsert`` needs one, the others take none); drivers extend it to check the destination itself.

        Raises:
            Unsupported: This connector type cannot be written to.
            Invalid: The mode or the key does not fit this destination.
        """
        if not self.write_modes:
            raise Unsupported(f"{self.type_name} connectors cannot be exported to.")
        if mode not in self.write_modes:
            allowed = ", ".join(m.value for m in self.write_modes)
            raise Invalid(
                f"The write mode {mode.value!r} does not apply to {self.type_name} connectors; "
                f"use one of {allowed}.",
                {"field": "write_mode", "allowed": [m.value for m in self.write_modes]},
            )
        check_key(mode, key)
        return dest

    def write(
        self,
        dest: DestinationSpec,
        reader: pa.RecordBatchReader,
        mode: WriteMode,
        key: Sequence[str] | None,
        *,
        job_id: str | None = None,
    ) -> WriteResult:
        """Write a stream of record batches to a destination, all or nothing where the system allows.

        A write that fails leaves the destination as it was: a table write runs in one transaction (or
        fills a staging table swapped in at the end), a file is written under a temporary name then renamed.

        Args:
            dest: The destination, as :meth:`normalize_destination` returned it.
            reader: The rows to write; read once, batch after batch.
            mode: What to do with what the destination already holds.
            key: The key columns of an ``upsert``.
            job_id: The export's id: what the write leaves while it runs (staging tables, temporary files)
                is named after it, so that :meth:`discard_staging` finds it after an interruption.

        Returns:
            The rows written and where they went.

        Raises:
            DestinationExists: The destination exists and the mode is ``safe``.
            IncompatibleSchema: The rows do not fit the existing table (nothing was written).
            DriverError: The destination cannot be reached or written.
        """
        raise Unsupported(f"{self.type_name} connectors cannot be exported to.")

    def discard_staging(self, dest: DestinationSpec, job_id: str) -> None:
        """Remove what an interrupted write of export ``job_id`` may have left at ``dest`` (staging tables,
        temporary files).

        Called when an export was cancelled or its process died, so that its own clean-up never ran.
        Removing nothing is not an error. The base implementation has nothing to do.

        Raises:
            DriverError: The destination cannot be reached.
        """
        return None

    def redact(self, text: str) -> str:
        """Remove this connector's secrets from ``text``."""
        return redact(text, self.config.secrets, self.config.username)


class StreamTap:
    """Watches a stream while a database client or a file writer consumes it.

    A writer that fails cannot always tell whether the destination or the stream (the dataset being read)
    was at fault; the tap keeps the stream's own exception, so that it can be raised as it is, and counts the
    rows that went through.
    """

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.rows = 0

    def wrap(
        self,
        reader: pa.RecordBatchReader,
        schema: pa.Schema | None = None,
        transform: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None,
    ) -> pa.RecordBatchReader:
        """``reader``'s non-empty batches (passed through ``transform``, of ``schema``), watched."""

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                for batch in reader:
                    if batch.num_rows:
                        out = transform(batch) if transform is not None else batch
                        self.rows += out.num_rows
                        yield out
            except GeneratorExit:  # the consumer stopped reading (it failed): not the stream's error
                raise
            except BaseException as exc:
                self.error = exc
                raise

        return pa.RecordBatchReader.from_batches(schema or reader.schema, batches())


#: Most key columns an upsert may name.
MAX_KEY_COLUMNS = 32


def check_key(mode: WriteMode, key: Sequence[str] | None) -> list[str] | None:
    """Check the key columns against the write mode: required by ``upsert``, refused by the others.

    Returns:
        The key columns, as a list (None when the mode takes none).

    Raises:
        Invalid: A key is missing, given to another mode, empty, repeated or too long.
    """
    if mode is not WriteMode.upsert:
        if key:
            raise Invalid(
                f"key= applies to the upsert write mode only, not to {mode.value!r}.", {"field": "key"}
            )
        return None
    names = list(key or [])
    if not names:
        raise Invalid("The upsert write mode needs key= the columns that identify a row.", {"field": "key"})
    if len(names) > MAX_KEY_COLUMNS:
        raise Invalid(f"A key has at most {MAX_KEY_COLUMNS} columns.", {"field": "key"})
    if any(not isinstance(n, str) or not n or "\x00" in n for n in names):
        raise Invalid("Key columns are non-empty column names.", {"field": "key"})
    if len(set(names)) != len(names):
        raise Invalid("A key names each column once.", {"field": "key"})
    return names


D = TypeVar("D", bound=type[Driver])

_REGISTRY: dict[str, type[Driver]] = {}
_entry_points_loaded = False


def register(type_name: str) -> Callable[[D], D]:
    """Class decorator registering a driver under a connector type name.

    Example:
        >>> @register("sqlite_files")  # doctest: +SKIP
        ... class SQLiteFilesDriver(Driver): ...
    """

    def decorator(cls: D) -> D:
        if not issubclass(cls, Driver):
            raise TypeError(f"{cls!r} is not a Driver subclass")
        cls.type_name = type_name
        _REGISTRY[type_name] = cls
        return cls

    return decorator


def load_entry_point_drivers() -> None:
    """Import the drivers that installed packages declare in the ``previsio_sdk.drivers`` group."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception:  # a broken plug-in must not stop the platform
            log.exception("could not load driver entry point %s", ep.name)
            continue
        if isinstance(cls, type) and issubclass(cls, Driver) and ep.name not in _REGISTRY:
            register(ep.name)(cls)


def driver_class(type_name: str) -> type[Driver]:
    """Return the driver registered under ``type_name``.

    Raises:
        Invalid: No driver has that name (the message lists the known ones).
    """
    load_entry_point_drivers()
    try:
        return _REGISTRY[type_name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise Invalid(f"Unknown connector type {type_name!r}; known types: {known}.") from None


def registered_types() -> list[str]:
    """Names of every registered connector type."""
    load_entry_point_drivers()
    return sorted(_REGISTRY)
