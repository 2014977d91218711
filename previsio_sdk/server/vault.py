"""Encryption at rest of connector secrets, and rotation of the key.

Secrets are encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from the ``cryptography`` package). The keys
live outside the metadata store: in ``PREVISIO_SECRET_KEY`` (comma-separated, newest first) or in
``<home>/secret.key`` (one key per line, newest first), created with mode 0600. The newest key encrypts; every
key listed decrypts (``MultiFernet``), which is what lets :func:`rotate_key` re-encrypt every secret while a
platform keeps reading them: a platform notices that the key file changed and reads it again.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .errors import PlatformError
from .logs import remember_secrets

if TYPE_CHECKING:
    from .settings import Settings

log = logging.getLogger(__name__)

#: Name of the key file under the platform home.
KEY_FILE = "secret.key"


def parse_keys(text: str | bytes) -> list[bytes]:
    """The keys of a key file or of ``PREVISIO_SECRET_KEY``: one per line or comma-separated, newest first.

    Blank lines and lines starting with ``#`` are ignored.
    """
    if isinstance(text, bytes):
        text = text.decode("ascii", errors="replace")
    keys = []
    for line in text.replace(",", "\n").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keys.append(line.encode("ascii", errors="replace"))
    return keys


def write_keys(path: Path, keys: Sequence[bytes]) -> None:
    """Replace the key file at ``path`` atomically with ``keys`` (newest first), mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(b"".join(k + b"\n" for k in keys))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_or_create_keys(path: Path) -> list[bytes]:
    """Return the keys stored at ``path``, creating the file with one new key (mode 0600) if missing."""
    if path.exists():
        keys = parse_keys(path.read_bytes())
        if keys:
            return keys
    key = Fernet.generate_key()
    write_keys(path, [key])
    return [key]


def load_or_create_key(path: Path) -> bytes:
    """Return the newest key stored at ``path``, creating the file if missing."""
    return load_or_create_keys(path)[0]


class KeyRing:
    """The platform's keys, newest first: a fixed list, or a key file read again whenever it changes.

    Args:
        keys: Fixed keys (from the settings); None to read ``path``.
        path: Key file; created with one new key when missing.
    """

    def __init__(self, keys: Sequence[bytes] | None = None, path: Path | None = None) -> None:
        if keys is None and path is None:
            raise ValueError("a KeyRing needs keys or a key file")
        self.path = None if keys is not None else path
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None
        self._fernet: MultiFernet
        if keys is not None:
            self._set(list(keys))
        else:
            assert path is not None
            self._set(load_or_create_keys(path))
            self._signature = self._stat()

    def __repr__(self) -> str:
        return f"KeyRing(<{len(self._keys)} keys hidden>, path={str(self.path) if self.path else None!r})"

    def _set(self, keys: list[bytes]) -> None:
        try:
            fernets = [Fernet(k) for k in keys]
        except (ValueError, TypeError):
            # The message names no key: a key is a secret like any other.
            raise ValueError(
                "A secret key is not a valid Fernet key (32 url-safe base64-encoded bytes)."
            ) from None
        if not fernets:
            raise ValueError("No secret key is configured.")
        self._keys = keys
        self._fernet = MultiFernet(fernets)

    def _stat(self) -> tuple[int, int, int] | None:
        assert self.path is not None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def fernet(self, *, force_reload: bool = False) -> MultiFernet:
        """The current keys as a ``MultiFernet`` (newest encrypts, all decrypt).

        A key file is read again when it changed since it was last read, or when ``force_reload``.
        """
        if self.path is not None:
            signature = self._stat()
            if force_reload or signature != self._signature:
                with self._lock:
                    try:
                        keys = parse_keys(self.path.read_bytes())
                    except OSError:
                        keys = []
                    if keys:  # a key file caught half-written or removed: keep the keys we have
                        self._set(keys)
                        self._signature = signature
        return self._fernet

    @property
    def count(self) -> int:
        """How many keys are known."""
        return len(self._keys)

    def newest(self) -> Fernet:
        """The key that encrypts, alone."""
        self.fernet()
        return Fernet(self._keys[0])


