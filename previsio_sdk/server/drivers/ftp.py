"""FTP servers (and FTPS with ``options={"tls": True}``), through fsspec's FTP filesystem.

The control connection goes to the address the network guard checked (:mod:`..netguard`); passive data
connections go to the same peer, whatever address the server's PASV reply names.
"""

from __future__ import annotations

import ftplib
from typing import Any

from ..errors import Invalid
from .base import AuthenticationFailed, ConnectorConfig, DriverError, SourceNotFound, register
from .files import FileDriver, normalize_root, parse_host

CONFIG_OPTIONS = ("root", "tls")


@register("ftp")
class FTPDriver(FileDriver):
    """Files on an FTP server; paths are relative to ``options["root"]``, else to the login directory."""

    default_port = 21
    absolute_paths = True  # "/share/x.csv" is the server's own path; its permissions are the boundary

    @classmethod
    def normalize_config(cls, config: ConnectorConfig) -> ConnectorConfig:
        host, port = parse_host(config.host, config.port, ("ftp", "ftps"))
        if not host:
            raise Invalid("An FTP connector needs a host.", {"field": "host"})
        options = dict(config.options)
        unknown = sorted(set(options) - set(CONFIG_OPTIONS))
        if unknown:
            raise Invalid(
                f"Unknown FTP connector options {unknown}; known: {list(CONFIG_OPTIONS)}.",
                {"field": "options"},
            )
        if "root" in options:
            options["root"] = normalize_root(options["root"])
        if not isinstance(options.get("tls", False), bool):
            raise Invalid("The tls option must be true or false.", {"field": "options"})
        if config.host and config.host.strip().lower().startswith("ftps://"):
            options["tls"] = True
        return config.evolve(host=host, port=port or cls.default_port, options=options, database=None)

    @classmethod
    def destination(cls, config: ConnectorConfig) -> tuple[Any, ...]:
        return (*super().destination(config), bool(config.options.get("tls")))

    def filesystem(self) -> Any:
        from fsspec.implementations.ftp import FTPFileSystem

        tls = {"tls": True} if self.config.options.get("tls") else {}
        port = self.config.port or self.default_port
        fs = FTPFileSystem(
            # The address checked by the network guard, not the name: it is not resolved a second time.
            self.connect_address(self.config.host or "", port),
            port=port,
            username=self.config.username or None,
            password=self.config.secrets.get("password") or None,
            timeout=self.connect_timeout,
            block_size=1 << 20,
            **tls,
        )
        # Passive data connections go to the control connection's peer, never to the address a PASV reply
        # names (ftplib's default, made explicit: a server could otherwise aim them at another host).
        fs.ftp.trust_server_pasv_ipv4_address = False
        fs.previsio_home = fs.ftp.pwd()
        return fs

    def close_filesystem(self, fs: Any) -> None:
        try:
            fs.ftp.quit()
        except (ftplib.Error, OSError, EOFError):
            fs.ftp.close()

    def root(self, fs: Any, bucket: str | None) -> str:
        root = self.config.options.get("root") or getattr(fs, "previsio_home", "") or ""
        return "" if root == "/" else root.rstrip("/")

    def classify(self, exc: BaseException) -> type[DriverError] | None:
        if isinstance(exc, ftplib.error_perm):
            code = str(exc)[:3]
            if code in ("530", "332"):
                return AuthenticationFailed
            if code == "550":
                return SourceNotFound
        return None

    def describe(self) -> str:
        return f"FTP server {self._address()}"
