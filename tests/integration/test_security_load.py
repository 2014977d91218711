"""Availability under load, and access re-checked before an idempotent replay.

Each test starts a platform of its own (a private home), so that its load meets no other test's. Everything
runs on 127.0.0.1: the clients, the platform and the "trickle" server, which accepts a connection and then
sends one byte every 5 s, forever: a remote system that is neither down nor answering. The numbers measured
are printed (``pytest -s``) and kept in docs/guides/security.rst.
"""

from __future__ import annotations

import asyncio
import select
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
from conftest import RunningPlatform, start_platform, stop_platform

#: The credentials the trickle connectors are given (never to show in a log or an answer).
TRICKLE_PASSWORD = "trickle-Secret-5150"
#: The deadline of a remote call on the platform of the hanging-calls test (seconds).
REMOTE_DEADLINE = 3


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


class TrickleServer:
    """A TCP server on 127.0.0.1 that sends one byte at once, then one every ``every`` seconds, forever.

    The first byte (``N``) is what a PostgreSQL server answers to an SSL request; an FTP, MySQL or HTTP client
    reads it as the start of a greeting and waits for the rest. ``open`` counts the connections still open.
    """

    def __init__(self, every: float = 5.0, greeting: bytes = b"N", drip: bytes = b"\x00") -> None:
        self.every = every
        self.greeting = greeting
        self.drip = drip
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = int(self.sock.getsockname()[1])
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.open = 0
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.open += 1
                self.accepted += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        try:
            conn.sendall(self.greeting)
            next_byte = time.monotonic() + self.every
            while not self.stopping.is_set():
                readable, _, _ = select.select([conn], [], [], 0.2)
                if readable and not conn.recv(65536):
                    return  # the client closed the connection (what the client sends is ignored)
                if time.monotonic() >= next_byte:
                    conn.sendall(self.drip)
                    next_byte += self.every
        except OSError:
            pass
        finally:
            conn.close()
            with self.lock:
                self.open -= 1

    def wait_closed(self, timeout: float) -> int:
        """Wait until the clients closed every connection; return how many are still open."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.open:
            time.sleep(0.1)
        return self.open

    def close(self) -> None:
        self.stopping.set()
        self.sock.close()


@pytest.fixture
def own_platform(tmp_path: Path) -> Iterator[Callable[..., RunningPlatform]]:
    """Start a platform of the test's own (``own_platform(env)``); stopped after the test."""
    started: list[RunningPlatform] = []

    def start(env: dict[str, str] | None = None) -> RunningPlatform:
        started.append(start_platform(tmp_path / f"home{len(started)}", env=env))
        return started[-1]

    yield start
    for running in started:
        stop_platform(running)


