"""FTP servers (and FTPS with ``options={"tls": True}``), through fsspec's FTP filesystem."""

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

    def filesystem(self) -> Any:
        from fsspec.implementations.ftp import FTPFileSystem

        tls = {"tls": True} if self.config.options.get("tls") else {}
        fs = FTPFileSystem(
            self.config.host,
            port=self.config.port or self.default_port,
            username=self.config.username or None,
            password=self.config.secrets.get("password") or None,
            timeout=self.connect_timeout,
            block_size=1 << 20,
            **tls,
        )
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
