"""Connector secrets encrypted with a key derived from a user's passphrase, for backup archives.

The platform never returns a secret in clear. A backup that includes secrets asks for them encrypted with a
key only the user knows: scrypt derives a 256-bit key from the passphrase and a random salt, and AES-256-GCM
encrypts the JSON object of the secrets. The SDK decrypts with the same passphrase on restore
(:func:`previsio_sdk.backup.decrypt_secrets`); the parameters travel with the ciphertext.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

#: scrypt cost: 2**15 takes ~0.1 s and 32 MiB, the OWASP minimum for interactive use.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
CIPHER = "aes-256-gcm"


def encrypt_secrets(secrets: dict[str, str], passphrase: str) -> dict[str, Any]:
    """Encrypt ``secrets`` with a key derived from ``passphrase``.

    Returns:
        ``{"ciphertext": base64(nonce + ciphertext), "kdf": {"name": "scrypt", "salt", "n", "r", "p"},
        "cipher": "aes-256-gcm"}``.
    """
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    salt = os.urandom(16)
    key = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(passphrase.encode())
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, json.dumps(secrets).encode(), b"previsio-secrets")
    return {
        "ciphertext": base64.b64encode(nonce + sealed).decode(),
        "kdf": {
            "name": "scrypt",
            "salt": base64.b64encode(salt).decode(),
            "n": SCRYPT_N,
            "r": SCRYPT_R,
            "p": SCRYPT_P,
        },
        "cipher": CIPHER,
    }
