"""Files served over HTTP(S), through fsspec's HTTP filesystem (aiohttp).

``host`` is a base URL; datasource paths are appended to it. Basic authentication (``username`` and
``password``) or a bearer token (``secrets={"token": ...}``) is sent with every request to the base URL's
origin (scheme, host and port), and never to another: a redirect elsewhere is followed without it. Every
connection, redirects included, goes to an address the platform's network policy allows
(:mod:`..netguard`), checked after resolution. Listing reads the
links of the HTML index page at a path (what web servers' directory listings offer); a server without such
pages can still serve files, it just has nothing to list. Files are streamed: Parquet and zip files, which
need random access, are first copied to a temporary file of the platform.
"""

from __future__ import annotations

import base64
from contextlib import AbstractContextManager
from typing import IO, Any, ClassVar
from urllib.parse import quote, urlsplit

from ..errors import Invalid
from .base import (
    AuthenticationFailed,
    ConnectionFailed,
    ConnectorConfig,
    DriverError,
    SourceNotFound,
    TestOutcome,
    WriteMode,
    refuse_credentials_in_host,
    register,
)
from .files import FileDriver, _chain, _raise_wrapped_driver_error

#: Files of a listing whose size and date are asked for (one HEAD request each).
MAX_LISTING_HEADS = 200


def _origin(url: Any) -> tuple[str, str, int | None]:
    return (str(url.scheme).lower(), str(url.host or "").lower(), url.port)


def credentials_middleware(base_url: str, authorization: str | None) -> Any:
    """aiohttp client middleware sending ``authorization`` to the origin of ``base_url`` only.

    Every request goes through it, each redirect included: one to another origin (scheme, host, port) goes
    without the header, so the connector's credentials never reach a server its base URL does not name.
    """
    from aiohttp import hdrs
    from yarl import URL

    own = _origin(URL(base_url))

    async def middleware(request: Any, handler: Any) -> Any:
        if authorization is not None and _origin(request.url) == own:
            request.headers[hdrs.AUTHORIZATION] = authorization
        else:
            request.headers.popall(hdrs.AUTHORIZATION, None)
        return await handler(request)

    return middleware


