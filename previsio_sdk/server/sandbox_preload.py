"""Imported once by the fork server of :mod:`.sandbox`: what isolated work needs, loaded before any fork.

Whatever is imported here is shared by every job's child (copy on write) instead of being imported again
by each: pyarrow, the drivers and the libraries they import lazily, the work functions and their arguments.
What a child imports itself, each child pays again: 40 remote calls at once, each importing the database
client and the modules of its function (anyio, pydantic-settings), took longer than a 3 s deadline on two
cores before any of them connected.
"""

import importlib

import pyarrow  # noqa: F401
import pyarrow.csv  # noqa: F401
import pyarrow.json  # noqa: F401
import pyarrow.parquet  # noqa: F401

from . import drivers, exports, jobs, remote, settings, stores  # noqa: F401  (connector types, work functions)

#: Libraries the drivers import on first use; each missing one is skipped (an optional driver).
LAZY_IMPORTS = (
    "fsspec.implementations.local",
    "fsspec.implementations.ftp",
    "fsspec.implementations.sftp",
    "fsspec.implementations.http",
    "s3fs",
    "psycopg",
    "adbc_driver_postgresql.dbapi",
    "connectorx",
    "pymysql",
)
for _name in LAZY_IMPORTS:
    try:
        importlib.import_module(_name)
    except Exception:  # noqa: BLE001, S112 - an optional library that is missing or broken: the child imports it
        continue

# Installed drivers are found by scanning every distribution's entry points (~0.4 s): once, here, rather
# than in every child.
drivers.base.load_entry_point_drivers()
