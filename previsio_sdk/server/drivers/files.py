"""What every file and object-store driver shares: the fsspec filesystem, path safety, listing and errors.

A file driver is an fsspec filesystem plus a root. Datasource paths are relative to the root and are checked
by :func:`safe_relative_path` before anything is contacted: no ``..``, no backslash, no control character, no
URL, and no absolute path unless the driver says its paths may be absolute (:attr:`FileDriver.absolute_paths`:
on a remote server the server's own permissions are the boundary, as Prevision.io's ``/share/out.csv``). A
path may be a glob (``2024/*.csv``): its matches are read, sorted, as one dataset. Formats are read by
:mod:`.formats`; this module turns the filesystems' own exceptions into driver errors whose messages carry no
secret.
"""

from __future__ import annotations

import abc
import contextlib
import errno
import ftplib
import posixpath
import re
import socket
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, ClassVar
from urllib.parse import unquote, urlsplit

import pyarrow as pa

from ..errors import Invalid, PlatformError
from . import file_write, formats
from .base import (
    FILE_WRITE_MODES,
    AuthenticationFailed,
    ConnectionFailed,
    DestinationExists,
    DestinationSpec,
    Driver,
    DriverError,
    InvalidSource,
    ReadFailed,
    SourceNotFound,
    SourceSpec,
    StreamTap,
    TestOutcome,
    WriteFailed,
    WriteMode,
    WriteResult,
    refuse_credentials_in_host,
)
from .limits import ReadLimits

#: Exceptions that mean a bug here rather than a remote failure.
_BUGS = (TypeError, AttributeError, NameError, KeyError, IndexError, AssertionError, NotImplementedError)
#: Characters that make a path a glob pattern.
GLOB_CHARS = re.compile(r"[*?\[]")
_DRIVE = re.compile(r"^[A-Za-z]:")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: Largest number of files one glob may match.
MAX_GLOB_FILES = 10_000
#: Bytes per read from a remote file (fsspec block size).
READ_BLOCK_SIZE = 8 << 20


def safe_relative_path(
    path: str | None, *, field: str = "path", allow_empty: bool = True, allow_absolute: bool = False
) -> str:
    """Check that ``path`` stays below a connector's root and return it normalised (``a/b/c``, no ``./``).

    Refused: absolute paths (``/x``, ``~``, ``C:``), ``..`` segments, backslashes, NUL and other control
    characters, URLs (``scheme://``), and the same tricks percent-encoded (``%2e%2e``, ``%2f``).

    Args:
        path: The path to check.
        field: The request field it came from (for the error).
        allow_empty: Whether an empty path (the root itself) is accepted.
        allow_absolute: Accept a path starting with one ``/``, returned as ``/a/b/c``: an absolute path of a
            remote server (the rest is checked as above; ``//``, ``~`` and drive letters stay refused).

    Raises:
        Invalid: The path could leave the root (HTTP 422).
    """
    raw = path or ""
    absolute = allow_absolute and raw.startswith("/") and not raw.startswith("//")
    checked = raw[1:] if absolute else raw
    for candidate in {checked, unquote(checked)}:
        why = _unsafe_reason(candidate)
        if absolute and why is None and unquote(checked).startswith("/"):
            why = "it must be a path, not a URL"  # "/%2F..." would become "//..."
        if why:
            raise Invalid(f"The {field} {raw!r} is refused: {why}.", {"field": field}, code="unsafe_path")
    parts = [p for p in checked.split("/") if p not in ("", ".")]
    clean = "/".join(parts)
    if not clean and not allow_empty:
        raise Invalid(f"A file datasource needs a {field}.", {"field": field})
    return f"/{clean}" if absolute else clean


def _unsafe_reason(path: str) -> str | None:
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        return "it holds a control character"
    if "\\" in path:
        return "backslashes are not path separators here, use '/'"
    if path.startswith(("/", "~")) or _DRIVE.match(path):
        return "it must be relative to the connector's root"
    if _SCHEME.match(path) or path.startswith("//"):
        return "it must be a path, not a URL"
    if ".." in path.split("/"):
        return "'..' cannot be used to leave the connector's root"
    return None


