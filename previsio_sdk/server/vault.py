"""Encryption at rest of connector secrets.

Secrets are encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from the ``cryptography`` package). The key
lives outside the metadata store: in ``PREVISIO_SECRET_KEY`` or in ``<home>/secret.key``, created with
mode 0600.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from .errors import PlatformError


def load_or_create_key(path: Path) -> bytes:
    """Return the key stored at ``path``, creating it (mode 0600) if missing."""
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


class Vault:
    """Encrypts and decrypts the secret part of a connector (a small JSON mapping)."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def __repr__(self) -> str:
        return "Vault(<key hidden>)"

    def encrypt(self, secrets: dict[str, Any]) -> bytes | None:
        """Encrypt a mapping of secrets; an empty mapping is stored as ``None``."""
        clean = {k: v for k, v in secrets.items() if v is not None}
        if not clean:
            return None
        return self._fernet.encrypt(json.dumps(clean).encode())

    def decrypt(self, blob: bytes | None) -> dict[str, Any]:
        """Decrypt what :meth:`encrypt` produced.

        Raises:
            PlatformError: The blob was encrypted with another key (code ``secret_unreadable``).
        """
        if not blob:
            return {}
        try:
            return json.loads(self._fernet.decrypt(blob))
        except InvalidToken:
            raise PlatformError(
                409,
                "secret_unreadable",
                "The connector's credentials cannot be decrypted with the platform's current key; "
                "set them again with an update.",
            ) from None
