"""The embedded local platform: found under the home directory, or started as a background process.

The platform runs in its own process (``python -m previsio_sdk.server --local``), listens on 127.0.0.1 on a
free port, and publishes its URL in ``<home>/platform.json``; the admin token is in ``<home>/admin.token``
(mode 0600). Every Python process using the same home talks to the same platform and sees the same projects.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from .errors import ConfigurationError, ServerUnreachableError

STATE_FILE = "platform.json"
TOKEN_FILE = "admin.token"
LOG_FILE = "platform.log"
START_TIMEOUT = 60.0
#: Modules the platform cannot start without (the ``platform`` extra); looked up, never imported, here.
PLATFORM_MODULES = ("fastapi", "uvicorn", "sqlalchemy", "pydantic_settings")
NO_PLATFORM_MESSAGE = (
    "No platform URL is set and the local platform is not installed: call pio.init_client(url, token) or set "
    "PREVISIO_URL (and PREVISIO_TOKEN), or run pip install 'previsio_sdk[platform]' to run one here."
)


def platform_installed() -> bool:
    """Whether the packages the local platform needs are installed (the ``platform`` extra)."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in PLATFORM_MODULES)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` so two processes do not start two platforms."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: best effort without a lock
        yield
        return
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    try:
        # A platform this process started and that has exited stays a zombie (still "alive" to kill(0))
        # until reaped: reap it, or stopping it from the process that started it waits for nothing.
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError, AttributeError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: the zombie of a platform another live process started (and has not reaped yet) is dead
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] != "Z":
                return True
    except (OSError, IndexError):
        return True
    try:  # it became a zombie after the reaping above (or its threads are still ending): reap it if ours
        os.waitpid(pid, 0)
    except (ChildProcessError, OSError, AttributeError):
        pass
    return False


def running_platform(home: Path) -> tuple[str, int] | None:
    """URL and pid of the platform serving ``home``, if one is up and answering."""
    try:
        state = json.loads((home / STATE_FILE).read_text())
        url, pid = state["url"], int(state["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not _pid_alive(pid):
        return None
    try:
        ok = requests.get(f"{url}/api/v1/health", timeout=2).ok
    except requests.RequestException:
        return None
    return (url, pid) if ok else None


def read_token(home: Path) -> str:
    """The admin token of the local platform."""
    try:
        return (home / TOKEN_FILE).read_text().strip()
    except OSError as exc:
        raise ServerUnreachableError(
            f"The local platform's token file {home / TOKEN_FILE} cannot be read."
        ) from exc


def ensure_local_platform(home: Path, timeout: float = START_TIMEOUT) -> tuple[str, str]:
    """Return the URL and token of the local platform of ``home``, starting it if needed.

    Raises:
        ConfigurationError: The platform is not installed (only the SDK is): the message says what to
            install or set.
        ServerUnreachableError: The platform did not come up in ``timeout`` seconds (its log is quoted).
    """
    if not platform_installed():
        raise ConfigurationError(NO_PLATFORM_MESSAGE)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)  # private: the key file and the data live there
    found = running_platform(home)
    if found:
        return found[0], read_token(home)
    with _locked(home / "platform.lock"):
        found = running_platform(home)
        if found:
            return found[0], read_token(home)
        (home / STATE_FILE).unlink(missing_ok=True)
        log_path = home / LOG_FILE
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "previsio_sdk.server",
                    "--local",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--home",
                    str(home),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = running_platform(home)
            if found:
                print(started_message(home, found[0]), file=sys.stderr)
                return found[0], read_token(home)
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        if proc.poll() is None:
            proc.terminate()
        tail = log_path.read_text(errors="replace")[-2000:]
        raise ServerUnreachableError(f"The local platform did not start; last lines of {log_path}:\n{tail}")


def idle_timeout(home: Path) -> float | None:
    """The idle time (seconds) after which the running local platform of ``home`` stops; None: never."""
    try:
        value = float(json.loads((home / STATE_FILE).read_text()).get("idle_timeout") or 0)
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    return value or None


def _idle_words(seconds: float | None) -> str:
    if seconds is None:
        return "it runs until stopped"
    amount = f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"
    return f"it stops by itself after {amount} without use (PREVISIO_LOCAL_IDLE_TIMEOUT)"


def _stop_command(home: Path) -> str:
    from .config import home_dir

    return "previsio local stop" + ("" if home == home_dir() else f" --home {home}")


def started_message(home: Path, url: str) -> str:
    """What the SDK says once, when it starts the local platform: where, its home, and how it stops."""
    return (
        f"previsio: started the local platform at {url} (home {home}, log {home / LOG_FILE}); "
        f"{_idle_words(idle_timeout(home))}, or stop it with `{_stop_command(home)}`."
    )


def status_message(home: Path) -> str:
    """``previsio local``: whether the local platform of ``home`` runs, where, and how it stops."""
    found = running_platform(home)
    if not found:
        return f"The local platform is not running (home {home}); the SDK starts it on its first call."
    return (
        f"The local platform is running at {found[0]} (pid {found[1]}, home {home}, log {home / LOG_FILE}); "
        f"{_idle_words(idle_timeout(home))}. Stop it with `{_stop_command(home)}`."
    )


def stop_local_platform(home: Path, timeout: float = 10.0) -> bool:
    """Stop the local platform of ``home``; return whether one was running."""
    found = running_platform(home)
    if not found:
        return False
    pid = found[1]
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.1)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    return True