def _call(platform: RunningPlatform, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {token or platform.token}", **kw.pop("headers", {})}
    return requests.request(method, f"{platform.url}/api/v1{path}", headers=headers, timeout=30, **kw)


# -- 200 concurrent clients ----------------------------------------------------------------------------------
def test_200_concurrent_clients_get_no_server_error(
    own_platform: Callable[..., RunningPlatform], tmp_path: Path
) -> None:
    """200 clients at once, each reading 4 times and creating once with an Idempotency-Key then sending the
    creation again: every answer is the expected 200/201 (the replay is the stored one), none is a 5xx."""
    platform = own_platform()
    pid = _call(platform, "POST", "/projects", json={"name": "load"}).json()["id"]
    database = str(tmp_path / "load.db")
    cid = _call(
        platform,
        "POST",
        f"/projects/{pid}/connectors",
        json={"name": "lite", "driver": "sqlite", "database": database},
    ).json()["id"]
    auth = {"Authorization": f"Bearer {platform.token}"}
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    problems: list[str] = []

    async def timed(session: aiohttp.ClientSession, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        started = time.monotonic()
        async with session.request(method, f"{platform.url}/api/v1{path}", **kw) as resp:
            body = await resp.json(content_type=None)
            latencies.append(time.monotonic() - started)
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            return resp.status, (body, resp.headers.get("Idempotent-Replayed"))

    async def client(n: int) -> None:
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(headers=auth, timeout=timeout) as session:
            for path in (
                f"/projects/{pid}",
                f"/projects/{pid}/connectors",
                f"/connectors/{cid}",
                "/projects",
            ):
                status, _ = await timed(session, "GET", path)
                if status != 200:
                    problems.append(f"GET {path}: {status}")
            body = {"name": f"c{n}", "driver": "sqlite", "database": database}
            key = {"Idempotency-Key": uuid.uuid4().hex}
            answers = [
                await timed(session, "POST", f"/projects/{pid}/connectors", json=body, headers=key)
                for _ in range(2)
            ]
            (first, (created, _)), (again, (replayed, flag)) = answers
            if (first, again, flag) != (201, 201, "true") or created.get("id") != replayed.get("id"):
                problems.append(f"create then replay: {first} {again} {flag}")

    async def run() -> float:
        started = time.monotonic()
        await asyncio.gather(*(client(n) for n in range(200)))
        return time.monotonic() - started

    elapsed = asyncio.run(run())
    print(
        f"\n200 clients, {len(latencies)} requests in {elapsed:.1f} s: statuses {statuses}, "
        f"p50 {_percentile(latencies, 0.5) * 1000:.0f} ms, p99 {_percentile(latencies, 0.99) * 1000:.0f} ms"
    )
    assert sum(count for status, count in statuses.items() if status >= 500) == 0, statuses
    assert problems == []
    assert len(latencies) == 200 * 6
    listed = _call(platform, "GET", f"/projects/{pid}/connectors", params={"page_size": 1000}).json()
    assert listed["total"] == 201  # one per client and the first one: no replay created a second


# -- remote calls that hang ----------------------------------------------------------------------------------
def test_hanging_remote_calls_stop_at_their_deadline_while_the_platform_keeps_answering(
    own_platform: Callable[..., RunningPlatform],
) -> None:
    """40 remote calls at once to a server that trickles a byte every 5 s (connector tests, datasource checks,
    table and file listings) each end at the deadline with the code ``timeout`` (an ``ok: false`` test, a 422
    otherwise), their connections are closed, and meanwhile ``/health`` answers under 1 s (p99) and other
    API calls are served."""
    platform = own_platform({"PREVISIO_REMOTE_CALL_TIMEOUT_SECONDS": str(REMOTE_DEADLINE)})
    trickle = TrickleServer()
    try:
        pid = _call(platform, "POST", "/projects", json={"name": "hang"}).json()["id"]
        common = {
            "host": "127.0.0.1",
            "port": trickle.port,
            "username": "trickle",
            "password": TRICKLE_PASSWORD,
        }
        pg = _call(
            platform,
            "POST",
            f"/projects/{pid}/connectors",
            json={"name": "pg", "driver": "postgresql", "database": "db", **common},
        ).json()["id"]
        ftp = _call(
            platform, "POST", f"/projects/{pid}/connectors", json={"name": "ftp", "type": "ftp", **common}
        )
        ftp = ftp.json()["id"]
        # Calls alone first: they hang at the server. The first one also starts the sandbox's fork server,
        # which may take the whole deadline on a loaded machine before the child connects.
        for _ in range(4):
            alone = _call(platform, "POST", f"/connectors/{pg}/test").json()
            assert (alone["ok"], alone["code"]) == (False, "timeout")
            if trickle.accepted:
                break
        assert trickle.accepted == 1
        calls: list[tuple[str, str, dict[str, Any]]] = []
        for n in range(10):
            calls.append(("POST", f"/connectors/{pg}/test", {}))
            calls.append(("GET", f"/connectors/{pg}/tables", {}))
            calls.append(("GET", f"/connectors/{ftp}/files", {}))
            ds = {"name": f"ds{n}", "connector_id": pg, "table": "orders"}
            calls.append(("POST", f"/projects/{pid}/datasources", {"json": ds}))
        auth = {"Authorization": f"Bearer {platform.token}"}
        results: list[tuple[str, int, Any, float]] = []
        health: list[float] = []
        others: list[tuple[int, float]] = []

        async def remote(session: aiohttp.ClientSession, method: str, path: str, kw: dict[str, Any]) -> None:
            started = time.monotonic()
            async with session.request(method, f"{platform.url}/api/v1{path}", **kw) as resp:
                body = await resp.json(content_type=None)
            results.append((f"{method} {path.split('/')[-1]}", resp.status, body, time.monotonic() - started))

        async def poll(session: aiohttp.ClientSession, path: str, out: list, done: asyncio.Event) -> None:
            while not done.is_set():
                started = time.monotonic()
                async with session.get(f"{platform.url}/api/v1{path}") as resp:
                    await resp.read()
                    out.append((resp.status, time.monotonic() - started))
                await asyncio.sleep(0.05)

        async def run() -> float:
            timeout = aiohttp.ClientTimeout(total=60)
            async with aiohttp.ClientSession(headers=auth, timeout=timeout) as session:
                done = asyncio.Event()
                pollers = [
                    asyncio.create_task(poll(session, "/health", health, done)),
                    asyncio.create_task(poll(session, f"/projects/{pid}", others, done)),
                    asyncio.create_task(poll(session, f"/projects/{pid}/connectors", others, done)),
                ]
                started = time.monotonic()
                await asyncio.gather(*(remote(session, *call) for call in calls))
                elapsed = time.monotonic() - started
                done.set()
                await asyncio.gather(*pollers)
                return elapsed

        elapsed = asyncio.run(run())
        health_times = [seconds for _status, seconds in health]
        call_times = [seconds for *_rest, seconds in results]
        ms = {
            "health p50": _percentile(health_times, 0.5) * 1000,
            "health p99": _percentile(health_times, 0.99) * 1000,
            "health max": max(health_times) * 1000,
            "others p99": _percentile([seconds for _status, seconds in others], 0.99) * 1000,
        }
        print(
            f"\n40 hanging remote calls, deadline {REMOTE_DEADLINE} s: all answered in {elapsed:.1f} s "
            f"(each {min(call_times):.2f}..{max(call_times):.2f} s); /health x{len(health)}, other API calls "
            f"x{len(others)}: " + ", ".join(f"{name} {value:.0f} ms" for name, value in ms.items())
        )
        assert len(results) == 40
        for what, status, body, seconds in results:
            if what.startswith("POST test"):
                assert (status, body["ok"], body["code"]) == (200, False, "timeout"), (what, body)
                assert "PREVISIO_REMOTE_CALL_TIMEOUT_SECONDS" in body["message"]
            else:
                assert (status, body["error"]["code"]) == (422, "timeout"), (what, status, body)
                assert "PREVISIO_REMOTE_CALL_TIMEOUT_SECONDS" in body["error"]["message"]
            assert REMOTE_DEADLINE - 0.5 <= seconds <= REMOTE_DEADLINE + 5, (what, seconds)
        # The calls hung at the server (on a loaded machine a few may be stopped before they connect).
        print(f"connections the trickle server accepted: {trickle.accepted}")
        assert trickle.accepted >= 11
        assert len(health) >= 10 and all(status == 200 for status, _ in health)
        assert _percentile(health_times, 0.99) < 1.0
        assert len(others) >= 10 and all(status == 200 for status, _ in others)
        # The calls were stopped, not abandoned: their connections are gone.
        assert trickle.wait_closed(timeout=5) == 0
        assert _call(platform, "GET", f"/projects/{pid}/datasources").json()["total"] == 0
    finally:
        trickle.close()


# -- idempotent replays --------------------------------------------------------------------------------------
def test_replay_to_a_member_removed_from_the_project_answers_404(
    own_platform: Callable[..., RunningPlatform],
) -> None:
    """A creation sent with an Idempotency-Key by an editor, then sent again after the owner removed the
    editor from the project, answers 404 ``not_found`` (what the route answers now), not the stored 201;
    while an editor, the replay gives the stored answer, and once demoted to viewer, 403 ``forbidden``."""
    platform = own_platform()
    user = _call(platform, "POST", "/users", json={"name": "alice"}).json()
    token = _call(platform, "POST", f"/users/{user['id']}/tokens").json()["token"]
    pid = _call(platform, "POST", "/projects", json={"name": "shared"}).json()["id"]
    added = _call(platform, "POST", f"/projects/{pid}/members", json={"user": "alice", "role": "editor"})
    assert added.status_code == 201
    body = {"name": "lite", "driver": "sqlite", "database": "/tmp/replay.db"}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = _call(platform, "POST", f"/projects/{pid}/connectors", token, json=body, headers=key)
    assert first.status_code == 201
    again = _call(platform, "POST", f"/projects/{pid}/connectors", token, json=body, headers=key)
    assert (again.status_code, again.headers.get("Idempotent-Replayed")) == (201, "true")
    assert again.json() == first.json()

    demoted = _call(platform, "POST", f"/projects/{pid}/members", json={"user": "alice", "role": "viewer"})
    assert demoted.status_code == 200
    replay = _call(platform, "POST", f"/projects/{pid}/connectors", token, json=body, headers=key)
    assert (replay.status_code, replay.json()["error"]["code"]) == (403, "forbidden")

    assert _call(platform, "DELETE", f"/projects/{pid}/members/{user['id']}").status_code == 204
    replay = _call(platform, "POST", f"/projects/{pid}/connectors", token, json=body, headers=key)
    assert replay.status_code == 404
    assert replay.json()["error"]["code"] == "not_found"
    assert replay.headers.get("Idempotent-Replayed") is None
    assert first.json()["id"] not in replay.text


def test_a_job_reading_a_trickling_server_stops_at_its_deadline(
    own_platform: Callable[..., RunningPlatform],
) -> None:
    """A snapshot of a file served one byte every 5 s (an HTTP server that never finishes its answer) is
    stopped at ``PREVISIO_JOB_TIMEOUT_SECONDS``: the job fails with ``job_timeout``, its connection is closed,
    no dataset is kept, and the platform answers meanwhile."""
    import previsio_sdk as pio

    # An HTTP answer whose body (a CSV of 100 MB, it says) comes one line a second.
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 100000000\r\n\r\nid,value\n"
    trickle = TrickleServer(every=1.0, greeting=head, drip=b"1,2\n")
    try:
        platform = own_platform({"PREVISIO_JOB_TIMEOUT_SECONDS": "4"})
        project = pio.Project.new("trickled", client=platform.client())
        http = project.create_http_connector("slow", host=f"http://127.0.0.1:{trickle.port}")
        source = project.create_datasource(http, "slow", path="data.csv", check=False)
        started = time.monotonic()
        with pytest.raises(pio.JobFailedError) as info:
            project.create_dataset("slow", datasource=source, progress=False, timeout=60)
        took = time.monotonic() - started
        assert info.value.code == "job_timeout", info.value
        assert "PREVISIO_JOB_TIMEOUT_SECONDS" in info.value.message
        assert 3.5 < took < 20, took
        assert project.list_datasets() == []
        assert requests.get(f"{platform.url}/api/v1/health", timeout=5).ok
        assert trickle.wait_closed(10) == 0
    finally:
        trickle.close()
