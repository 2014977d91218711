"""SQLite files: which ones a connector may open, and how (a plain path; reads guarded by the engine itself).

An SQLite connector names a file of the platform's machine, so it is confined like a ``local`` connector:

* the file must be at or below one of the operator's ``sqlite_roots`` (``PREVISIO_SQLITE_ROOTS``); a platform
  without roots refuses SQLite connectors (the embedded local platform, whose one user is its operator,
  allows any path when the setting is unset);
* the platform's own files (its home, data directory, metadata database, key and token files) are refused
  in every mode, judged on the fully resolved path (symbolic links, ``..``) and on file identity (a hard
  link, another spelling of the same directory on a case-insensitive disk);
* both checks run when the connector is stored and again at every open, on the resolved path, which is the
  one opened.

The path is a plain path, never a URI: SQLite is given ``file:`` followed by the resolved path with every
special character percent-encoded, so ``%68``, ``?mode=rw`` or ``#`` in a name are characters of the name.
A reading connection is read-only three times over: the file is opened ``mode=ro``, ``PRAGMA query_only`` is
on, and an authorizer lets only reads through (no write, ``ATTACH``, pragma change or extension loading).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from ..errors import Invalid
from .local import _inside

#: Functions no SQLite connection of the platform may call (files, extensions, the shell's helpers).
FORBIDDEN_FUNCTIONS = frozenset({"load_extension", "writefile", "readfile", "fts3_tokenizer", "edit"})

#: Pragmas a reading connection may run with an argument: they read the schema (SQLAlchemy's reflection).
READ_PRAGMAS = frozenset(
    {
        "table_info",
        "table_xinfo",
        "index_list",
        "index_info",
        "index_xinfo",
        "foreign_key_list",
        "database_list",
        "table_list",
        "collation_list",
    }
)

_READ_ACTIONS = frozenset(
    {
        sqlite3.SQLITE_SELECT,
        sqlite3.SQLITE_READ,
        sqlite3.SQLITE_FUNCTION,
        sqlite3.SQLITE_TRANSACTION,
        sqlite3.SQLITE_SAVEPOINT,
        getattr(sqlite3, "SQLITE_RECURSIVE", 33),
    }
)


def own_paths(settings: Any) -> list[str]:
    """The platform's own files and directories (resolved): its home, data directory and metadata store."""
    own: list[str] = []
    for attr in ("home", "data_dir"):
        value = getattr(settings, attr, None)
        if value is not None:
            own.append(os.path.realpath(str(value)))
    metadata = str(getattr(settings, "metadata_url", "") or "")
    if metadata.startswith("sqlite"):
        database = sa.engine.make_url(metadata).database
        if database and database != ":memory:":
            real = os.path.realpath(database)
            own += [real, *(real + suffix for suffix in ("-wal", "-shm", "-journal"))]
    return own


def _identities(paths: list[str]) -> set[tuple[int, int]]:
    """(device, inode) of each existing path, and of the files directly inside each directory."""
    found: set[tuple[int, int]] = set()
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        found.add((st.st_dev, st.st_ino))
        if os.path.isdir(path):
            try:
                entries = list(os.scandir(path))
            except OSError:
                continue
            for entry in entries:
                try:
                    if entry.is_file():
                        est = entry.stat()
                        found.add((est.st_dev, est.st_ino))
                except OSError:
                    continue
    return found


def _is_own(real: str, own: list[str]) -> bool:
    if any(_inside(os.path.normcase(real), os.path.normcase(p)) for p in own):
        return True
    identities = _identities(own)
    if not identities:
        return False
    current = Path(real)
    for candidate in (current, *current.parents):  # a hard link, or the same directory spelt otherwise
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in identities:
            return True
    return False


def allowed_sqlite_file(database: str, settings: Any) -> str:
    """The resolved path of an SQLite connector's file, once checked against the platform's policy.

    Args:
        database: The connector's path, as given.
        settings: The platform's settings; None outside a platform (no policy to apply).

    Returns:
        The resolved path: the one to open.

    Raises:
        Invalid: The path is one of the platform's own files (``unsafe_path``), or not inside a directory
            the operator allows (``root_not_allowed``).
    """
    real = os.path.realpath(database)
    if settings is None:
        return real
    if _is_own(real, own_paths(settings)):
        raise Invalid(
            "The platform's own files cannot be used through a connector.",
            {"field": "database"},
            code="unsafe_path",
        )
    roots = [os.path.realpath(str(r)) for r in getattr(settings, "sqlite_roots", None) or []]
    if not roots:
        raise Invalid(
            "This platform allows no SQLite connectors: its operator must list the directories their "
            "files may be in, in PREVISIO_SQLITE_ROOTS.",
            {"field": "database"},
            code="root_not_allowed",
        )
    if not any(_inside(real, root) for root in roots):
        raise Invalid(
            f"The SQLite file {database!r} is not inside a directory this platform allows "
            f"({', '.join(roots)}; setting PREVISIO_SQLITE_ROOTS).",
            {"field": "database"},
            code="root_not_allowed",
        )
    return real


def _read_only_authorizer(action: int, arg1: str | None, arg2: str | None, _db: Any, _src: Any) -> int:
    """Let reads through, deny everything else (writes, ATTACH, pragma changes, dangerous functions)."""
    if action == sqlite3.SQLITE_FUNCTION:
        return sqlite3.SQLITE_DENY if (arg2 or "").lower() in FORBIDDEN_FUNCTIONS else sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA:
        if arg2 is None or (arg1 or "").lower() in READ_PRAGMAS:
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK if action in _READ_ACTIONS else sqlite3.SQLITE_DENY


def _writer_authorizer(action: int, _arg1: str | None, arg2: str | None, _db: Any, _src: Any) -> int:
    """An export's own statements: anything but ATTACH/DETACH and the dangerous functions."""
    if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in FORBIDDEN_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def connect_sqlite(real_path: str, *, read_only: bool, timeout: float, **kwargs: Any) -> sqlite3.Connection:
    """Open the resolved SQLite file ``real_path`` as a plain path.

    Args:
        real_path: A path returned by :func:`allowed_sqlite_file`.
        read_only: Open ``mode=ro`` with ``query_only`` and the reading authorizer; otherwise ``mode=rw``
            (the file must exist either way: a mistyped path never creates a file).
        timeout: Seconds to wait for a lock.
        kwargs: More arguments of :func:`sqlite3.connect` (``isolation_level``).

    Raises:
        sqlite3.Error: The file cannot be opened.
    """
    uri = f"file:{quote(real_path, safe='/')}?mode={'ro' if read_only else 'rw'}"
    con = sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False, **kwargs)
    try:
        if read_only:
            con.execute("PRAGMA query_only = ON")
            con.set_authorizer(_read_only_authorizer)
        else:
            con.set_authorizer(_writer_authorizer)
    except BaseException:
        con.close()
        raise
    return con
