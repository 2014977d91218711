"""Imported once by the fork server of :mod:`.sandbox`: what isolated work needs, loaded before any fork.

What a child imports itself, each child pays again: 40 remote calls at once, each importing the database
client and the modules of its function (anyio, pydantic-settings), took longer than a 3 s deadline on two
cores before any of them connected.
"""

import fsspec  # noqa: F401  (the file connectors' layer)
import psycopg  # noqa: F401  (the database clients SQLAlchemy loads on a first connection)
import pyarrow  # noqa: F401
import pyarrow.csv  # noqa: F401
import pyarrow.json  # noqa: F401
import pyarrow.parquet  # noqa: F401
import pymysql  # noqa: F401

from . import (
    drivers,  # noqa: F401  (registers the connector types)
    remote,  # noqa: F401  (the remote calls of API requests)
    settings,  # noqa: F401  (and the settings they are given: pydantic)
)

# The drivers installed packages declare: found once here (a scan of every installed distribution's metadata)
# rather than by each child's first driver_class().
drivers.registered_types()
