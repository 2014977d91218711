"""Amazon S3 and S3-compatible object stores (MinIO, Ceph, moto...), through s3fs.

``host`` is the endpoint URL of an S3-compatible store; without it the connector reaches AWS. ``username`` and
``password`` are the access key id and the secret key; without them requests are anonymous: the platform never
falls back to credentials of its own (environment, instance profile). A datasource names its ``bucket``; its
``path`` is a key (or a glob of keys) in it. Every connection to the endpoint goes to an address the
platform's network policy allows (:mod:`..netguard`), checked after resolution by aiohttp's resolver and
again on each socket opened.

S3 has no rename: an export writes its object directly under the final key, as a multipart upload that
becomes visible only when it is completed, after the last byte; a failed export aborts the upload and leaves
no object (and an existing object untouched). The ``safe`` mode checks that the key is free before writing;
S3 offers no atomic "create if absent" that every compatible store honours, so two exports racing for the
same new key may both succeed, the last one winning.
"""

from __future__ import annotations

import functools
import re
from typing import Any, ClassVar
from urllib.parse import urlsplit

from ..errors import Invalid
from .base import (
    AuthenticationFailed,
    ConnectionFailed,
    ConnectorConfig,
    DriverError,
    refuse_credentials_in_host,
    register,
)
from .files import BucketDriver

CONFIG_OPTIONS = ("region", "bucket", "root", "addressing_style")
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")


def check_bucket(bucket: str, field: str = "bucket") -> str:
    """Check a bucket name (S3 rules, loosened for S3-compatible stores)."""
    bucket = bucket.strip()
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise Invalid(f"{bucket!r} is not a bucket name.", {"field": field}, code="unsafe_path")
    return bucket


@functools.lru_cache(maxsize=1)
def _takes_socket_factory() -> bool:
    """Whether this aiobotocore passes ``socket_factory`` to aiohttp (newer releases do)."""
    from aiobotocore.config import AioConfig
    from botocore.exceptions import ParamValidationError

    try:
        AioConfig(connector_args={"socket_factory": None})
    except (ParamValidationError, TypeError):
        return False
    return True


@register("s3")
class S3Driver(BucketDriver):
    """Objects of an S3 bucket; paths are keys, relative to ``options["root"]`` (a key prefix) when set."""

    object_word = "keys"
    datasource_label = "An S3 datasource"
    store_label = "S3"
    config_options = CONFIG_OPTIONS
    secret_fields: ClassVar[tuple[str, ...]] = ("password", "session_token")

    @classmethod
    def normalize_config(cls, config: ConnectorConfig) -> ConnectorConfig:
        host = (config.host or "").strip() or None
        port = config.port
        if host:
            refuse_credentials_in_host(
                host, "Give the access key as username= and the secret as password=, not in the URL."
            )
            url = host if "://" in host else f"https://{host}"
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise Invalid(f"The S3 endpoint {host!r} must be an http(s) URL.", {"field": "host"})
            if parts.username or parts.password:
                raise Invalid(
                    "Give the access key as username= and the secret as password=, not in the URL.",
                    {"field": "host"},
                )
            try:
                url_port = parts.port
            except ValueError:
                raise Invalid(f"The S3 endpoint {host!r} has an invalid port.", {"field": "host"}) from None
            port = port or url_port
            netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
            host = f"{parts.scheme}://{netloc}{f':{port}' if port else ''}{parts.path.rstrip('/')}"
        if bool(config.username) != bool(config.secrets.get("password")):
            raise Invalid(
                "Give both the access key (username=) and the secret key (password=), or neither.",
                {"field": "password"},
            )
        options = cls.normalize_options(config.options)
        if options.get("addressing_style") not in (None, "path", "virtual", "auto"):
            raise Invalid("addressing_style must be 'path', 'virtual' or 'auto'.", {"field": "options"})
        return config.evolve(host=host, port=port, options=options, database=None)

    def filesystem(self) -> Any:
        import s3fs

        from ..netguard import aiohttp_connector_args

        options = self.config.options
        key = self.config.username or None
        client_kwargs: dict[str, Any] = {}
        if options.get("region"):
            client_kwargs["region_name"] = options["region"]
        config_kwargs: dict[str, Any] = {
            "connect_timeout": self.connect_timeout,
            "read_timeout": 120,
            "retries": {"max_attempts": 2, "mode": "standard"},
        }
        if options.get("addressing_style"):
            config_kwargs["s3"] = {"addressing_style": options["addressing_style"]}
        # Every connection (the endpoint, a redirect to another region's) resolves and opens its socket
        # through the network guard. aiohttp does not resolve a literal address: the endpoint is checked here
        # too, for aiobotocore releases that take no socket factory.
        target = self.network_address()
        if target is not None:
            self.connect_address(*target)
        connector_args = aiohttp_connector_args(self.settings)
        if not _takes_socket_factory():
            connector_args.pop("socket_factory")
        config_kwargs["connector_args"] = connector_args
        fs = s3fs.S3FileSystem(
            anon=key is None,
            key=key,
            secret=self.config.secrets.get("password") or None,
            token=self.config.secrets.get("session_token") or None,
            endpoint_url=self.config.host,
            client_kwargs=client_kwargs,
            config_kwargs=config_kwargs,
            skip_instance_cache=True,
            use_listings_cache=False,
            default_block_size=8 << 20,
        )
        fs.retries = 2
        return fs

    def network_address(self) -> tuple[str, int] | None:
        parts = urlsplit(self.config.host or "")
        if not parts.hostname:
            return None  # AWS: its endpoints are public
        return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)

    bucket_name = staticmethod(check_bucket)

    def bucket_entry(self, info: dict[str, Any]) -> dict[str, Any]:
        return {**super().bucket_entry(info), "modified_at": info.get("CreationDate")}

    def classify(self, exc: BaseException) -> type[DriverError] | None:
        import botocore.exceptions as bex

        if isinstance(exc, (bex.NoCredentialsError, bex.PartialCredentialsError)):
            return AuthenticationFailed
        if isinstance(exc, (bex.EndpointConnectionError, bex.ConnectTimeoutError)):
            return ConnectionFailed
        if isinstance(exc, PermissionError):
            return AuthenticationFailed
        return None

    def describe(self) -> str:
        return f"S3 endpoint {self.config.host}" if self.config.host else "AWS S3"

    def _address(self) -> str:
        return self.config.host or "AWS S3"
