"""Imported once by the fork server of :mod:`.sandbox`: what isolated work needs, loaded before any fork."""

import pyarrow  # noqa: F401
import pyarrow.csv  # noqa: F401
import pyarrow.json  # noqa: F401
import pyarrow.parquet  # noqa: F401

from . import drivers  # noqa: F401  (registers the connector types)
