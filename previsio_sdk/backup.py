"""Backup archives of a project, and their restoration on any platform.

An archive is an uncompressed tar file (Parquet is compressed already) holding:

- ``datasets/<n>.parquet``: the Parquet file of each dataset, as the platform stores it;
- ``manifest.json``, last: the archive's format (``"previsio-backup"``) and version (:data:`FORMAT_VERSION`),
  the project, its connectors (no secret, unless encrypted with a passphrase), datasources, exporters, and for
  each dataset its file, SHA-256, size in bytes, number of rows, schema and datasource.

:func:`restore` checks the format, the version and every file's size and checksum before it creates
anything, so a corrupt or truncated archive is refused whole. Files are streamed through temporary files: the
memory used does not grow with the datasets.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._default import get_client
from ._transfer import (
    DatasetEntry,
    ProjectPlan,
    apply_plan,
    find_or_create_project,
    plan_from_project,
    sha256_of,
)
from .client import Client, format_path
from .errors import ArchiveError, ConfigurationError

if TYPE_CHECKING:
    from .project import Project

#: Value of ``format`` in every manifest.
FORMAT_NAME = "previsio-backup"
#: Version of the archive format this SDK writes; it restores this version and the ones before it.
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
#: A manifest describes resources, not data: anything larger is not one.
MAX_MANIFEST_BYTES = 64 << 20
_CHUNK = 1 << 20


def backup_project(
    project: Project,
    path: str | os.PathLike[str],
    include_secrets: bool = False,
    passphrase: str | None = None,
) -> Path:
    """Write a backup archive of ``project`` to ``path`` (see :meth:`Project.backup`)."""
    if include_secrets and not passphrase:
        raise ConfigurationError(
            "include_secrets=True needs passphrase=: secrets are stored encrypted with it."
        )
    if include_secrets and passphrase is not None and len(passphrase) < 8:
        raise ConfigurationError("The passphrase must be at least 8 characters long.")
    target = Path(path)
    plan = plan_from_project(project)
    client = project.client
    connectors = []
    for entry in plan.connectors:
        connector_id = entry.pop("_id")
        if include_secrets and entry["secret_fields"]:
            entry["secrets"] = client.post(
                format_path("/connectors/{}/secrets/export", connector_id), {"passphrase": passphrase}
            )
        connectors.append(entry)
    manifest: dict[str, Any] = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(),
        "project": plan.project,
        "connectors": connectors,
        "datasources": plan.datasources,
        "exporters": plan.exporters,
        "datasets": [],
    }
    part = target.with_name(target.name + ".part")
    try:
        with tempfile.TemporaryDirectory(prefix="previsio-backup-") as tmp, tarfile.open(part, "w") as tar:
            for n, entry in enumerate(plan.datasets, start=1):
                local = Path(tmp) / "dataset.parquet"
                entry.fetch(local)
                member = f"datasets/{n}.parquet"
                manifest["datasets"].append(
                    {
                        "name": entry.name,
                        "file": member,
                        "sha256": sha256_of(local),
                        "size_bytes": local.stat().st_size,
                        "num_rows": entry.num_rows,
                        "schema": entry.schema,
                        "datasource": entry.datasource,
                    }
                )
                tar.add(local, arcname=member, recursive=False)
                local.unlink()
            data = json.dumps(manifest, indent=2).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size = len(data)
            info.mtime = int(datetime.now(timezone.utc).timestamp())
            tar.addfile(info, io.BytesIO(data))
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return target


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Open an archive, check its format, version and every file's size and SHA-256; return its manifest.

    Raises:
        ArchiveError: Not a readable archive, another format or a newer version, a file missing, truncated
            or corrupt. Nothing is created before this check passes.
    """
    where = os.fspath(path)
    try:
        with tarfile.open(where, "r:") as tar:
            try:
                manifest_member = tar.getmember(MANIFEST)
            except KeyError:
                raise ArchiveError(
                    f"{where!r} has no {MANIFEST}: it is truncated or not a previsio backup."
                ) from None
            if manifest_member.size > MAX_MANIFEST_BYTES:
                raise ArchiveError(f"{where!r} has a manifest of {manifest_member.size} bytes: not a backup.")
            fh = tar.extractfile(manifest_member)
            try:
                manifest = json.loads(fh.read()) if fh is not None else None
            except ValueError:
                manifest = None
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
                raise ArchiveError(f"{where!r} is not a previsio backup (its manifest is unreadable).")
            version = manifest.get("version")
            if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
                raise ArchiveError(
                    f"{where!r} is a backup of format version {version!r}; this SDK reads versions 1 to "
                    f"{FORMAT_VERSION}: upgrade previsio_sdk."
                )
            for entry in manifest.get("datasets") or []:
                _check_member(tar, entry, where)
    except (tarfile.TarError, EOFError, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise ArchiveError(f"No backup archive at {where!r}.") from None
        raise ArchiveError(
            f"{where!r} is not a readable backup archive ({exc}): truncated or corrupt."
        ) from None
    return manifest


def _check_member(tar: tarfile.TarFile, entry: dict[str, Any], where: str) -> None:
    name = entry.get("file")
    try:
        member = tar.getmember(name)
    except KeyError:
        raise ArchiveError(
            f"{where!r} lacks {name!r} (dataset {entry.get('name')!r}): it is truncated."
        ) from None
    if member.size != entry.get("size_bytes"):
        raise ArchiveError(
            f"{name!r} of {where!r} holds {member.size} bytes, not {entry.get('size_bytes')}: the archive is "
            "corrupt."
        )
    fh = tar.extractfile(member)
    if fh is None:
        raise ArchiveError(f"{name!r} of {where!r} is not a file.")
    import hashlib

    digest = hashlib.sha256()
    read = 0
    while chunk := fh.read(_CHUNK):
        digest.update(chunk)
        read += len(chunk)
    if read != member.size:
        raise ArchiveError(f"{name!r} of {where!r} is cut short: the archive is truncated.")
    if digest.hexdigest() != entry.get("sha256"):
        raise ArchiveError(
            f"The checksum of {name!r} (dataset {entry.get('name')!r}) does not match the manifest: the "
            "archive is corrupt."
        )


def decrypt_secrets(sealed: Mapping[str, Any], passphrase: str) -> dict[str, str]:
    """Decrypt the secrets of a connector, encrypted by the platform for a backup, with their passphrase.

    Raises:
        ConfigurationError: The passphrase is wrong, or the data is not what the platform writes.
    """
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

    kdf = sealed.get("kdf") or {}
    if kdf.get("name") != "scrypt" or sealed.get("cipher", "aes-256-gcm") != "aes-256-gcm":
        raise ConfigurationError(f"Unknown secret encryption {kdf.get('name')!r}/{sealed.get('cipher')!r}.")
    try:
        salt = base64.b64decode(kdf["salt"])
        blob = base64.b64decode(sealed["ciphertext"])
        key = Scrypt(salt=salt, length=32, n=int(kdf["n"]), r=int(kdf["r"]), p=int(kdf["p"])).derive(
            passphrase.encode()
        )
        clear = AESGCM(key).decrypt(blob[:12], blob[12:], b"previsio-secrets")
    except InvalidTag:
        raise ConfigurationError("The passphrase does not decrypt the archive's secrets.") from None
    except (KeyError, ValueError, TypeError) as exc:
        raise ConfigurationError(f"The archive's encrypted secrets are malformed: {exc}") from None
    return json.loads(clear)


def restore_project(
    path: str | os.PathLike[str],
    name: str | None = None,
    client: Client | None = None,
    secrets: Mapping[str, Mapping[str, str]] | None = None,
    passphrase: str | None = None,
) -> Project:
    """Recreate the project of a backup archive (see :meth:`Project.restore`)."""
    client = get_client(client)
    manifest = read_manifest(path)
    secrets = dict(secrets or {})
    for entry in manifest.get("connectors") or []:
        sealed = entry.get("secrets")
        if sealed and passphrase and entry["name"] not in secrets:
            secrets[entry["name"]] = decrypt_secrets(sealed, passphrase)  # before anything is created
    where = os.fspath(path)
    plan = ProjectPlan(
        project=manifest["project"],
        connectors=[{k: v for k, v in c.items() if k != "secrets"} for c in manifest.get("connectors") or []],
        datasources=manifest.get("datasources") or [],
        exporters=manifest.get("exporters") or [],
        datasets=[
            DatasetEntry(
                name=d["name"],
                datasource=d.get("datasource"),
                num_rows=d.get("num_rows", 0),
                schema=d.get("schema") or [],
                fetch=lambda target, member=d["file"]: _extract(where, member, target),
            )
            for d in manifest.get("datasets") or []
        ],
    )
    project = find_or_create_project(client, name or plan.project["name"], plan.project.get("description"))
    apply_plan(plan, project, secrets=secrets)
    return project


def _extract(archive: str, member: str, target: Path) -> None:
    with tarfile.open(archive, "r:") as tar:
        fh = tar.extractfile(member)
        if fh is None:  # checked by read_manifest
            raise ArchiveError(f"{member!r} of {archive!r} is not a file.")
        with open(target, "wb") as out:
            shutil.copyfileobj(fh, out, _CHUNK)
