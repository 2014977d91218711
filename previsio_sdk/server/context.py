"""What a job needs to run, and nothing more: the job context.

An API replica, the embedded platform and a Celery worker each build one from the settings. A job never sees
the HTTP app, the middleware or another process's memory: only the settings, the metadata store, the vault,
the dataset store, the identity under which this process holds leases, and the event telling it to stop.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .db import Database
from .stores import DatasetStore, open_store
from .vault import Vault

if TYPE_CHECKING:
    from .settings import Settings


def process_identity(role: str) -> str:
    """A name for this process's leases: its role, host, pid and a random part (pids are reused)."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:100]


@dataclass
class JobContext:
    """The parts of a platform a job uses.

    Attributes:
        settings: The platform's settings (limits, timeouts, leases).
        db: The metadata store.
        vault: Decrypts connector secrets.
        store: Where dataset files and staged uploads live.
        owner: This process's identity in the leases it takes.
        stopping: Set when this process stops: its running jobs stop (and go back to the queue on a worker).
    """

    settings: Settings
    db: Database
    vault: Vault
    store: DatasetStore
    owner: str
    stopping: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def from_settings(cls, settings: Settings, role: str = "platform") -> JobContext:
        """Build the context of a process from its settings (the metadata store is upgraded if allowed)."""
        settings.home.mkdir(parents=True, exist_ok=True)
        return cls(
            settings=settings,
            # The pool fits the workers: a request or a job never waits for a connection (Settings.pool_size).
            db=Database(
                settings.metadata_url,
                upgrade=settings.db_auto_upgrade,
                pool_size=settings.pool_size,
                max_overflow=settings.api_threads,
            ),
            vault=Vault.for_settings(settings),
            store=open_store(settings),
            owner=process_identity(role),
        )
