"""Errors of the platform, each mapped to an HTTP status and a stable error code."""

from __future__ import annotations

from typing import Any


class PlatformError(Exception):
    """An error the platform reports to the caller as ``{"error": {"code", "message", "details"}}``.

    Args:
        status: HTTP status of the answer (4xx for the caller's mistakes).
        code: Stable machine-readable code, such as ``not_found``.
        message: Sentence a person understands; never holds a secret.
        details: Optional JSON-serialisable extra information.
    """

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


class NotFound(PlatformError):
    """The resource does not exist or is not visible to the caller."""

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(404, "not_found", f"No {kind} with id {ident!r}.")


class Conflict(PlatformError):
    """The request clashes with an existing resource."""

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(409, "conflict", message, details)


class Invalid(PlatformError):
    """The values sent cannot be used."""

    def __init__(self, message: str, details: Any = None, code: str = "validation_error") -> None:
        super().__init__(422, code, message, details)


class LimitExceeded(PlatformError):
    """The work passed a limit of the platform (memory, size, depth, columns): 422 ``limit_exceeded``."""

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(422, "limit_exceeded", message, details)
