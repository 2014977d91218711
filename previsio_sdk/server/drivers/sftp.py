"""SFTP servers, through fsspec's SFTP filesystem (paramiko), with a password or a private key.

The platform never uses its own SSH agent or keys: only the connector's credentials are offered. The server's
host key is accepted on first sight unless ``options={"host_key": "ssh-ed25519 AAAA..."}`` pins it, in which
case any other key is refused before the credentials are sent.
"""

from __future__ import annotations

import io
import socket
from contextlib import AbstractContextManager
from typing import IO, Any, ClassVar

import paramiko

from ..errors import Invalid
from .base import (
    AuthenticationFailed,
    ConnectionFailed,
    ConnectorConfig,
    DestinationExists,
    DriverError,
    register,
)
from .files import FileDriver, normalize_root, parse_host

CONFIG_OPTIONS = ("root", "host_key")
#: Bytes asked for at once while reading a file: many SFTP requests in flight instead of one round trip each.
READ_WINDOW = 8 << 20
_KEY_CLASSES = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)


def load_private_key(text: str, passphrase: str | None) -> paramiko.PKey:
    """Parse an OpenSSH or PEM private key.

    Raises:
        Invalid: The text is not a supported private key, or the passphrase is wrong or missing.
    """
    for cls in _KEY_CLASSES:
        try:
            return cls.from_private_key(io.StringIO(text.strip() + "\n"), password=passphrase or None)
        except paramiko.PasswordRequiredException:
            raise Invalid(
                "The private key is encrypted: give its passphrase too.", {"field": "private_key"}
            ) from None
        except (paramiko.SSHException, ValueError, IndexError, TypeError):
            continue
    raise Invalid(
        "The private key is not a supported key (Ed25519, ECDSA or RSA, OpenSSH or PEM format), "
        "or its passphrase is wrong.",
        {"field": "private_key"},
    )


class PinnedHostKey(paramiko.MissingHostKeyPolicy):
    """Accept only the host key given in the connector's ``host_key`` option."""

    def __init__(self, expected: str) -> None:
        parts = expected.split()
        self.key_type, self.key_data = (parts[0], parts[1]) if len(parts) >= 2 else ("", "")

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        if key.get_name() != self.key_type or key.get_base64() != self.key_data:
            raise HostKeyMismatch(
                f"The server's host key ({key.get_name()} {key.fingerprint}) is not the one pinned in the "
                "connector's host_key option."
            )


class HostKeyMismatch(paramiko.SSHException):
    """The server presented another host key than the pinned one."""


class PipelinedSFTPFile(io.RawIOBase):
    """A paramiko SFTP file read in windows of :data:`READ_WINDOW` bytes through ``readv``.

    paramiko's plain ``read`` waits for each 32 KB request before sending the next; ``readv`` keeps many in
    flight. ``prefetch`` would do the same but buffers the whole file when the reader is slower than the
    network; a window keeps memory bounded.
    """

    def __init__(self, remote: paramiko.SFTPFile, window: int = READ_WINDOW) -> None:
        super().__init__()
        self._remote = remote
        self._size = remote.stat().st_size or 0
        self._window = window
        self._pos = 0
        self._buffer = b""
        self._buffer_start = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self._size or not len(view):
            return 0
        start = self._pos - self._buffer_start
        if not (0 <= start < len(self._buffer)):
            length = min(max(self._window, len(view)), self._size - self._pos)
            chunks = [
                (off, min(32768, self._pos + length - off))
                for off in range(self._pos, self._pos + length, 32768)
            ]
            self._buffer = b"".join(self._remote.readv(chunks))
            self._buffer_start, start = self._pos, 0
            if not self._buffer:
                return 0
        n = min(len(view), len(self._buffer) - start)
        view[:n] = self._buffer[start : start + n]
        self._pos += n
        return n

    def close(self) -> None:
        if not self.closed:
            self._remote.close()
            self._buffer = b""
        super().close()


def _sftp_filesystem_class() -> type:
    from fsspec.implementations.sftp import SFTPFileSystem

    class PolicySFTPFileSystem(SFTPFileSystem):
        """fsspec's SFTP filesystem with the host-key policy chosen here (older fsspec always auto-adds)."""

        def __init__(self, host: str, *, missing_host_key: paramiko.MissingHostKeyPolicy, **ssh_kwargs: Any):
            self.previsio_policy = missing_host_key
            super().__init__(host, **ssh_kwargs)

        def _connect(self) -> None:
            self.client = paramiko.SSHClient()
            self.client.set_missing_host_key_policy(self.previsio_policy)
            self.client.connect(self.host, **self.ssh_kwargs)
            self.ftp = self.client.open_sftp()

    return PolicySFTPFileSystem


