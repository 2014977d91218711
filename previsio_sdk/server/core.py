"""The platform object of an API process: its job context, its executor and reaper, wired once."""

from __future__ import annotations

import logging
from typing import Any

from anyio import CapacityLimiter, to_thread

from .auth import bootstrap_admin
from .context import JobContext
from .executors import Reaper, make_executor, recover_single_node
from .metrics import register_store_collector
from .middleware import forget_pending_requests
from .sandbox import warm_up
from .settings import Settings

log = logging.getLogger(__name__)


class Platform:
    """What the API's request handlers use, built from :class:`Settings`.

    The jobs do not see it: they get the :class:`~.context.JobContext` alone (``self.context``), the same one
    a ``previsio worker`` builds.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.context = JobContext.from_settings(settings, role="api")
        self.db = self.context.db
        self.vault = self.context.vault
        self.store = self.context.store
        #: Where jobs are submitted (``submit_snapshot``, ``submit_upload``, ``submit_export``).
        self.jobs = make_executor(self.context)
        self.reaper = Reaper(self.context, self.jobs)
        register_store_collector(self.context, self.jobs)
        self.admin_token: str | None = None
        self.started = False
        #: Request sessions open at once (see deps.session_slot) and remote calls running at once (see
        #: remote.call_remote); made by :meth:`bind_limits` in the event loop serving the API.
        self.request_slots: Any = None
        self.remote_slots: Any = None

    @property
    def single_node(self) -> bool:
        """Whether the metadata store is a file of this machine: no other process can hold its jobs."""
        return self.settings.metadata_url.startswith("sqlite")

    def start(self) -> None:
        """Recover from a previous run (single node only), start the reaper, make sure an admin exists."""
        warm_up()  # the sandbox's fork server, loaded now rather than by the first job
        if self.single_node:
            recover_single_node(self.context)
        forget_pending_requests(self)
        self.reaper.start()
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
        """Stop the executor (this process's running jobs stop) and the reaper."""
        self.jobs.shutdown()
