"""previsio_sdk: connect a project to your data systems and snapshot their data into datasets.

Example:
    >>> import previsio_sdk as pio  # doctest: +SKIP
    >>> project = pio.Project.new("churn")  # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import errors
from ._default import init_client
from .client import Client
from .connectors import Connector, ConnectorTestResult, FileConnector, FileInfo, SQLConnector
from .datasets import Column, Dataset, Job
from .datasources import DataSource
from .errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    PermissionDeniedError,
    PrevisioError,
    ServerError,
    ServerUnreachableError,
    ValidationError,
)
from .project import Project

__all__ = [
    "APIError",
    "AuthenticationError",
    "Client",
    "Column",
    "ConfigurationError",
    "ConflictError",
    "Connector",
    "ConnectorTestResult",
    "DataSource",
    "Dataset",
    "FileConnector",
    "FileInfo",
    "Job",
    "JobFailedError",
    "JobTimeoutError",
    "NotFoundError",
    "PermissionDeniedError",
    "PrevisioError",
    "Project",
    "SQLConnector",
    "ServerError",
    "ServerUnreachableError",
    "ValidationError",
    "__version__",
    "errors",
    "init_client",
]
