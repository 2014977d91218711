"""Connector drivers, one module per connector type, registered by type name.

Importing this package registers the in-tree drivers; :func:`driver_class` also loads the drivers that
installed packages declare in the ``previsio_sdk.drivers`` entry-point group.
"""

from . import ftp, gcs, http, local, s3, sftp, sql  # noqa: F401  (each registers its connector type)
from .base import (
    FILE_WRITE_MODES,
    TABLE_WRITE_MODES,
    AuthenticationFailed,
    ConnectionFailed,
    ConnectorConfig,
    DestinationExists,
    DestinationSpec,
    Driver,
    DriverError,
    IncompatibleSchema,
    InvalidSource,
    ReadFailed,
    SourceNotFound,
    SourceSpec,
    TestOutcome,
    Unsupported,
    WriteFailed,
    WriteMode,
    WriteResult,
    driver_class,
    register,
    registered_types,
)

__all__ = [
    "FILE_WRITE_MODES",
    "TABLE_WRITE_MODES",
    "AuthenticationFailed",
    "ConnectionFailed",
    "ConnectorConfig",
    "DestinationExists",
    "DestinationSpec",
    "Driver",
    "DriverError",
    "IncompatibleSchema",
    "InvalidSource",
    "ReadFailed",
    "SourceNotFound",
    "SourceSpec",
    "TestOutcome",
    "Unsupported",
    "WriteFailed",
    "WriteMode",
    "WriteResult",
    "driver_class",
    "register",
    "registered_types",
]