class Vault:
    """Encrypts and decrypts the secret part of a connector (a small JSON mapping).

    Args:
        key: One key, a list of keys (newest first), or a :class:`KeyRing`.
    """

    def __init__(self, key: bytes | Sequence[bytes] | KeyRing) -> None:
        if isinstance(key, KeyRing):
            self.keys = key
        elif isinstance(key, bytes):
            self.keys = KeyRing([key])
        else:
            self.keys = KeyRing(list(key))

    @classmethod
    def for_settings(cls, settings: Settings) -> Vault:
        """The vault of a platform: keys from ``PREVISIO_SECRET_KEY``, else from ``<home>/secret.key``."""
        if settings.secret_key is not None:
            return cls(KeyRing(parse_keys(settings.secret_key.get_secret_value())))
        return cls(KeyRing(path=settings.home / KEY_FILE))

    def __repr__(self) -> str:
        return "Vault(<keys hidden>)"

    def encrypt(self, secrets: dict[str, Any]) -> bytes | None:
        """Encrypt a mapping of secrets with the newest key; an empty mapping is stored as ``None``."""
        clean = {k: v for k, v in secrets.items() if v is not None}
        if not clean:
            return None
        remember_secrets(clean.values())
        return self.keys.fernet().encrypt(json.dumps(clean).encode())

    def decrypt(self, blob: bytes | None) -> dict[str, Any]:
        """Decrypt what :meth:`encrypt` produced, with any of the platform's keys.

        When no key known fits, the key file is read again once: a rotation may have just added the key.

        Raises:
            PlatformError: The blob was encrypted with a key the platform does not have (code
                ``secret_unreadable``).
        """
        if not blob:
            return {}
        try:
            secrets = json.loads(self.keys.fernet().decrypt(blob))
        except InvalidToken:
            try:
                secrets = json.loads(self.keys.fernet(force_reload=True).decrypt(blob))
            except InvalidToken:
                secrets = None
        if secrets is None:
            raise PlatformError(
                409,
                "secret_unreadable",
                "The connector's credentials cannot be decrypted with the platform's current key; "
                "set them again with an update.",
            )
        remember_secrets(secrets.values())
        return secrets


# ------------------------------------------------------------------------------------------------------------
# Rotation
# ------------------------------------------------------------------------------------------------------------
class KeyRotationError(Exception):
    """The key cannot be rotated (keys set in the environment, unreadable secrets)."""


@dataclass(frozen=True)
class RotationReport:
    """What :func:`rotate_key` did."""

    #: Secrets re-encrypted with the new key.
    reencrypted: int
    #: Secrets no key could decrypt (left as they were; their connectors need their credentials set again).
    unreadable: int
    #: Keys removed from the key file.
    retired_keys: int
    #: Passes over the metadata store (more than two when secrets were changed during the rotation).
    passes: int


def _encrypted_columns() -> list[tuple[Any, str]]:
    """(model, column) of every encrypted value of the metadata store."""
    from .models import Connector

    return [(Connector, "secret_enc")]


def _reencrypt_pass(db: Any, new: Fernet, every: MultiFernet) -> tuple[int, int]:
    """Re-encrypt every value not readable with ``new`` alone; return (re-encrypted, unreadable)."""
    from sqlalchemy import select, update

    changed = unreadable = 0
    for model, column in _encrypted_columns():
        col = getattr(model, column)
        with db.session() as s:
            rows = list(s.execute(select(model.id, col).where(col.is_not(None))))
        for row_id, blob in rows:
            try:
                new.decrypt(blob)
                continue  # already under the new key
            except InvalidToken:
                pass
            try:
                fresh = every.rotate(blob)
            except InvalidToken:
                unreadable += 1
                continue
            with db.session() as s:
                # Only if unchanged meanwhile: a secret updated by the platform is left to the next pass.
                done = s.execute(
                    update(model).where(model.id == row_id, col == blob).values({column: fresh})
                ).rowcount
            changed += done
    return changed, unreadable


