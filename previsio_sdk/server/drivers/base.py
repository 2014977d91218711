"""The driver contract and the registry of connector types.

A driver knows one kind of remote system. It is registered under its connector type name with
:func:`register` (in-tree drivers) or through the ``previsio_sdk.drivers`` entry-point group (installed
packages). Nothing outside ``drivers/`` knows what a particular system is.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote, quote_plus

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


class Unsupported(DriverError):
    """The driver does not offer this operation."""

    code_name = "unsupported_operation"


#: Secrets shorter than this are not searched for inside messages: replacing every "x" of a message would
#: destroy it while protecting nothing (a one-letter password is guessed faster than read).
MIN_REDACTED_LENGTH = 4


def redact(text: str, secrets: dict[str, Any]) -> str:
    """Return ``text`` with every secret value (raw or URL-quoted) replaced by ``***``."""
    for value in secrets.values():
        if not value or not isinstance(value, str):
            continue
        if text == value:
            return "***"
        for form in sorted({value, quote(value, safe=""), quote_plus(value)}, key=len, reverse=True):
            if len(form) >= MIN_REDACTED_LENGTH:
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

    @abc.abstractmethod
    @contextmanager
    def open_reader(self, spec: SourceSpec, batch_rows: int) -> Iterator[pa.RecordBatchReader]:
        """Open the source as a stream of Arrow record batches of about ``batch_rows`` rows.

        Raises:
            DriverError: The source cannot be reached or read.
        """

    def redact(self, text: str) -> str:
        """Remove this connector's secrets from ``text``."""
        return redact(text, self.config.secrets)


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