def parse_host(host: str | None, port: int | None, schemes: tuple[str, ...]) -> tuple[str | None, int | None]:
    """Accept ``files.example.com``, ``files.example.com:2121`` or ``sftp://files.example.com`` alike.

    Raises:
        Invalid: The host is a URL of another scheme, holds credentials or a path, or has a bad port.
    """
    if not host:
        return None, port
    host = host.strip()
    refuse_credentials_in_host(
        host, "Give the user name and password as username= and password=, not in the host."
    )
    parsed = urlsplit(host if "://" in host else f"//{host}")
    if "://" in host and parsed.scheme.lower() not in schemes:
        raise Invalid(f"The host {host!r} is not a {' or '.join(schemes)} address.", {"field": "host"})
    if parsed.username or parsed.password:
        raise Invalid(
            "Give the user name and password as username= and password=, not in the host.", {"field": "host"}
        )
    if parsed.path.strip("/") or parsed.query:
        raise Invalid(
            f"The host {host!r} must not hold a path; set a root directory instead.", {"field": "host"}
        )
    try:
        url_port = parsed.port
    except ValueError:
        raise Invalid(f"The host {host!r} has an invalid port.", {"field": "host"}) from None
    if not parsed.hostname:
        raise Invalid(f"The host {host!r} is not a host name.", {"field": "host"})
    port = port or url_port
    if port is not None and not (0 < port < 65536):
        raise Invalid(f"Port {port} is out of range.", {"field": "port"})
    return parsed.hostname, port


def normalize_root(root: Any, *, absolute: bool = False) -> str:
    """Check a connector's ``root`` option: a POSIX directory, no ``..``; absolute when required."""
    if root is None or root == "":
        if absolute:
            raise Invalid("This connector needs a root directory.", {"field": "root"})
        return ""
    if not isinstance(root, str) or any(ord(c) < 32 for c in root) or "\\" in root:
        raise Invalid("The root must be a directory path.", {"field": "root"})
    if ".." in root.split("/"):
        raise Invalid("The root must not contain '..'.", {"field": "root"})
    if absolute and not root.startswith("/"):
        raise Invalid(f"The root {root!r} must be an absolute path.", {"field": "root"})
    clean = posixpath.normpath(root)
    return "/" if clean == "/" else clean.rstrip("/")