@register("http")
class HTTPDriver(FileDriver):
    """Files below a base URL."""

    random_access: ClassVar[bool] = False
    secret_fields: ClassVar[tuple[str, ...]] = ("password", "token")
    #: HTTP servers are read: exporters cannot write to them.
    write_modes: ClassVar[tuple[WriteMode, ...]] = ()

    @classmethod
    def normalize_config(cls, config: ConnectorConfig) -> ConnectorConfig:
        base = (config.host or "").strip()
        if not base:
            raise Invalid(
                "An HTTP connector needs host= its base URL, such as https://files.example.com/data.",
                {"field": "host"},
            )
        refuse_credentials_in_host(
            base, "Give the user name and password as username= and password=, not in the URL."
        )
        parts = urlsplit(base if "://" in base else f"https://{base}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Invalid(f"The base URL {base!r} must be an http or https URL.", {"field": "host"})
        if parts.username or parts.password:
            raise Invalid(
                "Give the user name and password as username= and password=, not in the URL.",
                {"field": "host"},
            )
        if parts.query or parts.fragment:
            raise Invalid("The base URL must not have a query or a fragment.", {"field": "host"})
        try:
            url_port = parts.port
        except ValueError:
            raise Invalid(f"The base URL {base!r} has an invalid port.", {"field": "host"}) from None
        port = config.port or url_port
        netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        path = quote(parts.path.rstrip("/"), safe="/%")
        url = f"{parts.scheme}://{netloc}{f':{port}' if port else ''}{path}"
        if config.username and not config.secrets.get("password"):
            raise Invalid("Basic authentication needs a password with the username.", {"field": "password"})
        if config.secrets.get("token") and config.username:
            raise Invalid(
                "Give either username= and password= (basic) or token= (bearer), not both.",
                {"field": "token"},
            )
        if config.options:
            raise Invalid(f"Unknown HTTP connector options {sorted(config.options)}.", {"field": "options"})
        return config.evolve(host=url, port=port, database=None)

    def filesystem(self) -> Any:
        import aiohttp
        from fsspec.implementations.http import HTTPFileSystem

        from ..netguard import aiohttp_connector_args

        connector_args = aiohttp_connector_args(self.settings)
        middlewares = (credentials_middleware(self.config.host or "", self.authorization()),)

        async def get_client(**kwargs: Any) -> aiohttp.ClientSession:
            # Every connection (each redirect's too) resolves and opens its socket through the network guard.
            return aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(**connector_args), middlewares=middlewares, **kwargs
            )

        return HTTPFileSystem(
            client_kwargs={
                "timeout": aiohttp.ClientTimeout(total=None, connect=self.connect_timeout, sock_read=120),
            },
            get_client=get_client,
            skip_instance_cache=True,
            use_listings_cache=False,
            simple_links=False,
        )

    def authorization(self) -> str | None:
        """The ``Authorization`` header of this connector's credentials (basic or bearer); None without."""
        if self.config.username:
            pair = f"{self.config.username}:{self.config.secrets.get('password', '')}"
            try:
                raw = pair.encode("latin-1")  # what aiohttp's BasicAuth sent
            except UnicodeEncodeError:
                raw = pair.encode("utf-8")
            return f"Basic {base64.b64encode(raw).decode('ascii')}"
        if self.config.secrets.get("token"):
            return f"Bearer {self.config.secrets['token']}"
        return None

    def network_address(self) -> tuple[str, int] | None:
        parts = urlsplit(self.config.host or "")
        if not parts.hostname:
            return None
        return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)

    def close_filesystem(self, fs: Any) -> None:
        if fs._session is not None:
            fs.close_session(fs.loop, fs._session)

    def root(self, fs: Any, bucket: str | None) -> str:
        return self.config.host or ""

    def join(self, root: str, relative: str) -> str:
        return f"{root}/{quote(relative, safe='/*?[]')}" if relative else f"{root}/"

    def relative(self, root: str, full: str) -> str:
        from urllib.parse import unquote

        prefix = root.rstrip("/") + "/"
        full = full.rstrip("/")
        return unquote(full[len(prefix) :]) if full.startswith(prefix) else unquote(full)

    def test(self) -> TestOutcome:
        try:
            with self.connected() as fs, self.errors():
                fs.info(self.join(self.root(fs, None), ""))
        except DriverError as exc:
            return TestOutcome(False, exc.code, exc.message)
        return TestOutcome(True, None, f"Connected to {self.describe()}.")

    def list_files(self, path: str = "", bucket: str | None = None) -> list[dict[str, Any]]:
        entries = super().list_files(path, bucket)
        files = [e for e in entries if not e["is_dir"]][:MAX_LISTING_HEADS]
        if files:
            with self.connected() as fs, self.errors():
                root = self.root(fs, None)
                for entry in files:
                    try:
                        info = fs.info(self.join(root, entry["path"]))
                    except FileNotFoundError as exc:
                        _raise_wrapped_driver_error(exc)  # a refused address is not a missing file
                        continue
                    detailed = self.entry(fs, root, {**info, "name": self.join(root, entry["path"])})
                    if detailed is not None:
                        entry["size"] = detailed["size"]
                        entry["modified_at"] = detailed["modified_at"]
        return entries

    def open_file(self, fs: Any, full: str) -> AbstractContextManager[IO[bytes]]:
        return fs.open(full, "rb", block_size=0)

    def classify(self, exc: BaseException) -> type[DriverError] | None:
        import aiohttp

        for err in _chain(exc):
            if isinstance(err, aiohttp.ClientResponseError):
                if err.status in (401, 403):
                    return AuthenticationFailed
                if err.status in (404, 410):
                    return SourceNotFound
                return None
            if isinstance(err, aiohttp.ClientConnectorError):
                return None  # the generic messages name refused connections and unknown hosts
            if isinstance(err, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
                return ConnectionFailed
        return None

    def _classify(self, exc: BaseException) -> tuple[type[DriverError], str]:
        import aiohttp

        for err in _chain(exc):
            if isinstance(err, aiohttp.ClientResponseError):
                cls = self.classify(err) or ConnectionFailed
                reason = {
                    401: "the server asks for other credentials",
                    403: "access is forbidden",
                    404: "not found",
                    410: "gone",
                }.get(err.status, err.message)
                return cls, f"HTTP {err.status} from {self.describe()}: {reason}."
        return super()._classify(exc)

    def describe(self) -> str:
        return f"{self.config.host}"

    def _address(self) -> str:
        return self.config.host or "?"
