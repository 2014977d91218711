"""The embedded local platform: started by ``pio.Client()``, shared by processes; and ``quickstart``.

Every test uses its own PREVISIO_HOME and HOME in a temp dir, and stops the local platform it started.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

import previsio_sdk as pio
from previsio_sdk.local import _pid_alive, running_platform, stop_local_platform

PREVISIO = str(Path(sys.executable).with_name("previsio"))


@pytest.fixture
def local_home(tmp_path: Path) -> Iterator[Path]:
    """A fresh PREVISIO_HOME; the local platform running there at the end is stopped."""
    home = tmp_path / "previsio-home"
    yield home
    stop_local_platform(home)


def local_env(home: Path | None, tmp_path: Path) -> dict[str, str]:
    """No PREVISIO_URL/TOKEN, PREVISIO_HOME=home (if given), HOME in a temp dir: ~/.previsio is never used."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREVISIO_")}
    env["HOME"] = str(tmp_path / "user-home")
    if home is not None:
        env["PREVISIO_HOME"] = str(home)
    return env


def run_python(code: str, env: dict[str, str]) -> dict:  # type: ignore[type-arg]
    """Run a Python script in a new process; return the JSON object it prints on its last line."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_previsio(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PREVISIO, *args], capture_output=True, text=True, env=env, timeout=180)


def test_client_without_url_starts_a_local_platform_shared_by_processes(local_home, tmp_path):
    """pio.Client() with no URL starts a platform on 127.0.0.1 in PREVISIO_HOME; other processes share it."""
    env = local_env(local_home, tmp_path)
    first = run_python(
        """
        import json, previsio_sdk as pio
        client = pio.Client()
        project = pio.Project.new("made-by-process-1", client=client)
        print(json.dumps({"url": client.url, "local": client.is_local, "id": project.id}))
        """,
        env,
    )
    assert first["local"] is True
    state = json.loads((local_home / "platform.json").read_text())
    assert state["url"] == first["url"]
    assert urlparse(state["url"]).hostname == "127.0.0.1"
    assert running_platform(local_home) == (state["url"], state["pid"])

    second = run_python(
        """
        import json, previsio_sdk as pio
        client = pio.Client()
        print(json.dumps({"url": client.url, "projects": {p.id: p.name for p in pio.Project.list(client)}}))
        """,
        env,
    )
    assert second["url"] == first["url"]  # reused, not a second platform
    assert second["projects"] == {first["id"]: "made-by-process-1"}
    assert not (tmp_path / "user-home" / ".previsio").exists()

    stopped = run_previsio("local", "stop", "--home", str(local_home), env=env)
    assert stopped.returncode == 0 and stopped.stdout.strip() == "stopped"
    assert running_platform(local_home) is None
    assert not _pid_alive(state["pid"])
    status = run_previsio("local", "status", "--home", str(local_home), env=env)
    assert status.returncode == 0 and status.stdout.startswith("The local platform is not running")


def test_local_status_and_stop_report_a_running_platform(local_home, tmp_path, monkeypatch):
    """`previsio local status` names the URL and pid of the running local platform; `stop` twice says so."""
    monkeypatch.delenv("PREVISIO_URL", raising=False)
    client = pio.Client(home=local_home)
    assert client.is_local
    env = local_env(None, tmp_path)
    status = run_previsio("local", "status", "--home", str(local_home), env=env)
    url, pid = running_platform(local_home)  # type: ignore[misc]
    assert status.returncode == 0
    assert status.stdout.startswith(f"The local platform is running at {url} (pid {pid}, home {local_home}")
    started = time.monotonic()
    assert run_previsio("local", "stop", "--home", str(local_home), env=env).stdout.strip() == "stopped"
    assert time.monotonic() - started < 8  # not the 10 s SIGKILL fallback: an exited platform is gone
    assert not _pid_alive(pid)
    again = run_previsio("local", "stop", "--home", str(local_home), env=env)
    assert again.returncode == 0 and again.stdout.strip() == "no local platform is running"


def test_the_first_call_says_once_that_it_started_the_platform(local_home, tmp_path):
    """The process that starts the local platform says so on stderr (URL, home, how to stop); the next not."""
    env = local_env(local_home, tmp_path)
    code = [sys.executable, "-c", "import previsio_sdk as pio; print(pio.Client().url)"]
    first = subprocess.run(code, capture_output=True, text=True, env=env, timeout=120)
    second = subprocess.run(code, capture_output=True, text=True, env=env, timeout=120)
    url = first.stdout.strip()
    assert f"previsio: started the local platform at {url} (home {local_home}" in first.stderr
    assert "it stops by itself after 60 min without use" in first.stderr
    assert "`previsio local stop`" in first.stderr  # PREVISIO_HOME is this home: no --home needed
    assert second.stdout.strip() == url and "started" not in second.stderr
    status = run_previsio("local", "--home", str(local_home), env=env)  # no action: the status
    assert status.returncode == 0 and status.stdout.startswith(f"The local platform is running at {url}")


def test_the_local_platform_stops_by_itself_when_idle(local_home, tmp_path):
    """With PREVISIO_LOCAL_IDLE_TIMEOUT=2 the local platform exits about 2 s after its last request."""
    env = local_env(local_home, tmp_path)
    env["PREVISIO_LOCAL_IDLE_TIMEOUT"] = "2"
    run_python("import json, previsio_sdk as pio; pio.Client(); print(json.dumps({}))", env)
    found = running_platform(local_home)
    assert found is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _pid_alive(found[1]):
        time.sleep(0.2)
    assert not _pid_alive(found[1]), "the idle local platform did not stop"
    assert running_platform(local_home) is None and not (local_home / "platform.json").exists()


def test_stopping_the_local_platform_from_the_process_that_started_it_is_quick(local_home, monkeypatch):
    """stop_local_platform() in the process whose pio.Client() started the platform ends it within seconds."""
    monkeypatch.delenv("PREVISIO_URL", raising=False)
    pio.Client(home=local_home)
    _url, pid = running_platform(local_home)  # type: ignore[misc]
    started = time.monotonic()
    assert stop_local_platform(local_home) is True
    assert time.monotonic() - started < 8
    assert not Path(f"/proc/{pid}").exists()  # exited and reaped, not a zombie
    assert running_platform(local_home) is None
    assert stop_local_platform(local_home) is False


def test_quickstart_twice_snapshots_the_sample_orders_twice(local_home, tmp_path):
    """`previsio quickstart --home DIR` twice: exits 0, prints 2000 rows and the schema, makes 2 datasets."""
    env = local_env(None, tmp_path)
    outputs = []
    for _ in range(2):
        done = run_previsio("quickstart", "--home", str(local_home), env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        outputs.append(done.stdout)
    for out in outputs:
        assert "Rows: 2000" in out
        assert "Schema:" in out and "First rows:" in out
        schema = out.split("Schema:")[1].split("First rows:")[0]
        assert len([line for line in schema.splitlines() if line.startswith("  ")]) >= 2
    names = [_dataset_name(out) for out in outputs]
    assert names[0] != names[1]

    url, _pid = running_platform(local_home)  # type: ignore[misc]
    client = pio.Client(url=url, token=(local_home / "admin.token").read_text().strip())
    [project] = [p for p in pio.Project.list(client) if p.name == "quickstart"]
    datasets = project.list_datasets()
    assert sorted(d.name for d in datasets) == sorted(names)
    assert [d.num_rows for d in datasets] == [2000, 2000]
    assert [c.name for c in project.list_connectors()] == ["sample-sqlite"]
    assert [d.name for d in project.list_datasource()] == ["orders"]
    assert datasets[0].columns == datasets[1].columns
    for col in datasets[0].schema:
        assert f"  {col.name}: {col.type}" in outputs[0]
    assert not (tmp_path / "user-home" / ".previsio").exists()


def _dataset_name(out: str) -> str:
    found = re.search(r"^Dataset: (\S+) \(id \w+\)$", out, re.MULTILINE)
    assert found, out
    return found.group(1)
