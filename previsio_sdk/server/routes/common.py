"""Helpers shared by the routers."""

from __future__ import annotations

from pathlib import Path

from anyio import to_thread
from fastapi import Request

from ..core import Platform
from ..errors import Invalid, PlatformError
from ..services.common import ensure_unique_name  # noqa: F401  (the routers' import)

#: File formats accepted as uploads, by file name extension.
UPLOAD_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


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


#: Bytes of an upload gathered before they are handed to the store (one write call of a worker thread).
UPLOAD_WRITE_BYTES = 4 << 20


async def receive_upload(request: Request, platform: Platform, fmt: str) -> str:
    """Stream the raw request body into an upload staged in the dataset store; return its reference.

    The file goes to the store, not to this replica's disk, so that whichever process runs the job reads it.
    The size is checked while the body streams in (a sender may not declare it). On any error the staged
    upload is removed; after success the caller owns it (and removes it with ``store.remove_upload`` if it
    cannot use it).

    Raises:
        PlatformError: 413 over the upload limit.
        Invalid: The body is empty.
    """
    limit = platform.settings.max_upload_bytes
    sink = await to_thread.run_sync(platform.store.new_upload, fmt)
    size = 0
    pending: list[bytes] = []
    pending_bytes = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            pending.append(chunk)
            pending_bytes += len(chunk)
            if pending_bytes >= UPLOAD_WRITE_BYTES:
                await to_thread.run_sync(sink.write, b"".join(pending))
                pending, pending_bytes = [], 0
        if size == 0:
            raise Invalid("The upload is empty.", {"field": "body"})
        if pending:
            await to_thread.run_sync(sink.write, b"".join(pending))
        await to_thread.run_sync(sink.finish)
    except BaseException:
        await to_thread.run_sync(sink.abort)
        raise
    return sink.ref
