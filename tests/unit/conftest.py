"""Fixtures of the unit suite: an explicit client, a mocked transport, and no ambient configuration.

Every test starts and ends with no default client and no ``PREVISIO_*`` variable, and the embedded local
platform can never be started: a test that forgets to pass a client fails loudly instead of spawning a server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

import previsio_sdk as pio
from previsio_sdk import _default, config, local

from .payloads import BASE_URL, TOKEN, MockApi


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Start each test with no default client, no PREVISIO_*/PREVISION_* variable, default settings, and no
    way to start a local platform."""
    for name in (
        "PREVISIO_URL",
        "PREVISIO_TOKEN",
        "PREVISIO_HOME",
        "PREVISION_URL",
        "PREVISION_MASTER_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    for setting in ("default_timeout", "request_retries", "request_retry_time"):
        monkeypatch.setattr(config, setting, getattr(config, setting))  # restored after the test

    def _refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a unit test tried to start the embedded local platform")

    monkeypatch.setattr(local, "ensure_local_platform", _refuse)
    _default.reset()
    yield
    _default.reset()


@pytest.fixture
def client() -> pio.Client:
    """A client of a platform that does not exist (every answer comes from the ``api`` mock)."""
    return pio.Client(url=BASE_URL, token=TOKEN)


@pytest.fixture
def api() -> Iterator[MockApi]:
    """The mocked platform: register answers with ``api.add``; every registered answer must be used."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield MockApi(mock)


@pytest.fixture
def backoffs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make retries instant; the list collects the attempt number of each backoff."""
    attempts: list[int] = []
    monkeypatch.setattr(pio.Client, "_backoff", staticmethod(attempts.append))
    return attempts
