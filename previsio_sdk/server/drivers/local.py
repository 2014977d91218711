"""Files of a directory on the platform's own machine.

A local connector is rooted in a directory that the platform operator allows (``PREVISIO_LOCAL_ROOTS``: the
root must be one of those directories or lie below one). Every path is resolved with its symbolic links and
must stay inside the connector's root: a link pointing out of it is refused, never followed.
"""

from __future__ import annotations

import os
import posixpath
from contextlib import AbstractContextManager
from typing import IO, Any

from ..errors import Invalid
from .base import ConnectorConfig, DestinationExists, InvalidSource, SourceNotFound, register
from .files import GLOB_CHARS, FileDriver, normalize_root, safe_relative_path


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


@register("local")
class LocalDriver(FileDriver):
    """Files under ``options["root"]``, a directory of the platform's machine allowed by its operator."""

    @classmethod
    def normalize_config(cls, config: ConnectorConfig) -> ConnectorConfig:
        options = dict(config.options)
        unknown = sorted(set(options) - {"root"})
        if unknown:
            raise Invalid(
                f"Unknown local connector options {unknown}; known: ['root'].", {"field": "options"}
            )
        options["root"] = normalize_root(options.get("root") or config.host, absolute=True)
        if config.secrets.get("password") or config.username:
            raise Invalid("A local connector takes no username or password.", {"field": "username"})
        return config.evolve(host=None, port=None, username=None, database=None, options=options)

    def allowed_roots(self) -> list[str]:
        """The directories the operator allows, resolved."""
        roots = getattr(self.settings, "local_roots", None) or []
        return [os.path.realpath(str(r)) for r in roots]

    def real_root(self) -> str:
        """The connector's root, resolved, checked against the allowed roots.

        Raises:
            Invalid: The platform allows no local roots, or not this one.
        """
        root = os.path.realpath(self.config.options.get("root") or "")
        allowed = self.allowed_roots()
        if not allowed:
            raise Invalid(
                "This platform allows no local connectors: its operator must list the directories "
                "they may read in PREVISIO_LOCAL_ROOTS.",
                {"field": "root"},
                code="root_not_allowed",
            )
        if not any(_inside(root, a) for a in allowed):
            raise Invalid(
                f"The root {self.config.options.get('root')!r} is not inside a directory this "
                f"platform allows ({', '.join(allowed)}).",
                {"field": "root"},
                code="root_not_allowed",
            )
        return root

    def check_config(self) -> None:
        self.real_root()

    def filesystem(self) -> Any:
        from fsspec.implementations.local import LocalFileSystem

        root = self.real_root()
        if not os.path.isdir(root):
            raise SourceNotFound(f"The root directory {self.config.options.get('root')!r} does not exist.")
        return LocalFileSystem(skip_instance_cache=True)

    def root(self, fs: Any, bucket: str | None) -> str:
        return self.real_root()

    def relative(self, root: str, full: str) -> str:
        return posixpath.relpath(full, root) if full != root else ""

    def check_readable(self, fs: Any, full_path: str) -> None:
        root = self.real_root()
        real = os.path.realpath(full_path)
        if not _inside(real, root):
            raise Invalid(
                f"{self.relative(root, full_path)!r} leads out of the connector's root (a symbolic link); "
                "it cannot be read.",
                {"field": "path"},
                code="unsafe_path",
            )

    def list_files(self, path: str = "", bucket: str | None = None) -> list[dict[str, Any]]:
        rel = safe_relative_path(path)
        with self.connected() as fs, self.errors():
            if not GLOB_CHARS.search(rel):
                self.check_readable(fs, self.join(self.real_root(), rel))
        return super().list_files(rel, bucket)

    def entry(self, fs: Any, root: str, info: dict[str, Any]) -> dict[str, Any] | None:
        real = os.path.realpath(str(info.get("name", "")))
        if not _inside(real, root):
            return None  # a link out of the root is not shown
        return super().entry(fs, root, info)

    def open_file(self, fs: Any, full: str) -> AbstractContextManager[IO[bytes]]:
        real = os.path.realpath(full)
        if not _inside(real, self.real_root()):
            raise Invalid(
                "The path leads out of the connector's root.", {"field": "path"}, code="unsafe_path"
            )
        if os.path.isdir(real):
            raise InvalidSource(f"{self.relative(self.real_root(), full)!r} is a directory.")
        return open(real, "rb", buffering=1 << 20)

    def test_target(self, fs: Any) -> str:
        return self.real_root()

    # -- writing ---------------------------------------------------------------------------------------------
    def check_writable(self, fs: Any, full_path: str) -> None:
        root = self.real_root()
        if not _inside(os.path.realpath(full_path), root):
            raise Invalid(
                f"{self.relative(root, full_path)!r} leads out of the connector's root (a symbolic link); "
                "it cannot be written.",
                {"field": "path"},
                code="unsafe_path",
            )

    def open_for_write(self, fs: Any, full: str) -> AbstractContextManager[IO[bytes]]:
        self.check_writable(fs, full)
        return open(full, "xb", buffering=1 << 20)

    def rename_into_place(self, fs: Any, tmp: str, full: str, overwrite: bool) -> None:
        """``os.replace`` to overwrite; a hard link (which fails when the name is taken) otherwise."""
        self.check_writable(fs, full)
        if overwrite:
            os.replace(tmp, full)
            return
        try:
            os.link(tmp, full)
        except FileExistsError:
            raise DestinationExists(
                f"{self.relative(self.real_root(), full)!r} appeared while writing."
            ) from None
        os.unlink(tmp)

    def describe(self) -> str:
        return f"local directory {self.config.options.get('root')}"
