"""Running the platform as a process: ``previsio serve`` and the embedded local platform."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import func, select

from .app import create_app
from .auth import ADMIN_TOKEN_FILE
from .core import Platform
from .logs import harden_logging
from .models import Export, Job
from .settings import SettingsError, load_settings, redact_configuration

#: Written by a platform started with ``local=True``: how the SDK finds and reuses it.
LOCAL_STATE_FILE = "platform.json"


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP lets asyncio set TCP_NODELAY on accepted connections (it checks sock.proto); set
    # on the listening socket as well, it is inherited. Without it every answer on a kept-alive connection
    # waits ~40 ms for a delayed ACK (Nagle): 44 ms per SDK call, measured.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class IdleStop:
    """Stops the local platform after ``seconds`` without a request and without a running job.

    Wraps the ASGI app to note each request's time, and watches from a task of the server's own event loop
    (no thread: a thread and its malloc arena would cost the platform address space it may be capped to).
    Once idle, it asks the server to exit: a clean shutdown, the state file removed; the SDK starts a new
    platform when needed.
    """

    def __init__(self, app: Any, platform: Platform, seconds: float, every: float = 5.0) -> None:
        self.app, self.platform, self.seconds = app, platform, seconds
        self.every = min(every, seconds)
        self.last = time.monotonic()
        self.server: Any = None
        self._task: asyncio.Task[None] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._task is None:  # the first call (the lifespan startup) starts the watch
            self._task = asyncio.get_running_loop().create_task(self.watch())
        if scope["type"] == "http":
            self.last = time.monotonic()
        await self.app(scope, receive, send)

    def busy(self) -> bool:
        """Whether a job or an export is pending or running."""
        active = ("pending", "running", "cancelling")
        with self.platform.db.session() as s:
            jobs = s.scalar(select(func.count()).select_from(Job).where(Job.status.in_(active)))
            exports = s.scalar(select(func.count()).select_from(Export).where(Export.status.in_(active)))
        return bool(jobs or exports)

    async def watch(self) -> None:
        """Set ``server.should_exit`` once idle for ``seconds``."""
        while self.server is None or not self.server.should_exit:
            await asyncio.sleep(self.every)
            if time.monotonic() - self.last < self.seconds:
                continue
            if self.busy():  # one indexed count, every few seconds: fine on the event loop
                self.last = time.monotonic()
                continue
            logging.getLogger(__name__).info("no request for %s s: the local platform stops", self.seconds)
            self.server.should_exit = True
            return


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    home: Path | None = None,
    *,
    local: bool = False,
    log_level: str = "info",
) -> None:
    """Run the platform until interrupted.

    Args:
        host: Address to listen on.
        port: Port to listen on; 0 picks a free one.
        home: Platform home; ``PREVISIO_HOME`` or ``~/.previsio`` when None.
        local: Started by the SDK as the embedded local platform: publish the URL in ``<home>/platform.json``,
            do not print the admin token (the SDK reads it from its 0600 file), and let connectors reach
            private networks (see :func:`local_overrides`).
        log_level: Logging level of the platform and access logs.
    """
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    harden_logging()
    try:
        settings = load_settings(**({"home": home} if home is not None else {}))
        if local:
            settings = settings.model_copy(update=local_overrides())
        platform = Platform(settings)
        platform.start()
    except Exception as exc:  # noqa: BLE001 - whatever failed, its text may echo a configured secret
        # A traceback would print the database URL's password where a library put it in its message.
        print(f"error: the platform cannot start: {_startup_error(exc)}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None
    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    url_host = f"[{host}]" if ":" in host else host
    url = f"http://{url_host}:{bound_port}"
    token_file = settings.home / ADMIN_TOKEN_FILE
    if platform.admin_token and not local:
        if settings.bootstrap_token is not None:  # the operator chose it: nothing of it is printed
            print(
                f"Admin user created with the token of PREVISIO_BOOTSTRAP_TOKEN (saved in {token_file}).",
                flush=True,
            )
        else:
            print(f"Admin token (shown once, also saved in {token_file}): {platform.admin_token}", flush=True)
    state_path = settings.home / LOCAL_STATE_FILE
    if local:
        tmp = state_path.with_suffix(".tmp")
        idle = settings.local_idle_timeout
        tmp.write_text(json.dumps({"url": url, "pid": os.getpid(), "idle_timeout": idle}))
        os.replace(tmp, state_path)
    print(f"previsio platform listening on {url} (home {settings.home})", flush=True)
    app: Any = create_app(settings, platform)
    idle_stop = None
    if local and settings.local_idle_timeout > 0:
        app = idle_stop = IdleStop(app, platform, settings.local_idle_timeout)
    config = uvicorn.Config(app, log_level=log_level, access_log=True, timeout_keep_alive=30)
    harden_logging()  # after uvicorn set up its handlers: they get the redacting filter too
    server = uvicorn.Server(config)
    if idle_stop is not None:
        idle_stop.server = server
    try:
        server.run(sockets=[sock])
    finally:
        if local:
            try:
                if json.loads(state_path.read_text()).get("pid") == os.getpid():
                    state_path.unlink()
            except (OSError, ValueError):
                pass


def local_overrides(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """What the embedded local platform changes in the settings: it shares dataset files, and its connectors
    may reach any network and any SQLite file but its own (its one user is the operator) unless
    ``PREVISIO_DENY_PRIVATE_NETWORKS`` or ``PREVISIO_SQLITE_ROOTS`` say otherwise."""
    env = os.environ if environ is None else environ
    overrides: dict[str, Any] = {"share_dataset_files": True}
    if "PREVISIO_DENY_PRIVATE_NETWORKS" not in env:
        overrides["deny_private_networks"] = False
    if "PREVISIO_SQLITE_ROOTS" not in env:  # its one user is the operator: any file but the platform's own
        overrides["sqlite_roots"] = [Path(os.path.abspath(os.sep))]
    return overrides


def _startup_error(exc: BaseException) -> str:
    if isinstance(exc, SettingsError):
        return str(exc)
    text = str(exc).strip()
    return redact_configuration(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def main(argv: list[str] | None = None) -> None:
    """``python -m previsio_sdk.server``: the same as ``previsio serve``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m previsio_sdk.server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--local", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.home, local=args.local, log_level=args.log_level)


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
