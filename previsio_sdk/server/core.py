"""The platform object: settings, metadata store, vault, dataset store and job runner, wired once."""

from __future__ import annotations

import logging
from typing import Any

from anyio import CapacityLimiter, to_thread

from .auth import bootstrap_admin
from .db import Database
from .exports import recover_exports
from .jobs import JobRunner
from .middleware import forget_pending_requests
from .settings import Settings
from .storage import ParquetDatasetStore
from .vault import Vault

log = logging.getLogger(__name__)


class Platform:
    """Everything a request handler or a job needs, built from :class:`Settings`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        # The pool fits the workers: a request never waits for a connection (see Settings.api_threads).
        self.db = Database(settings.metadata_url, settings.pool_size, max_overflow=settings.api_threads)
        self.vault = Vault.for_settings(settings)
        self.store = ParquetDatasetStore(settings.datasets_dir, settings.tmp_dir)
        self.jobs = JobRunner(self, settings.job_workers)
        self.admin_token: str | None = None
        self.started = False
        #: Request sessions open at once (see deps.session_slot) and remote calls running at once (see
        #: remote.call_remote); made by :meth:`bind_limits` in the event loop serving the API.
        self.request_slots: Any = None
        self.remote_slots: Any = None

    def start(self) -> None:
        """Recover from a previous run and make sure an admin token exists."""
        self.jobs.recover()
        forget_pending_requests(self)
        recover_exports(self)
        self.admin_token = bootstrap_admin(self)
        self.started = True

    def bind_limits(self) -> None:
        """Size the API's worker threads and make its limiters; called in the event loop that serves the API.

        The metadata pool was sized for ``api_threads`` (see :attr:`Settings.pool_size`): the default thread
        limiter of the loop and the request session slots take the same number.
        """
        to_thread.current_default_thread_limiter().total_tokens = self.settings.api_threads
        self.request_slots = CapacityLimiter(self.settings.api_threads)
        # Remote calls wait in threads of their own: a hung one never takes a thread a request needs.
        self.remote_slots = CapacityLimiter(self.settings.max_remote_calls)

    def stop(self) -> None:
        """Stop the job runner."""
        self.jobs.shutdown()