@register("sftp")
class SFTPDriver(FileDriver):
    """Files on an SFTP server; paths are relative to ``options["root"]``, else to the login directory."""

    default_port = 22
    absolute_paths = True  # "/share/x.csv" is the server's own path; its permissions are the boundary
    secret_fields: ClassVar[tuple[str, ...]] = ("password", "private_key", "passphrase")

    @classmethod
    def normalize_config(cls, config: ConnectorConfig) -> ConnectorConfig:
        host, port = parse_host(config.host, config.port, ("sftp", "ssh"))
        if not host:
            raise Invalid("An SFTP connector needs a host.", {"field": "host"})
        if not config.username:
            raise Invalid("An SFTP connector needs a username.", {"field": "username"})
        secrets = config.secrets
        if not secrets.get("password") and not secrets.get("private_key"):
            raise Invalid("An SFTP connector needs a password or a private key.", {"field": "password"})
        if secrets.get("private_key"):
            load_private_key(secrets["private_key"], secrets.get("passphrase"))
        options = dict(config.options)
        unknown = sorted(set(options) - set(CONFIG_OPTIONS))
        if unknown:
            raise Invalid(
                f"Unknown SFTP connector options {unknown}; known: {list(CONFIG_OPTIONS)}.",
                {"field": "options"},
            )
        if "root" in options:
            options["root"] = normalize_root(options["root"])
        if options.get("host_key") is not None:
            parts = str(options["host_key"]).split()
            if len(parts) < 2 or not parts[0].startswith(("ssh-", "ecdsa-")):
                raise Invalid(
                    "host_key must be an OpenSSH public key line such as 'ssh-ed25519 AAAA...'.",
                    {"field": "options"},
                )
            options["host_key"] = " ".join(parts[:2])
        return config.evolve(host=host, port=port or cls.default_port, options=options, database=None)

    @classmethod
    def destination(cls, config: ConnectorConfig) -> tuple[Any, ...]:
        return (*super().destination(config), config.options.get("host_key"))

    def filesystem(self) -> Any:
        secrets = self.config.secrets
        pkey = None
        if secrets.get("private_key"):
            pkey = load_private_key(secrets["private_key"], secrets.get("passphrase"))
        pinned = self.config.options.get("host_key")
        port = self.config.port or self.default_port
        fs = _sftp_filesystem_class()(
            # The address checked by the network guard, not the name: it is not resolved a second time.
            self.connect_address(self.config.host or "", port),
            port=port,
            username=self.config.username,
            password=secrets.get("password") or None,
            pkey=pkey,
            timeout=self.connect_timeout,
            banner_timeout=self.connect_timeout,
            auth_timeout=self.connect_timeout,
            allow_agent=False,
            look_for_keys=False,
            missing_host_key=PinnedHostKey(pinned) if pinned else paramiko.AutoAddPolicy(),
            skip_instance_cache=True,
        )
        fs.ftp.get_channel().settimeout(max(60, self.connect_timeout))
        fs.previsio_home = fs.ftp.normalize(".")
        return fs

    def close_filesystem(self, fs: Any) -> None:
        fs.ftp.close()
        fs.client.close()

    def root(self, fs: Any, bucket: str | None) -> str:
        root = self.config.options.get("root") or getattr(fs, "previsio_home", "") or ""
        return "" if root == "/" else root.rstrip("/")

    def open_file(self, fs: Any, full: str) -> AbstractContextManager[IO[bytes]]:
        return io.BufferedReader(PipelinedSFTPFile(fs.ftp.open(full, "rb")), buffer_size=1 << 20)

    def join(self, root: str, relative: str) -> str:
        if not relative:
            return root or "/"
        return f"{root}/{relative}" if root else f"/{relative}"

    def open_for_write(self, fs: Any, full: str) -> AbstractContextManager[IO[bytes]]:
        remote = fs.ftp.open(full, "wb", bufsize=1 << 20)
        remote.set_pipelined(True)  # many write requests in flight instead of one round trip each
        return remote

    def rename_into_place(self, fs: Any, tmp: str, full: str, overwrite: bool) -> None:
        """POSIX rename to overwrite; the SFTP rename, which never replaces a file, otherwise."""
        if overwrite:
            try:
                fs.ftp.posix_rename(tmp, full)
            except OSError:  # a server without the posix-rename extension
                if self._exists(fs, full):
                    fs.ftp.remove(full)
                fs.ftp.rename(tmp, full)
            return
        try:
            fs.ftp.rename(tmp, full)
        except OSError:
            if self._exists(fs, full):
                raise DestinationExists(f"{full!r} appeared while writing.") from None
            raise

    def classify(self, exc: BaseException) -> type[DriverError] | None:
        if isinstance(exc, (paramiko.AuthenticationException, paramiko.BadAuthenticationType)):
            return AuthenticationFailed
        if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
            return ConnectionFailed
        if isinstance(exc, socket.gaierror):
            return None  # the generic "unknown host" message
        if isinstance(exc, paramiko.SSHException):
            return ConnectionFailed
        return None

    def _classify(self, exc: BaseException) -> tuple[type[DriverError], str]:
        if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
            return ConnectionFailed, f"Connection refused by {self._address()}."
        if isinstance(exc, HostKeyMismatch):
            return ConnectionFailed, str(exc)
        return super()._classify(exc)

    def describe(self) -> str:
        return f"SFTP server {self._address()}"
