"""The exception hierarchy of previsio_sdk.

Every error raised by the SDK derives from :class:`PrevisioError`. Errors that come from an HTTP answer of
the platform are :class:`APIError` subclasses and carry the HTTP status, the platform's error code, its
message and the request id, so a report can quote the exact request. None of them ever holds a token or
a password.
"""

from __future__ import annotations

from typing import Any


class PrevisioError(Exception):
    """Base class of every error raised by previsio_sdk.

    Attributes:
        message: What went wrong, in words (never holds a secret).
        status: HTTP status of the platform's answer, when there was one.
        code: The platform's stable error code, such as ``not_found`` or ``source_not_found``.
        request_id: Id of the request on the platform (``X-Request-ID``), to quote in a report.
        details: Extra information from the platform (for validation errors: the fields at fault).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.details = details

    def __str__(self) -> str:
        prefix = f"[{self.request_id}] " if self.request_id else ""
        status = f"{self.status} " if self.status else ""
        code = f"{self.code}: " if self.code else ""
        return f"{prefix}{status}{code}{self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, status={self.status!r}, code={self.code!r}, "
            f"request_id={self.request_id!r})"
        )


#: Prevision.io's name of the base error (``previsionio.utils.PrevisionException``): ``except
#: PrevisionException`` in a previsionio script catches every error of this SDK.
PrevisionException = PrevisioError


class ConfigurationError(PrevisioError, ValueError):
    """The SDK was called with arguments or settings it cannot use (checked before any request)."""


class ServerUnreachableError(PrevisioError, ConnectionError):
    """The platform could not be reached, or the local platform could not be started."""


class APIError(PrevisioError):
    """The platform answered a request with an error status."""


class BadRequestError(APIError, ValueError):
    """The request was malformed (HTTP 400)."""


class ValidationError(APIError, ValueError):
    """The platform refused the values sent (HTTP 422): an empty name, an unknown driver, a missing table."""


class AuthenticationError(APIError):
    """No token, or a token the platform does not accept (HTTP 401)."""


class PermissionDeniedError(APIError, PermissionError):
    """The token is valid but may not do this (HTTP 403)."""


class NotFoundError(APIError, LookupError):
    """The resource does not exist, or is not visible to this token (HTTP 404)."""


class ConnectorNotFoundError(NotFoundError, KeyError):
    """No connector of that name in the project (``project.connectors[name]``); the message suggests names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return NotFoundError.__str__(self)


class ArchiveError(PrevisioError, ValueError):
    """A backup archive cannot be used: not an archive, another format or version, truncated or corrupt."""


class ConflictError(APIError):
    """The request clashes with what exists, such as a duplicate name in a project (HTTP 409)."""


class PayloadTooLargeError(APIError, ValueError):
    """The request body or upload is larger than the platform accepts (HTTP 413)."""


class RateLimitError(APIError):
    """Too many requests (HTTP 429)."""


class ServerError(APIError):
    """The platform failed to handle the request (HTTP 5xx); this is a platform bug or outage."""


class JobFailedError(PrevisioError):
    """A platform job (snapshot, upload, export) finished in failure; ``code`` and ``message`` say why."""

    def __init__(self, message: str, *, job_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.job_id = job_id


class JobCancelledError(JobFailedError):
    """A platform job was cancelled (``job.cancel()``) before it finished: no dataset was kept, an export's
    destination was left as it was."""


class JobTimeoutError(PrevisioError, TimeoutError):
    """Waiting for a platform job took longer than the timeout given; the job itself goes on."""

    def __init__(self, message: str, *, job_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.job_id = job_id


_STATUS_TO_ERROR: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitError,
}


def error_class_for_status(status: int) -> type[APIError]:
    """Return the :class:`APIError` subclass that stands for an HTTP status.

    Args:
        status: The HTTP status code of the answer.

    Returns:
        The matching subclass; :class:`ServerError` for any 5xx and :class:`APIError` for other codes.
    """
    if status in _STATUS_TO_ERROR:
        return _STATUS_TO_ERROR[status]
    if status >= 500:
        return ServerError
    if 400 <= status < 500:
        return BadRequestError
    return APIError


__all__ = [
    "APIError",
    "ArchiveError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "ConnectorNotFoundError",
    "JobCancelledError",
    "JobFailedError",
    "JobTimeoutError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PrevisioError",
    "PrevisionException",
    "RateLimitError",
    "ServerError",
    "ServerUnreachableError",
    "ValidationError",
    "error_class_for_status",
]
