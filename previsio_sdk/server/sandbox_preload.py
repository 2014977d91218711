"""Imported once by the fork server of :mod:`.sandbox`: what isolated work needs, loaded before any fork."""

import fsspec  # noqa: F401  (the file connectors' layer)

# The database clients SQLAlchemy loads on a first connection: imported here once, not in every child (40
# children importing psycopg at once on two cores took longer than a 3 s deadline before any connected).
import psycopg  # noqa: F401
import pyarrow  # noqa: F401
import pyarrow.csv  # noqa: F401
import pyarrow.json  # noqa: F401
import pyarrow.parquet  # noqa: F401
import pymysql  # noqa: F401

from . import drivers  # noqa: F401  (registers the connector types)
