"""Connection time limits of the SQL driver, against servers that accept and then say nothing."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from previsio_sdk.server.drivers import ConnectorConfig
from previsio_sdk.server.drivers.sql import SQLDriver


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


@pytest.mark.parametrize("driver", ["mysql", "postgresql"])
def test_a_silent_server_fails_the_test_within_the_time_limit(silent_port: int, driver: str) -> None:
    """A server that accepts but never speaks fails test() with connection_failed, in bounded time."""
    config = SQLDriver.normalize_config(
        ConnectorConfig(type="sql", driver=driver, host="127.0.0.1", port=silent_port, username="someone")
    )
    started = time.monotonic()
    outcome = SQLDriver(config, connect_timeout=1).test()
    elapsed = time.monotonic() - started
    assert not outcome.ok
    assert outcome.code == "connection_failed"
    assert elapsed < 10, f"test() took {elapsed:.1f}s against a silent server"
