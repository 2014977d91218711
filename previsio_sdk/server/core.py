"""The platform object of an API process: its job context, its executor and reaper, wired once."""

from __future__ import annotations

import logging

from .auth import bootstrap_admin
from .context import JobContext
from .executors import Reaper, make_executor, recover_single_node
from .metrics import register_store_collector
from .middleware import forget_pending_requests
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

    @property
    def single_node(self) -> bool:
        """Whether the metadata store is a file of this machine: no other process can hold its jobs."""
        return self.settings.metadata_url.startswith("sqlite")

    def start(self) -> None:
        """Recover from a previous run (single node only), start the reaper, make sure an admin exists."""
        if self.single_node:
            recover_single_node(self.context)
        forget_pending_requests(self)
        self.reaper.start()
        self.admin_token = bootstrap_admin(self)
        self.started = True

    def stop(self) -> None:
        """Stop the executor (this process's running jobs stop) and the reaper."""
        self.jobs.shutdown()
