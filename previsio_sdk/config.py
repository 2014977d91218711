"""Where the SDK takes its platform URL and token from.

Order of precedence: arguments of :class:`~previsio_sdk.Client` > :func:`~previsio_sdk.init_client` >
environment (``PREVISIO_URL``, ``PREVISIO_TOKEN``) > the embedded local platform under ``PREVISIO_HOME``
(default ``~/.previsio``), started on demand.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_URL = "PREVISIO_URL"
ENV_TOKEN = "PREVISIO_TOKEN"
ENV_HOME = "PREVISIO_HOME"


def home_dir(home: str | os.PathLike[str] | None = None) -> Path:
    """The local platform's home: ``home`` if given, else ``PREVISIO_HOME``, else ``~/.previsio``."""
    if home is not None:
        return Path(home).expanduser().resolve()
    env = os.environ.get(ENV_HOME)
    return Path(env).expanduser().resolve() if env else Path.home() / ".previsio"


def env_url() -> str | None:
    """``PREVISIO_URL`` if set and not empty."""
    return os.environ.get(ENV_URL) or None


def env_token() -> str | None:
    """``PREVISIO_TOKEN`` if set and not empty."""
    return os.environ.get(ENV_TOKEN) or None
