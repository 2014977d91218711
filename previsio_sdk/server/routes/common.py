"""Helpers shared by the routers."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core import Platform
from ..errors import Conflict, Invalid, PlatformError

#: File formats accepted as uploads, by file name extension.
UPLOAD_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def ensure_unique_name(
    session: Session, model: Any, project_id: str, name: str, kind: str, exclude_id: str | None = None
) -> None:
    """Raise a conflict naming the existing resource when ``name`` is taken in the project."""
    existing = session.scalar(select(model).where(model.project_id == project_id, model.name == name))
    if existing is not None and existing.id != exclude_id:
        raise Conflict(
            f"A {kind} named {name!r} already exists in this project (id {existing.id}).",
            {"existing_id": existing.id, "name": name},
        )


def upload_format(format: str | None, file_name: str | None) -> str:
    """The format of an upload: ``format`` when given, else from the file name's extension.

    Raises:
        Invalid: Neither tells it.
    """
    fmt = format or UPLOAD_FORMATS.get(Path(file_name or "").suffix.lower())
    if fmt is None:
        raise Invalid(
            "Cannot tell the file's format; pass format=csv|parquet or a file_name ending so.",
            {"field": "format"},
        )
    return fmt


def _too_large(limit: int) -> PlatformError:
    return PlatformError(413, "payload_too_large", f"The upload exceeds the limit of {limit} bytes.")


def refuse_declared_oversize(request: Request, platform: Platform) -> None:
    """Answer 413 at once when the declared Content-Length is over the upload limit (nothing is read)."""
    limit = platform.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)


async def receive_upload(request: Request, platform: Platform, fmt: str) -> Path:
    """Stream the raw request body to a new temporary directory and return the file's path.

    The size is checked while the body streams in (a sender may not declare it). On any error the directory
    is removed; after success the caller owns it (and removes it if it cannot use the file).

    Raises:
        PlatformError: 413 over the upload limit.
        Invalid: The body is empty.
    """
    limit = platform.settings.max_upload_bytes
    upload_dir = platform.store.new_tmp_path(suffix=".upload")
    upload_dir.mkdir()
    target = upload_dir / f"data.{fmt}"
    size = 0
    try:
        with open(target, "wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                out.write(chunk)
        if size == 0:
            raise Invalid("The upload is empty.", {"field": "body"})
    except BaseException:
        shutil.rmtree(upload_dir, ignore_errors=True)
        raise
    return target
