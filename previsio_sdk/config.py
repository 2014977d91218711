"""Where the SDK takes its platform URL and token from, and the settings Prevision scripts set.

Order of precedence: arguments of :class:`~previsio_sdk.Client` > :func:`~previsio_sdk.init_client` >
environment > the embedded local platform under ``PREVISIO_HOME`` (default ``~/.previsio``), started on
demand. The environment is ``PREVISIO_URL`` and ``PREVISIO_TOKEN``, or Prevision.io's own
``PREVISION_URL`` and ``PREVISION_MASTER_TOKEN``: a script written for previsionio reaches the platform its
variables name. A token set in the environment without any URL is an error, never a silent switch to the
local platform.

The module-level settings below are read at each use, as ``previsionio.config``'s are::

    import previsio_sdk as pio
    pio.config.default_timeout = 3600     # seconds a job (snapshot, upload, export) is waited for
    pio.config.request_retries = 6        # retries of a request the platform could not answer
    pio.config.request_retry_time = 10    # longest pause between two tries, in seconds
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_URL = "PREVISIO_URL"
ENV_TOKEN = "PREVISIO_TOKEN"
ENV_HOME = "PREVISIO_HOME"
#: Prevision.io's variables, honoured too (ours win when both are set).
ENV_PREVISION_URL = "PREVISION_URL"
ENV_PREVISION_TOKEN = "PREVISION_MASTER_TOKEN"

#: Seconds a job (snapshot, upload, export) is waited for when no ``timeout`` is given; None waits as long
#: as the job takes (previsionio waits 14400 s).
default_timeout: float | None = None
#: How many times a request that is safe to repeat is retried after a connection error or a 502/503/504.
request_retries: int = 3
#: Longest pause, in seconds, between two tries of a request (the pause grows from 0.2 s up to this).
request_retry_time: float = 2.0


def home_dir(home: str | os.PathLike[str] | None = None) -> Path:
    """The local platform's home: ``home`` if given, else ``PREVISIO_HOME``, else ``~/.previsio``."""
    if home is not None:
        return Path(home).expanduser().resolve()
    env = os.environ.get(ENV_HOME)
    return Path(env).expanduser().resolve() if env else Path.home() / ".previsio"


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


def env_url() -> str | None:
    """``PREVISIO_URL``, else ``PREVISION_URL``, if set and not empty."""
    return _env(ENV_URL) or _env(ENV_PREVISION_URL)


def env_token() -> str | None:
    """The token that goes with :func:`env_url`, if set and not empty.

    ``PREVISIO_TOKEN`` goes with ``PREVISIO_URL`` and ``PREVISION_MASTER_TOKEN`` with ``PREVISION_URL``; one
    family's token is used for the other's URL only when that family sets no URL of its own (so a token is
    never sent to a URL it was not set up for).
    """
    ours, theirs = _env(ENV_TOKEN), _env(ENV_PREVISION_TOKEN)
    if _env(ENV_URL):
        same = _env(ENV_PREVISION_URL) in (None, _env(ENV_URL))
        return ours or (theirs if same else None)
    if _env(ENV_PREVISION_URL):
        return theirs or ours
    return ours or theirs


def env_urls_disagree() -> bool:
    """Whether ``PREVISIO_URL`` and ``PREVISION_URL`` are both set to different URLs (ours is used)."""
    ours, theirs = _env(ENV_URL), _env(ENV_PREVISION_URL)
    return bool(ours and theirs and ours.rstrip("/") != theirs.rstrip("/"))


def orphan_token_variable() -> str | None:
    """The name of a token variable set while no URL variable is, if any (``PREVISION_MASTER_TOKEN``).

    A previsionio user who sets only the token expects the remote platform; starting the local one instead
    would hide the mistake.
    """
    if env_url() is None and _env(ENV_PREVISION_TOKEN):
        return ENV_PREVISION_TOKEN
    return None