def rotate_key(
    settings: Settings,
    *,
    grace_seconds: float = 1.0,
    echo: Callable[[str], None] | None = None,
) -> RotationReport:
    """Put a new key in the key file and re-encrypt every secret with it, then retire the old keys.

    A running platform keeps reading secrets throughout: the key file holds the new key and the old ones
    while secrets are re-encrypted (the platform reads the file again when it changes), and the old keys are
    removed only once no secret needs them. A secret a platform wrote with an old key during the rotation is
    caught by the next pass; passes repeat, ``grace_seconds`` apart, until one finds nothing left to do.

    Args:
        settings: The platform's settings (home, metadata store).
        grace_seconds: Pause between passes, longer than a platform takes to store an update it encrypted.
        echo: Called with a line of progress.

    Returns:
        What was done.

    Raises:
        KeyRotationError: The keys come from ``PREVISIO_SECRET_KEY`` (rotate them there), or some secrets
            cannot be decrypted with any key (the old keys are then kept).
    """
    from .db import Database

    say = echo or (lambda _line: None)
    if settings.secret_key is not None:
        raise KeyRotationError(
            "The keys come from PREVISIO_SECRET_KEY: set it to 'NEW_KEY,OLD_KEY', restart the platform, run "
            "`previsio rotate-key --reencrypt-only`, then set it to 'NEW_KEY' alone."
        )
    path = settings.home / KEY_FILE
    old = load_or_create_keys(path)
    new_key = Fernet.generate_key()
    write_keys(path, [new_key, *old])
    say(f"new key added to {path}; re-encrypting secrets")
    report = reencrypt(
        settings, grace_seconds=grace_seconds, echo=say, database=Database(settings.metadata_url)
    )
    if report.unreadable:
        raise KeyRotationError(
            f"{report.unreadable} secrets cannot be decrypted with any key; the old keys were kept in "
            f"{path}. Set those connectors' credentials again, then run the rotation again."
        )
    write_keys(path, [new_key])
    say(f"{len(old)} old key(s) removed from {path}")
    return RotationReport(report.reencrypted, 0, len(old), report.passes)


def reencrypt(
    settings: Settings,
    *,
    grace_seconds: float = 1.0,
    echo: Callable[[str], None] | None = None,
    database: Any = None,
) -> RotationReport:
    """Re-encrypt every secret with the newest key the settings give (the key file is not changed).

    Returns:
        What was done (``retired_keys`` is 0).
    """
    from .db import Database

    say = echo or (lambda _line: None)
    ring = (
        KeyRing(parse_keys(settings.secret_key.get_secret_value()))
        if settings.secret_key is not None
        else KeyRing(path=settings.home / KEY_FILE)
    )
    db = database or Database(settings.metadata_url)
    every = ring.fernet()
    newest = ring.newest()
    total = passes = 0
    unreadable = 0
    try:
        while True:
            passes += 1
            changed, unreadable = _reencrypt_pass(db, newest, every)
            total += changed
            say(f"pass {passes}: {changed} secret(s) re-encrypted")
            if changed == 0 and passes >= 2:
                break
            time.sleep(grace_seconds)
        if db.engine.dialect.name == "sqlite":
            _checkpoint(db)
    finally:
        db.engine.dispose()
    return RotationReport(total, unreadable, 0, passes)


def _checkpoint(db: Any) -> None:
    """Move the WAL into the database file and truncate it, so old ciphertexts do not linger in it."""
    for _ in range(20):
        with db.engine.connect() as conn:
            busy = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy is None or busy[0] == 0:
            return
        time.sleep(0.1)
    log.warning("the metadata store's WAL could not be truncated (readers busy); it will be at the next one")
