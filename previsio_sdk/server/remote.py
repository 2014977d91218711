"""Remote calls made by API requests (a connector test, a listing, a datasource check), with a total deadline.

A remote system may answer slowly or never (a server that trickles one byte every few seconds). A thread
waiting on it cannot be stopped, and a request waiting on it while holding a metadata session once exhausted
the pool for everyone. So a route loads what the call needs in a short session, closes it, and calls
:func:`call_remote`: the call runs in a child process (:func:`~.sandbox.run_isolated`) that is killed at the
deadline, watched from a thread of a limiter of its own (``max_remote_calls``), so hung calls never take the
threads the other requests need. Waiting for a free slot counts against the same deadline.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import TYPE_CHECKING, Any, Literal

import anyio
from anyio import to_thread

from .drivers import ConnectorConfig, driver_class
from .errors import PlatformError
from .sandbox import LimitExceeded, run_isolated

if TYPE_CHECKING:
    from .core import Platform
    from .settings import Settings

log = logging.getLogger(__name__)

#: The driver operations an API request may call remotely.
RemoteOp = Literal["test", "list_databases", "list_tables", "list_files", "check_source", "estimate_rows"]


class RemoteTimeout(PlatformError):
    """The remote system did not answer within ``remote_call_timeout_seconds``: 422 ``timeout``."""

    def __init__(self, seconds: int) -> None:
        super().__init__(
            422,
            "timeout",
            f"The remote system did not answer within {seconds} s (setting "
            "PREVISIO_REMOTE_CALL_TIMEOUT_SECONDS); the call was stopped.",
            {"limit": "remote_call_timeout_seconds", "seconds": seconds},
        )


def _remote_op(
    config: ConnectorConfig,
    op: RemoteOp,
    args: tuple[Any, ...],
    *,
    connect_timeout: int,
    settings: Settings,
    report: Any,
) -> Any:
    """In the child process: build the connector's driver and run ``op`` on it."""
    driver = driver_class(config.type)(config, connect_timeout=connect_timeout, settings=settings)
    return getattr(driver, op)(*args)


async def call_remote(platform: Platform, config: ConnectorConfig, op: RemoteOp, *args: Any) -> Any:
    """Run the driver operation ``op(*args)`` of connector ``config`` in a child process, within the deadline.

    Call it with no metadata session open: it may wait up to ``remote_call_timeout_seconds``.

    Args:
        platform: The platform (its settings and its remote call slots).
        config: The connector, secrets decrypted (see :func:`.jobs.connector_config`).
        op: The driver method to call.
        *args: Its arguments (picklable).

    Returns:
        What the driver method returned.

    Raises:
        RemoteTimeout: No answer before the deadline (waiting for a slot included); the child was killed.
        LimitExceeded: The call used more than ``remote_call_memory_bytes``.
        PlatformError: The driver's own error (a failed connection, a missing table), or a crash of the child.
    """
    settings = platform.settings
    seconds = settings.remote_call_timeout_seconds
    # The child gets the operator's policy (local roots, query timeout), not the platform's own secrets.
    child_settings = settings.model_copy(update={"secret_key": None, "bootstrap_token": None})
    work = functools.partial(
        run_isolated,
        _remote_op,
        config,
        op,
        args,
        deadline=time.monotonic() + seconds,
        on_deadline=lambda: RemoteTimeout(seconds),
        memory_limit=settings.remote_call_memory_bytes,
        secrets=config.secrets.values(),
        connect_timeout=settings.connect_timeout,
        settings=child_settings,
    )
    # Cancelling this scope stops the wait for a slot; a running call (shielded) ends at the same deadline.
    with anyio.move_on_after(seconds):
        try:
            return await to_thread.run_sync(work, limiter=platform.remote_slots)
        except RemoteTimeout:
            log.info(
                "remote call %s of a %s connector stopped at its deadline (%d s)", op, config.type, seconds
            )
            raise
        except LimitExceeded:
            raise LimitExceeded(
                "The remote call used more memory than the platform allows "
                f"({settings.remote_call_memory_bytes} bytes, setting PREVISIO_REMOTE_CALL_MEMORY_BYTES) and "
                "was stopped.",
                {"limit": "memory", "max": settings.remote_call_memory_bytes},
            ) from None
    log.info("remote call %s of a %s connector found no free slot within %d s", op, config.type, seconds)
    raise RemoteTimeout(seconds)
