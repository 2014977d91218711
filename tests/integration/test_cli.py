"""``previsio serve`` as a real process (first start, restart, bootstrap token) and the CLI's help."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

PREVISIO = str(Path(sys.executable).with_name("previsio"))
TOKEN_LINE = re.compile(r"Admin token \(shown once, also saved in (?P<file>.+?)\): (?P<token>\S+)")


def free_port() -> int:
    """A port of 127.0.0.1 that was free a moment ago (bound to port 0, read, closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The test environment without any PREVISIO_* variable, HOME in a temp dir, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREVISIO_")}
    env["HOME"] = str(tmp_path / "user-home")
    env.update(extra)
    return env


@dataclass
class Served:
    """A ``previsio serve`` process and where its output goes."""

    proc: subprocess.Popen[bytes]
    url: str
    home: Path
    out_path: Path

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start ``previsio serve`` on a free port of 127.0.0.1; every process started is terminated after."""
    started: list[Served] = []

    def start(home: Path, **env: str) -> Served:
        port = free_port()
        out_path = tmp_path / f"serve-{len(started)}-{port}.out"
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(
                [PREVISIO, "serve", "--host", "127.0.0.1", "--port", str(port), "--home", str(home)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=clean_env(tmp_path, **env),
            )
        served = Served(proc, f"http://127.0.0.1:{port}", home, out_path)
        started.append(served)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"previsio serve exited with {proc.returncode}:\n{served.output()}")
            try:
                if requests.get(f"{served.url}/api/v1/health", timeout=2).ok:
                    return served
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"previsio serve did not answer in 60 s:\n{served.output()}")

    yield start
    for served in started:
        served.stop()


def _status_with(url: str, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return requests.get(f"{url}/api/v1/projects", headers=headers, timeout=10).status_code


def test_first_start_prints_the_admin_token_once_and_saves_it_0600(serve, tmp_path):
    """A first `previsio serve` prints the admin token once and writes it to <home>/admin.token, mode 0600."""
    home = tmp_path / "home"
    served = serve(home)
    out = served.output()
    found = TOKEN_LINE.findall(out)
    assert len(found) == 1, out
    file_named, token = found[0]
    token_file = home / "admin.token"
    assert Path(file_named) == token_file
    assert token_file.read_text().strip() == token
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert out.count(token) == 1
    assert _status_with(served.url, token) == 200
    assert _status_with(served.url, "pvo_" + uuid.uuid4().hex) == 401


def test_second_start_prints_no_token_and_the_first_token_still_works(serve, tmp_path):
    """Restarting `previsio serve` on the same home prints no token; the first token keeps working."""
    home = tmp_path / "home"
    first = serve(home)
    token = TOKEN_LINE.search(first.output())["token"]
    project = requests.post(
        f"{first.url}/api/v1/projects",
        json={"name": "kept"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()
    first.stop()

    second = serve(home)
    out = second.output()
    assert "Admin token" not in out and token not in out
    assert "listening on" in out
    assert (home / "admin.token").read_text().strip() == token
    resp = requests.get(
        f"{second.url}/api/v1/projects/{project['id']}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert resp.status_code == 200 and resp.json()["name"] == "kept"


def test_bootstrap_token_from_the_environment_becomes_the_admin_token(serve, tmp_path):
    """With PREVISIO_BOOTSTRAP_TOKEN on a new home, that value is the admin token, in admin.token (0600); the
    operator chose it, so previsio serve prints nothing of it, only that the admin user has it."""
    home = tmp_path / "home"
    wanted = "pvo_bootstrap-" + uuid.uuid4().hex
    served = serve(home, PREVISIO_BOOTSTRAP_TOKEN=wanted)
    token_file = home / "admin.token"
    assert token_file.read_text().strip() == wanted
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    output = served.output()
    assert TOKEN_LINE.search(output) is None
    assert wanted not in output and wanted[:16] not in output
    assert "created with the token of PREVISIO_BOOTSTRAP_TOKEN" in output
    assert _status_with(served.url, wanted) == 200
    assert _status_with(served.url, wanted + "x") == 401


def test_bootstrap_token_given_on_a_restart_is_added_and_the_old_token_kept(serve, tmp_path):
    """A bootstrap token given when restarting an existing home is added; the first token still works."""
    home = tmp_path / "home"
    first = serve(home)
    token = TOKEN_LINE.search(first.output())["token"]
    first.stop()
    wanted = "pvo_rotated-" + uuid.uuid4().hex
    second = serve(home, PREVISIO_BOOTSTRAP_TOKEN=wanted)
    assert "Admin token" not in second.output()
    assert _status_with(second.url, wanted) == 200
    assert _status_with(second.url, token) == 200


@pytest.mark.parametrize(
    "args",
    [["--help"], ["serve", "--help"], ["quickstart", "--help"], ["local", "--help"]],
    ids=["main", "serve", "quickstart", "local"],
)
def test_help_of_every_command_exits_0(tmp_path, args):
    """`previsio <command> --help` prints a usage text and exits 0."""
    done = subprocess.run(
        [PREVISIO, *args], capture_output=True, text=True, timeout=60, env=clean_env(tmp_path)
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: previsio")


@pytest.mark.parametrize(
    "args",
    [[], ["nosuch"], ["local", "restart"], ["serve", "--port", "notaport"]],
    ids=["no-command", "unknown-command", "unknown-local-action", "bad-port"],
)
def test_a_wrong_command_line_exits_2_with_usage(tmp_path, args):
    """A wrong `previsio` command line exits 2 with a usage message on stderr, starting nothing."""
    done = subprocess.run(
        [PREVISIO, *args], capture_output=True, text=True, timeout=60, env=clean_env(tmp_path)
    )
    assert done.returncode == 2
    assert "usage: previsio" in done.stderr
    assert not (tmp_path / "user-home" / ".previsio").exists()


def test_a_served_platform_does_not_share_dataset_files_and_datasets_still_load(serve, tmp_path):
    """previsio serve answers 404 not_shared for a dataset's file; the SDK downloads it over HTTP instead."""
    import pandas as pd

    import previsio_sdk as pio

    home = tmp_path / "served-home"
    served = serve(home, PREVISIO_BOOTSTRAP_TOKEN="served-token-1234")
    client = pio.Client(url=served.url, token="served-token-1234")
    project = pio.Project.new("files-not-shared", client=client)
    dataset = project.create_dataset("df", dataframe=pd.DataFrame({"a": [1, 2, 3]}), progress=False)
    with pytest.raises(pio.NotFoundError) as caught:
        client.get(f"/datasets/{dataset.id}/file")
    assert caught.value.code == "not_shared"
    assert dataset.to_pandas()["a"].tolist() == [1, 2, 3]
    assert client.may_share_files is False
