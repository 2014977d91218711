"""The module-level default client, as in the Prevision SDK (``pio.init_client(url, token)``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import Client

_url: str | None = None
_token: str | None = None
_client: Client | None = None


def init_client(url: str | None = None, token: str | None = None, **kwargs: object) -> Client:
    """Set the default client used by every call that is not given one.

    Args:
        url: Platform URL; None means ``PREVISIO_URL`` or, if unset, the embedded local platform.
        token: API token; None means ``PREVISIO_TOKEN`` (or the local platform's own token).
        **kwargs: Other :class:`~previsio_sdk.Client` options (``timeout``, ``session``, ``home``...).

    Returns:
        The new default client.
    """
    global _url, _token, _client
    from .client import Client

    _url, _token = url, token
    _client = Client(url, token, **kwargs)  # type: ignore[arg-type]
    return _client


def configured_url() -> str | None:
    """The URL given to :func:`init_client`, if any."""
    return _url


def configured_token() -> str | None:
    """The token given to :func:`init_client`, if any."""
    return _token


def get_client(client: Client | None = None) -> Client:
    """``client`` if given, else the default client (created on first use)."""
    global _client
    if client is not None:
        return client
    if _client is None:
        from .client import Client

        _client = Client()
    return _client


def reset() -> None:
    """Forget the default client and what :func:`init_client` was given (tests)."""
    global _url, _token, _client
    _url = _token = None
    _client = None
