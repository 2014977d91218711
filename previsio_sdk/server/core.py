"""The platform object: settings, metadata store, vault, dataset store and job runner, wired once."""

from __future__ import annotations

import logging

from .auth import bootstrap_admin
from .db import Database
from .exports import recover_exports
from .jobs import JobRunner
from .middleware import forget_pending_requests
from .sandbox import warm_up
from .settings import Settings
from .storage import ParquetDatasetStore
from .vault import Vault

log = logging.getLogger(__name__)


class Platform:
    """Everything a request handler or a job needs, built from :class:`Settings`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.home.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.metadata_url)
        self.vault = Vault.for_settings(settings)
        self.store = ParquetDatasetStore(settings.datasets_dir, settings.tmp_dir)
        self.jobs = JobRunner(self, settings.job_workers)
        self.admin_token: str | None = None
        self.started = False

    def start(self) -> None:
        """Recover from a previous run and make sure an admin token exists."""
        warm_up()
        self.jobs.recover()
        forget_pending_requests(self)
        recover_exports(self)
        self.admin_token = bootstrap_admin(self)
        self.started = True

    def stop(self) -> None:
        """Stop the job runner."""
        self.jobs.shutdown()