def to_datetime(value: Any) -> datetime | None:
    """A modification time as fsspec backends give it (epoch, datetime, FTP ``YYYYMMDDHHMMSS``) in UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    text = str(value).strip()
    for fmt in ("%Y%m%d%H%M%S.%f", "%Y%m%d%H%M%S"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    try:
        from email.utils import parsedate_to_datetime

        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None


class FileDriver(Driver):
    """Base of the drivers reading files through an fsspec filesystem.

    Subclasses build the filesystem (:meth:`filesystem`), say where their root is (:meth:`root`) and may
    refine how an exception is classified (:meth:`classify`).
    """

    secret_fields: ClassVar[tuple[str, ...]] = ("password",)
    #: Whether a datasource names a bucket (object stores).
    uses_bucket: ClassVar[bool] = False
    #: Whether the filesystem's files can seek (Parquet and zip need it; others are copied to a temp file).
    random_access: ClassVar[bool] = True
    #: Whether a path may be absolute (``/share/out.csv``): true for remote servers and object stores, whose
    #: own permissions are the boundary; false where the root is a boundary of the platform's machine (local
    #: directories). On an object store (``uses_bucket``) the leading ``/`` is dropped: keys have no root.
    absolute_paths: ClassVar[bool] = False

    # -- what a subclass provides ----------------------------------------------------------------------------
    @abc.abstractmethod
    def filesystem(self) -> Any:
        """A new fsspec filesystem connected with this connector's settings (connecting may raise)."""

    def close_filesystem(self, fs: Any) -> None:
        """Release the connections of ``fs``."""

    def root(self, fs: Any, bucket: str | None) -> str:
        """The filesystem path every datasource path is relative to."""
        return str(self.config.options.get("root") or "").rstrip("/")

    def clean_path(self, path: str | None, *, allow_empty: bool = True) -> str:
        """``path`` checked by :func:`safe_relative_path` as this driver allows it (absolute or not)."""
        clean = safe_relative_path(path, allow_empty=allow_empty, allow_absolute=self.absolute_paths)
        return clean.lstrip("/") if self.uses_bucket else clean

    def full_path(self, root: str, path: str) -> str:
        """The filesystem path of a cleaned path: an absolute one as it is, else :meth:`join` below root."""
        return path if path.startswith("/") else self.join(root, path)

    def join(self, root: str, relative: str) -> str:
        """The filesystem path of ``relative`` below ``root``."""
        if not relative:
            return root or "/"
        return f"{root}/{relative}" if root else relative

    def relative(self, root: str, full: str) -> str:
        """The path of ``full`` relative to ``root`` (what a datasource names)."""
        prefix = root.rstrip("/") + "/" if root else ""
        full = full.rstrip("/")
        if prefix and full.startswith(prefix):
            return full[len(prefix) :]
        return full.lstrip("/") if not root or root == "/" else full

    def check_readable(self, fs: Any, full_path: str) -> None:
        """Refuse a resolved file that lies outside the root (symlinks): local files check it."""

    def test_target(self, fs: Any) -> str:
        """The path :meth:`test` lists."""
        return self.root(fs, self.config.options.get("bucket")) or "/"

    # -- errors ----------------------------------------------------------------------------------------------
    def classify(self, exc: BaseException) -> type[DriverError] | None:
        """The driver error a filesystem exception means, or None when this driver has no opinion."""
        return None

    def _classify(self, exc: BaseException) -> tuple[type[DriverError], str]:
        cls = self.classify(exc)
        message = str(exc).strip() or type(exc).__name__
        if cls is not None:
            return cls, message
        for err in _chain(exc):
            if isinstance(err, socket.gaierror):
                host = self.config.host or ""
                host = (urlsplit(host).hostname or host) if "://" in host else host
                return ConnectionFailed, f"Unknown host {host!r} ({err.strerror or err})."
            if isinstance(err, ConnectionRefusedError) or getattr(err, "errno", None) == errno.ECONNREFUSED:
                return ConnectionFailed, f"Connection refused by {self._address()}."
            if isinstance(err, (TimeoutError, socket.timeout)):
                return ConnectionFailed, f"Timed out reaching {self._address()}."
        if isinstance(exc, FileNotFoundError):
            name = exc.filename or (exc.args[0] if exc.args else "")
            return SourceNotFound, f"No such file or directory: {name!r}." if name else "No such file."
        if isinstance(exc, IsADirectoryError):
            return InvalidSource, f"{exc.filename or message!r} is a directory, not a file."
        if isinstance(exc, PermissionError):
            return AuthenticationFailed, f"Access denied: {message}"
        if isinstance(exc, ftplib.error_perm):
            code = message[:3]
            if code in ("530", "332"):
                return AuthenticationFailed, f"The FTP server refused the login: {message}"
            if code == "550":
                return SourceNotFound, f"The FTP server has no such file: {message}"
            return ReadFailed, f"The FTP server answered: {message}"
        if isinstance(exc, (ConnectionError, EOFError, ftplib.Error, socket.error)):
            return ConnectionFailed, f"Connection to {self._address()} failed: {message}"
        return ReadFailed, message

    def _address(self) -> str:
        host = self.config.host or "?"
        return f"{host}:{self.config.port}" if self.config.port else host

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn filesystem and network exceptions into redacted driver errors."""
        try:
            yield
        except PlatformError:  # already typed: a driver error, a refused value, a limit passed
            raise
        except Exception as exc:  # noqa: BLE001 - backends raise their own classes (paramiko, botocore, aiohttp)
            _raise_wrapped_driver_error(exc)
            if isinstance(exc, _BUGS) and self.classify(exc) is None:
                raise  # a bug, reported as one (internal_error), not disguised as a remote failure
            cls, message = self._classify(exc)
            raise cls(self.redact(message)) from None

    @contextmanager
    def connected(self) -> Iterator[Any]:
        """A connected filesystem, closed afterwards; connection failures become driver errors."""
        with self.errors():
            fs = self.filesystem()
        try:
            yield fs
        finally:
            try:
                self.close_filesystem(fs)
            except Exception:  # noqa: BLE001 - closing a broken connection may fail too
                pass

    # -- validation ------------------------------------------------------------------------------------------
    def normalize_source(self, spec: SourceSpec) -> SourceSpec:
        if spec.table or spec.request or spec.database:
            raise Invalid(
                f"table=, request= and database= do not apply to a {self.type_name} datasource; give path=.",
                {"field": "table"},
            )
        path = self.clean_path(spec.path, allow_empty=False)
        bucket = self.normalize_bucket(spec.bucket)
        options = formats.normalize_options(spec.options)
        name = path
        fmt, compression = formats.detect_format(name, options)
        if fmt is None and compression != "zip" and not GLOB_CHARS.search(posixpath.basename(path)):
            raise Invalid(
                f"Cannot tell the format of {path!r} from its name; pass format= one of "
                f"{', '.join(formats.FORMATS)}.",
                {"field": "format"},
                code="invalid_source",
            )
        return SourceSpec(path=path, bucket=bucket, options=options)

    def normalize_bucket(self, bucket: str | None) -> str | None:
        """Check the bucket of a datasource (object stores need one; others refuse it)."""
        if bucket:
            raise Invalid(f"bucket= does not apply to a {self.type_name} datasource.", {"field": "bucket"})
        return None

    # -- operations ------------------------------------------------------------------------------------------
    def test(self) -> TestOutcome:
        try:
            with self.connected() as fs, self.errors():
                target = self.test_target(fs)
                fs.ls(target, detail=False)
        except DriverError as exc:
            return TestOutcome(False, exc.code, exc.message)
        return TestOutcome(True, None, f"Connected to {self.describe()}.")

    def describe(self) -> str:
        """A short description of where this connector points (no secret)."""
        return f"{self.type_name} server {self._address()}"

    def list_files(self, path: str = "", bucket: str | None = None) -> list[dict[str, Any]]:
        rel = self.clean_path(path)
        bucket = self.normalize_list_bucket(bucket)
        with self.connected() as fs, self.errors():
            root = self.root(fs, bucket)
            full = self.full_path(root, rel)
            if GLOB_CHARS.search(rel):
                infos = [fs.info(p) for p in self._glob(fs, root, rel)]
            else:
                infos = fs.ls(full, detail=True)
            entries = []
            for info in infos:
                entry = self.entry(fs, root, info)
                if entry is not None:
                    entries.append(entry)
        entries.sort(key=lambda e: (not e["is_dir"], e["name"]))
        return entries

    def normalize_list_bucket(self, bucket: str | None) -> str | None:
        """The bucket a listing is for."""
        return self.normalize_bucket(bucket)

    def entry(self, fs: Any, root: str, info: dict[str, Any]) -> dict[str, Any] | None:
        """A listing entry ``{name, path, size, modified_at, is_dir}`` from an fsspec info dict."""
        full = str(info.get("name", "")).rstrip("/")
        is_dir = info.get("type") == "directory"
        modified = None
        for key in ("LastModified", "mtime", "modify", "last_modified", "Last-Modified", "created"):
            if info.get(key) is not None:
                modified = to_datetime(info[key])
                break
        size = info.get("size")
        return {
            "name": posixpath.basename(full),
            "path": self.relative(root, full),
            "size": None if is_dir or size is None else int(size),
            "modified_at": modified,
            "is_dir": is_dir,
        }

    def _glob(self, fs: Any, root: str, pattern: str) -> list[str]:
        matches = fs.glob(self.full_path(root, pattern), detail=True)
        files = sorted(p for p, info in matches.items() if info.get("type") != "directory")
        if len(files) > MAX_GLOB_FILES:
            raise InvalidSource(f"The pattern {pattern!r} matches more than {MAX_GLOB_FILES} files.")
        return files

    def resolve(self, fs: Any, spec: SourceSpec) -> list[tuple[str, str]]:
        """The files a datasource reads: ``(filesystem path, path relative to the root)``, in reading order.

        Raises:
            SourceNotFound: The file (or every file of the glob) is missing.
        """
        rel = self.clean_path(spec.path, allow_empty=False)
        root = self.root(fs, spec.bucket)
        if GLOB_CHARS.search(rel):
            found = self._glob(fs, root, rel)
            if not found:
                raise SourceNotFound(f"No file matches {rel!r}{self._where(spec)}.")
        else:
            full = self.full_path(root, rel)
            info = self.file_info(fs, full, rel, spec)
            if info.get("type") == "directory":
                raise InvalidSource(
                    f"{rel!r} is a directory; give a file or a glob such as {rel + '/*.csv'!r}."
                )
            found = [full]
        for full in found:
            self.check_readable(fs, full)
        return [(full, self.relative(root, full)) for full in found]

    def file_info(self, fs: Any, full: str, rel: str, spec: SourceSpec) -> dict[str, Any]:
        """fsspec info of one file; SourceNotFound when missing."""
        try:
            return fs.info(full)
        except FileNotFoundError as exc:
            _raise_wrapped_driver_error(exc)
            cls, message = self._classify(exc)
            if cls is SourceNotFound:
                message = f"No file {rel!r}{self._where(spec)}."
            raise cls(self.redact(message)) from None

    def _where(self, spec: SourceSpec) -> str:
        return f" in bucket {spec.bucket!r}" if spec.bucket else f" on {self.describe()}"

    def open_file(self, fs: Any, full: str) -> AbstractContextManager[IO[bytes]]:
        """Open one file for reading (a context manager)."""
        return fs.open(full, "rb", block_size=READ_BLOCK_SIZE)

    def spool_dir(self) -> Path | None:
        """Where copies of non-seekable streams go: the platform's temporary directory."""
        tmp = getattr(self.settings, "tmp_dir", None)
        return Path(tmp) if tmp is not None else None

    def check_source(self, spec: SourceSpec) -> None:
        """Check that the file (or the first file of the glob) exists and reads in its format."""
        with self._reader(spec, batch_rows=1, check=True) as reader:
            reader.schema  # noqa: B018 - opening is the check

    @contextmanager
    def open_reader(self, spec: SourceSpec, batch_rows: int) -> Iterator[pa.RecordBatchReader]:
        with self._reader(spec, batch_rows, check=False) as reader:
            yield reader

    @contextmanager
    def _reader(self, spec: SourceSpec, batch_rows: int, check: bool) -> Iterator[pa.RecordBatchReader]:
        with ExitStack() as stack:
            fs = stack.enter_context(self.connected())
            with self.errors():
                files = self.resolve(fs, spec)
                if check:
                    files = files[:1]
                opened = stack.enter_context(
                    formats.open_files(
                        files,
                        lambda p: self.open_file(fs, p),
                        spec.options,
                        batch_rows,
                        check=check,
                        spool_dir=self.spool_dir(),
                        random_access=self.random_access,
                        limits=ReadLimits.from_settings(self.settings),
                    )
                )
            yield pa.RecordBatchReader.from_batches(opened.schema, self._guarded(opened))

    def _guarded(self, reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        with self.errors():
            yield from reader

    # -- writing ---------------------------------------------------------------------------------------------
    write_modes: ClassVar[tuple[WriteMode, ...]] = FILE_WRITE_MODES
    #: Bytes per block of a file being written (fsspec block size; an S3 multipart part).
    write_block_size: ClassVar[int] = 8 << 20

    def normalize_destination(
        self, dest: DestinationSpec, mode: WriteMode, key: Sequence[str] | None
    ) -> DestinationSpec:
        """Check a file destination: a path below the root (never a pattern), its format, the bucket."""
        dest = super().normalize_destination(dest, mode, key)
        if dest.table or dest.database:
            raise Invalid(
                f"table= and database= do not apply to a {self.type_name} destination; give path=.",
                {"field": "table"},
            )
        if (dest.path or "").endswith("/"):
            raise Invalid("A destination path names a file, not a directory.", {"field": "path"})
        path = self.clean_path(dest.path, allow_empty=False)
        if GLOB_CHARS.search(path):
            raise Invalid(f"A destination path cannot be a pattern: {path!r}.", {"field": "path"})
        options = dict(dest.options or {})
        unknown = sorted(set(options) - {"format"})
        if unknown:
            raise Invalid(f"Unknown destination options {unknown}; known: ['format'].", {"field": "options"})
        fmt = file_write.write_format(path, options.get("format"))
        return DestinationSpec(path=path, bucket=self.normalize_bucket(dest.bucket), options={"format": fmt})

    def write(
        self,
        dest: DestinationSpec,
        reader: pa.RecordBatchReader,
        mode: WriteMode,
        key: Sequence[str] | None,
        *,
        job_id: str | None = None,
    ) -> WriteResult:
        """Write the stream as one file under a temporary name, then rename it to the destination.

        ``safe`` fails when the file exists; ``replace`` overwrites it; ``timestamp`` writes a new file whose
        name carries the export time. Missing parent directories are created (and removed again if the write
        fails). On failure the destination is left as it was. The temporary name is
        ``<destination path>.tmp-<job_id>`` (:meth:`discard_staging` removes it after a killed write).
        """
        rel = self.clean_path(dest.path, allow_empty=False)
        staging = self.staging_name(rel, job_id)
        fmt = file_write.write_format(rel, (dest.options or {}).get("format"))
        tap = StreamTap()
        reader = tap.wrap(reader)
        with self.connected() as fs, self.write_errors(tap):
            root = self.root(fs, dest.bucket)
            if mode is WriteMode.timestamp:
                rel = self._free_timestamped_name(fs, root, rel)
            full = self.full_path(root, rel)
            self.check_writable(fs, full)
            if self._exists(fs, full):
                if fs.isdir(full):
                    raise WriteFailed(f"{rel!r} is a directory{self._where_dest(dest)}.")
                if mode is not WriteMode.replace:
                    raise DestinationExists(
                        f"{rel!r} already exists{self._where_dest(dest)}; the safe write mode never "
                        "overwrites a file."
                    )
            created = self._make_parents(fs, root, rel)
            try:
                rows = self.write_file(fs, full, reader, fmt, mode, tmp=self.join(root, staging))
            except BaseException:
                for directory in reversed(created):
                    with contextlib.suppress(Exception):
                        fs.rmdir(directory)
                raise
        return WriteResult(rows, rel)

    def check_writable(self, fs: Any, full_path: str) -> None:
        """Refuse a destination that resolves outside the root (local files check symbolic links)."""
        self.check_readable(fs, full_path)

    @staticmethod
    def staging_name(rel: str, job_id: str | None) -> str:
        """The temporary name a write of ``rel`` by job ``job_id`` uses (a random one without a job)."""
        return f"{rel}.tmp-{job_id or uuid.uuid4().hex[:12]}"

    def discard_staging(self, dest: DestinationSpec, job_id: str) -> None:
        """Remove the temporary file a killed write of export ``job_id`` left next to the destination."""
        rel = safe_relative_path(dest.path, allow_empty=False)
        with self.connected() as fs, self.write_errors():
            tmp = self.join(self.root(fs, dest.bucket), self.staging_name(rel, job_id))
            self.check_writable(fs, tmp)
            if self._exists(fs, tmp):
                fs.rm_file(tmp)

    def write_file(
        self,
        fs: Any,
        full: str,
        reader: pa.RecordBatchReader,
        fmt: str,
        mode: WriteMode,
        tmp: str | None = None,
    ) -> int:
        """Write the stream to ``tmp`` (``<full>.tmp-<id>`` when None), then rename it to ``full``; return
        the rows written.

        The temporary file is removed when anything fails.
        """
        tmp = tmp or f"{full}.tmp-{uuid.uuid4().hex[:12]}"
        try:
            with self.open_for_write(fs, tmp) as sink:
                rows = file_write.encode_stream(reader, sink, fmt)
            self.rename_into_place(fs, tmp, full, overwrite=mode is WriteMode.replace)
        except BaseException:
            with contextlib.suppress(Exception):
                fs.rm_file(tmp)
            raise
        return rows

    def open_for_write(self, fs: Any, full: str) -> AbstractContextManager[IO[bytes]]:
        """Open a file for writing (a context manager)."""
        return fs.open(full, "wb", block_size=self.write_block_size)

    def rename_into_place(self, fs: Any, tmp: str, full: str, overwrite: bool) -> None:
        """Give the written file its final name; without ``overwrite``, never replace an existing file.

        The base implementation checks then renames (FTP servers differ in whether a rename overwrites);
        drivers whose protocol has an atomic no-clobber rename use it.

        Raises:
            DestinationExists: The file appeared meanwhile and ``overwrite`` is False.
        """
        if not overwrite and self._exists(fs, full):
            raise DestinationExists(f"{self.relative(self.root(fs, None), full)!r} appeared while writing.")
        try:
            fs.mv(tmp, full)
        except Exception:
            if not (overwrite and self._exists(fs, full)):
                raise
            fs.rm_file(full)  # a server that refuses to rename over a file
            fs.mv(tmp, full)

    def _exists(self, fs: Any, full: str) -> bool:
        try:
            fs.info(full)
        except FileNotFoundError:
            return False
        return True

    def _free_timestamped_name(self, fs: Any, root: str, rel: str) -> str:
        now = datetime.now(timezone.utc)
        for attempt in range(100):
            candidate = file_write.timestamped(rel, now, attempt)
            if not self._exists(fs, self.full_path(root, candidate)):
                return candidate
        raise DestinationExists(f"Too many exports of {rel!r} in the same second.")

    def _make_parents(self, fs: Any, root: str, rel: str) -> list[str]:
        """Create the missing directories above ``rel``; return those created, outermost first."""
        if self.uses_bucket:
            return []  # object stores have no directories
        created: list[str] = []
        parts = rel.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            above = "/".join(parts[:i])
            directory = f"/{above}" if rel.startswith("/") else self.join(root, above)
            if self._exists(fs, directory):
                continue
            fs.mkdir(directory, create_parents=False)
            created.append(directory)
        return created

    def _where_dest(self, dest: DestinationSpec) -> str:
        return f" in bucket {dest.bucket!r}" if dest.bucket else f" on {self.describe()}"

    @contextmanager
    def write_errors(self, tap: StreamTap | None = None) -> Iterator[None]:
        """Turn filesystem and network exceptions of a write into redacted driver errors.

        The failure of the stream being written (seen by ``tap``) is raised as it is.
        """
        try:
            yield
        except PlatformError:
            raise
        except Exception as exc:  # noqa: BLE001 - backends raise their own classes
            if tap is not None and tap.error is not None:
                raise tap.error from None
            _raise_wrapped_driver_error(exc)
            if isinstance(exc, _BUGS) and self.classify(exc) is None:
                raise
            cls, message = self._classify(exc)
            refused = isinstance(exc, PermissionError) and self.classify(exc) is None
            if isinstance(exc, ftplib.error_perm) and str(exc)[:3] not in ("530", "332"):
                refused = True
            if refused:
                cls, message = WriteFailed, f"The server refused the write: {str(exc).strip() or message}"
            elif cls is not AuthenticationFailed and cls is not ConnectionFailed:
                cls = WriteFailed
            raise cls(self.redact(message)) from None


def _raise_wrapped_driver_error(exc: BaseException) -> None:
    """Raise the driver error (a refused address) that a filesystem wrapped in its own exception, if any.

    fsspec turns any failure of a lookup into ``FileNotFoundError``; the network guard's refusal, raised
    inside the connection, must reach the caller as what it is.
    """
    for err in _chain(exc):
        if isinstance(err, DriverError):
            raise err from None


class BucketDriver(FileDriver):
    """An object store (S3, Cloud Storage): buckets instead of a root directory, and objects written under
    their final name by an upload that completes only after its last byte (no temporary name to rename).

    Subclasses give :meth:`check_bucket`, and may describe a bucket in listings (:meth:`bucket_entry`).
    """

    uses_bucket = True
    absolute_paths = True  # "/lake/x.csv" names "lake/x.csv": object names have no root
    #: What the store calls its objects in messages (``keys``, ``objects``).
    object_word: ClassVar[str] = "objects"
    #: What the store calls one of its datasources in messages.
    datasource_label: ClassVar[str] = "A datasource"
    #: The store's name in messages (``S3``, ``GCS``).
    store_label: ClassVar[str] = ""
    #: The connector options the store takes.
    config_options: ClassVar[tuple[str, ...]] = ("bucket", "root")

    @staticmethod
    def bucket_name(bucket: str, field: str = "bucket") -> str:
        """Check a bucket name by the store's rules.

        Raises:
            Invalid: Not a bucket name of this store (``unsafe_path``).
        """
        raise NotImplementedError

    def check_bucket(self, bucket: str) -> str:
        """Check a bucket name by the store's rules (see :meth:`bucket_name`)."""
        return self.bucket_name(bucket)

    @classmethod
    def normalize_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """The connector's options checked: known ones only, a valid default bucket, a clean key prefix.

        Raises:
            Invalid: An unknown option, a bucket that is not one, a prefix that is not a path.
        """
        options = dict(options)
        unknown = sorted(set(options) - set(cls.config_options))
        if unknown:
            raise Invalid(
                f"Unknown {cls.store_label} connector options {unknown}; known: {list(cls.config_options)}.",
                {"field": "options"},
            )
        if options.get("bucket"):
            options["bucket"] = cls.bucket_name(options["bucket"], "options")
        if "root" in options:
            options["root"] = normalize_root(options["root"]).strip("/")
        return options

    def bucket_entry(self, info: dict[str, Any]) -> dict[str, Any]:
        """The listing entry of one bucket as the filesystem describes it."""
        name = info["name"].strip("/")
        return {"name": name, "path": name, "size": None, "modified_at": None, "is_dir": True}

    def root(self, fs: Any, bucket: str | None) -> str:
        if not bucket:
            return ""
        prefix = self.config.options.get("root") or ""
        return f"{bucket}/{prefix}" if prefix else bucket

    def normalize_bucket(self, bucket: str | None) -> str | None:
        bucket = bucket or self.config.options.get("bucket")
        if not bucket:
            raise Invalid(f"{self.datasource_label} needs bucket=.", {"field": "bucket"})
        return self.check_bucket(bucket)

    def normalize_list_bucket(self, bucket: str | None) -> str | None:
        bucket = bucket or self.config.options.get("bucket")
        return self.check_bucket(bucket) if bucket else None

    def list_files(self, path: str = "", bucket: str | None = None) -> list[dict[str, Any]]:
        if not self.normalize_list_bucket(bucket):
            if path:
                raise Invalid(
                    f"Give bucket= to list the {self.object_word} under a path.", {"field": "bucket"}
                )
            with self.connected() as fs, self.errors():
                buckets = fs.ls("", detail=True)
            return sorted((self.bucket_entry(b) for b in buckets), key=lambda e: e["name"])
        return super().list_files(path, bucket)

    def test_target(self, fs: Any) -> str:
        return self.root(fs, self.config.options.get("bucket"))

    def write_file(
        self,
        fs: Any,
        full: str,
        reader: pa.RecordBatchReader,
        fmt: str,
        mode: WriteMode,
        tmp: str | None = None,
    ) -> int:
        """Write the object under its final name, visible only once the upload completes (a multipart or
        resumable upload committed after the last byte): ``tmp`` is unused, there is no temporary object.

        Raises:
            DestinationExists: The object appeared while writing and the mode does not replace it.
        """
        sink = fs.open(full, "wb", autocommit=False, block_size=self.write_block_size)
        try:
            rows = file_write.encode_stream(reader, sink, fmt)
            sink.close()  # sends what is buffered; nothing is visible before commit()
            if mode is not WriteMode.replace and self._exists(fs, full):
                raise DestinationExists(f"{full!r} appeared while writing.")
            sink.commit()
        except BaseException:
            try:
                sink.discard()  # aborts the upload: no object, no parts left
            finally:
                sink.closed = True
            raise
        return rows

    def discard_staging(self, dest: DestinationSpec, job_id: str) -> None:
        """Nothing to remove: a killed write leaves no object, only an unfinished upload that is invisible
        (on S3 a bucket lifecycle rule ``AbortIncompleteMultipartUpload`` reclaims its parts)."""
        return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


__all__ = ["FileDriver", "GLOB_CHARS", "normalize_root", "parse_host", "safe_relative_path", "to_datetime"]
