"""previsio_sdk: connect a project to your data systems and snapshot their data into datasets.

Example:
    >>> import previsio_sdk as pio  # doctest: +SKIP
    >>> project = pio.Project.new("churn")  # doctest: +SKIP
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import client, config, errors, utils
from ._default import init_client
from .client import Client, verbose
from .connection_map import ConnectorMap
from .connectors import Connector, ConnectorTestResult, FileConnector, FileInfo, GCloud, SQLConnector
from .datasets import Column, Dataset, Job
from .datasources import DataSource
from .errors import (
    APIError,
    ArchiveError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    ConnectorNotFoundError,
    JobCancelledError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    PermissionDeniedError,
    PrevisioError,
    PrevisionException,
    ServerError,
    ServerUnreachableError,
    ValidationError,
)
from .exporters import Export, Exporter, ExporterWriteMode
from .project import Project, ProjectColor
from .users import Member, Token, User

__all__ = [
    "APIError",
    "ArchiveError",
    "AuthenticationError",
    "Client",
    "Column",
    "ConfigurationError",
    "ConflictError",
    "Connector",
    "ConnectorMap",
    "ConnectorNotFoundError",
    "ConnectorTestResult",
    "DataSource",
    "Dataset",
    "Export",
    "Exporter",
    "ExporterWriteMode",
    "FileConnector",
    "FileInfo",
    "GCloud",
    "Job",
    "JobCancelledError",
    "JobFailedError",
    "JobTimeoutError",
    "Member",
    "NotFoundError",
    "PermissionDeniedError",
    "PrevisioError",
    "PrevisionException",
    "Project",
    "ProjectColor",
    "SQLConnector",
    "ServerError",
    "ServerUnreachableError",
    "Token",
    "User",
    "ValidationError",
    "__version__",
    "client",
    "config",
    "errors",
    "init_client",
    "utils",
    "verbose",
]

# In IPython/Jupyter, show the SDK's errors with the user's own frames only (see _notebook.py).
from ._notebook import install as _install_notebook_errors  # noqa: E402

_install_notebook_errors()
