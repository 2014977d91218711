"""Google Cloud Storage (Prevision.io's GCP connector, Cloud Storage only), through gcsfs.

``secrets["credentials"]`` is a service account key (the JSON text of its key file); without it requests are
anonymous: the platform never falls back to credentials of its own (environment, metadata server). ``host``
is the endpoint of a GCS-compatible server (an emulator); Google's when empty. A datasource names its
``bucket``; its ``path`` is an object name (or a glob of names) in it.

The key's ``token_uri`` is where the platform trades the key for an access token: it must be Google's, or a
URL on the connector's own endpoint host (an emulator's token service), so a key cannot make the platform
post to an address of the key writer's choosing.

gcsfs 2026's default class first asks each bucket's type over gRPC; the plain ``gcsfs.core.GCSFileSystem``
used here speaks only the JSON API. An export writes its object directly under the final name as a resumable
upload, visible only once finished (GCS has no rename, and gcsfs's ``moveTo`` is not offered by every
compatible server); a failed export cancels the upload and leaves no object.

BigQuery is not supported.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ..errors import Invalid
from .base import (
    AuthenticationFailed,
    ConnectionFailed,
    ConnectorConfig,
    DriverError,
    SourceNotFound,
    register,
)
from .files import BucketDriver

CONFIG_OPTIONS = ("project", "bucket", "root")
#: Google's token endpoint, the one a service account key names.
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
_SCOPE = "https://www.googleapis.com/auth/devstorage.full_control"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_KEY_FIELDS = ("type", "client_email", "private_key", "token_uri")


def check_bucket(bucket: str, field: str = "bucket") -> str:
    """Check a bucket name (lower-case letters, digits, ``-``, ``_`` and ``.``)."""
    bucket = bucket.strip()
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise Invalid(f"{bucket!r} is not a Cloud Storage bucket name.", {"field": field}, code="unsafe_path")
    return bucket


def parse_key(text: str) -> dict[str, Any]:
    """The service account key of ``text`` (its JSON), checked for the fields a token request needs.

    Raises:
        Invalid: Not JSON, not a service account key, or a field is missing (the message names no value).
    """
    try:
        key = json.loads(text)
    except ValueError:
        raise Invalid("googleCredentials is not the JSON of a key file.", {"field": "credentials"}) from None
    if not isinstance(key, dict) or key.get("type") != "service_account":
        raise Invalid("googleCredentials must be a service account key.", {"field": "credentials"})
    missing = [f for f in _KEY_FIELDS if not key.get(f)]
    if missing:
        raise Invalid(f"The service account key lacks {missing}.", {"field": "credentials"})
    return key


@register("gcs")
class GCSDriver(BucketDriver):
    """Objects of a Cloud Storage bucket; paths are object names, below ``options["root"]`` when set."""

    datasource_label = "A GCS datasource"
    store_label = "GCS"
    config_options = CONFIG_OPTIONS
    secret_fields: ClassVar[tuple[str, ...]] = ("credentials",)

    @classmethod
    def normalize_config(cls, config: ConnectorConfig) -> ConnectorConfig:
        host = (config.host or "").strip().rstrip("/") or None
        if host:
            parts = urlsplit(host if "://" in host else f"https://{host}")
            if (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or parts.username
                or parts.password
            ):
                raise Invalid(f"The GCS endpoint {host!r} must be an http(s) URL.", {"field": "host"})
            try:
                port = parts.port or config.port
            except ValueError:
                raise Invalid(f"The GCS endpoint {host!r} has an invalid port.", {"field": "host"}) from None
            netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
            host = f"{parts.scheme}://{netloc}{f':{port}' if port else ''}{parts.path.rstrip('/')}"
        options = cls.normalize_options(config.options)
        return config.evolve(host=host, port=None, username=None, database=None, options=options)

    def _key(self) -> dict[str, Any] | None:
        """The parsed service account key, or None for anonymous requests (or a key still to be given)."""
        text = self.config.secrets.get("credentials") or ""
        if not text.lstrip().startswith("{"):
            return None  # none given, or a restored connector's stand-in until its secrets are set
        key = parse_key(text)
        token_uri = str(key["token_uri"])
        endpoint_host = urlsplit(self.config.host or "").hostname
        if token_uri != GOOGLE_TOKEN_URI and (
            endpoint_host is None or urlsplit(token_uri).hostname != endpoint_host
        ):
            raise Invalid(
                "The key's token_uri must be Google's, or on the host of the connector's endpoint.",
                {"field": "credentials"},
            )
        return key

    def check_config(self) -> None:
        key = self._key()
        if key is not None:
            self._credentials(key)

    @staticmethod
    def _credentials(key: dict[str, Any]) -> Any:
        from google.oauth2 import service_account

        try:
            return service_account.Credentials.from_service_account_info(key, scopes=[_SCOPE])
        except (ValueError, KeyError):
            raise Invalid(
                "The service account key cannot be used (its private key does not parse).",
                {"field": "credentials"},
            ) from None

    def filesystem(self) -> Any:
        from gcsfs.core import GCSFileSystem

        key = self._key()
        project = self.config.options.get("project") or (key or {}).get("project_id") or "previsio"
        fs = GCSFileSystem(
            project=project,
            token=self._credentials(key) if key is not None else "anon",
            endpoint_url=self.config.host,
            requests_timeout=max(60, self.connect_timeout),
            skip_instance_cache=True,
            use_listings_cache=False,
        )
        fs.retries = 2
        return fs

    bucket_name = staticmethod(check_bucket)

    def entry(self, fs: Any, root: str, info: dict[str, Any]) -> dict[str, Any] | None:
        updated = info.get("updated")  # RFC 3339: "2024-01-31T12:00:00.123Z"
        when = datetime.fromisoformat(updated.replace("Z", "+00:00")) if isinstance(updated, str) else None
        return super().entry(fs, root, {**info, "mtime": when})

    def classify(self, exc: BaseException) -> type[DriverError] | None:
        from gcsfs.retry import HttpError

        if isinstance(exc, HttpError):
            code = getattr(exc, "code", None)
            if code in (401, 403):
                return AuthenticationFailed
            if code == 404:
                return SourceNotFound
            return ConnectionFailed
        if isinstance(exc, PermissionError):
            return AuthenticationFailed
        return None

    def describe(self) -> str:
        return f"GCS endpoint {self.config.host}" if self.config.host else "Google Cloud Storage"

    def _address(self) -> str:
        return self.config.host or "Google Cloud Storage"
