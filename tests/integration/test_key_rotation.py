"""`previsio rotate-key`: every connector secret re-encrypted under a new key while the platform works.

A platform holds many connectors; threads keep testing a PostgreSQL connector (which needs its decrypted
password), reading connectors and changing a password while the rotation runs in another process. No call
may fail; afterwards the key file holds the new key only, and the metadata store no old ciphertext.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    PG_HOST,
    PG_PORT,
    PG_SCRAM_PASSWORD,
    PG_SCRAM_USER,
    SUITE_SECRETS,
    start_platform,
    stop_platform,
)
from cryptography.fernet import Fernet, InvalidToken

import previsio_sdk as pio

PREVISIO = str(Path(sys.executable).with_name("previsio"))
#: Passwords of the extra connectors (each distinct, all searched for in the logs by the suite).
EXTRA = [f"rot-Secret-{i:03d}-x" for i in range(40)]
SUITE_SECRETS.update(EXTRA)


def _blobs(home: Path) -> dict[str, bytes]:
    con = sqlite3.connect(home / "platform.db")
    try:
        return dict(con.execute("SELECT id, secret_enc FROM connectors WHERE secret_enc IS NOT NULL"))
    finally:
        con.close()


def test_rotating_the_key_under_load_keeps_every_secret_readable(tmp_path: Path, pg_database: str) -> None:
    """Reads, tests and updates go on during `previsio rotate-key`; after it only the new key remains."""
    home = tmp_path / "home"
    running = start_platform(home)
    try:
        client = running.client()
        project = pio.Project.new("rotation", client=client)
        pg = project.create_sql_connector(
            "pg",
            host=PG_HOST,
            port=PG_PORT,
            username=PG_SCRAM_USER,
            password=PG_SCRAM_PASSWORD,
            database=pg_database,
        )
        lite = tmp_path / "x.db"
        sqlite3.connect(lite).close()
        extras = [
            project.create_sql_connector(f"extra-{i}", driver="sqlite", database=str(lite), password=pw)
            for i, pw in enumerate(EXTRA)
        ]
        assert pg.test(), "the PostgreSQL connector works before the rotation"
        old_keys = (home / "secret.key").read_text().split()
        old_blobs = _blobs(home)
        assert len(old_blobs) == 1 + len(EXTRA)

        calls: list[tuple[float, str]] = []
        failures: list[str] = []
        stop = threading.Event()

        def tester() -> None:
            mine = pio.Client(url=running.url, token=running.token)
            connector = pio.Connector.from_id(pg.id, client=mine)
            while not stop.is_set():
                try:
                    result = connector.test()
                    if not result:
                        failures.append(f"test: {result.code} {result.message}")
                    calls.append((time.monotonic(), "test"))
                except pio.PrevisioError as exc:
                    failures.append(f"test raised {exc!r}")

        def reader() -> None:
            mine = pio.Client(url=running.url, token=running.token)
            rng = random.Random(7)
            while not stop.is_set():
                try:
                    got = pio.Connector.from_id(rng.choice(extras).id, client=mine)
                    if not got.has_password:
                        failures.append(f"{got.name} lost its password")
                    calls.append((time.monotonic(), "read"))
                except pio.PrevisioError as exc:
                    failures.append(f"read raised {exc!r}")

        def writer() -> None:
            mine = pio.Client(url=running.url, token=running.token)
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    mine.patch(f"/connectors/{extras[0].id}", {"password": f"{EXTRA[0]}-{n}"})
                    calls.append((time.monotonic(), "write"))
                except pio.PrevisioError as exc:
                    failures.append(f"write raised {exc!r}")
                time.sleep(0.02)
            SUITE_SECRETS.update(f"{EXTRA[0]}-{i}" for i in range(1, n + 1))
            last_written.append(f"{EXTRA[0]}-{n}")

        last_written: list[str] = []
        threads = [threading.Thread(target=f) for f in (tester, reader, reader, writer)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        started = time.monotonic()
        rotation = subprocess.run(
            [PREVISIO, "rotate-key", "--home", str(home), "--grace", "0.5"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        ended = time.monotonic()
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(30)
        assert rotation.returncode == 0, rotation.stderr
        assert "re-encrypted" in rotation.stdout
        assert failures == []
        during = {kind for at, kind in calls if started <= at <= ended}
        assert during == {"test", "read", "write"}, "every kind of call ran during the rotation"
        assert any(at > ended for at, kind in calls if kind == "test"), "and after it"

        # the key file: the new key alone, still private
        new_keys = (home / "secret.key").read_text().split()
        assert len(new_keys) == 1 and new_keys[0] not in old_keys
        assert stat.S_IMODE((home / "secret.key").stat().st_mode) == 0o600
        new, old = Fernet(new_keys[0].encode()), Fernet(old_keys[0].encode())
        # the store: every secret under the new key, no old ciphertext anywhere in the files
        blobs = _blobs(home)
        assert set(blobs) == set(old_blobs)
        for blob in blobs.values():
            new.decrypt(blob)
            with pytest.raises(InvalidToken):
                old.decrypt(blob)
        raw = b"".join(p.read_bytes() for p in sorted(home.glob("platform.db*")))
        lingering = [cid for cid, blob in old_blobs.items() if blob in raw]
        assert lingering == []
        assert json.loads(new.decrypt(blobs[extras[0].id]))["password"] == last_written[0]

        # the running platform and a restarted one both read and write with the new key
        assert pio.Connector.from_id(pg.id, client=client).test()
        fresh = project.create_sql_connector("after", driver="sqlite", database=str(lite), password=EXTRA[1])
        assert fresh.has_password
    finally:
        stop_platform(running)
    again = start_platform(home)
    try:
        assert pio.Connector.from_id(pg.id, client=again.client()).test()
    finally:
        stop_platform(again)


def test_rotate_key_refuses_keys_set_in_the_environment(tmp_path: Path) -> None:
    """With PREVISIO_SECRET_KEY set, rotate-key changes nothing and says how to rotate that key."""
    key = Fernet.generate_key().decode()
    done = subprocess.run(
        [PREVISIO, "rotate-key", "--home", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**_env(), "PREVISIO_SECRET_KEY": key},
        timeout=60,
    )
    assert done.returncode == 1
    assert "PREVISIO_SECRET_KEY" in done.stderr and key not in done.stderr + done.stdout
    assert not (tmp_path / "secret.key").exists()


def _env() -> dict[str, Any]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PREVISIO_")}
