"""``previsio user|token|rotate-key|db``: administration commands run on the platform's host.

They work on the platform home directly (its metadata store and key file), whether the platform is running
or not: the SQLite metadata store takes concurrent writers, and a running platform reads the key file again
when it changes. Heavy imports happen when a command runs, not when the parser is built.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO


def _settings(home: Path | None) -> Any:
    from .settings import load_settings

    return load_settings(**({"home": home} if home is not None else {}))


def _redacted_failures(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Run ``command``; an unexpected failure is printed on one line without the configured secrets.

    The metadata store's driver may quote its URL, password included, in its messages.
    """

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except Exception as exc:  # noqa: BLE001 - printed redacted rather than as a traceback
            from .settings import SettingsError, redact_configuration

            if isinstance(exc, SettingsError):
                return _fail(str(exc), sys.stderr)
            return _fail(redact_configuration(f"{type(exc).__name__}: {exc}"), sys.stderr)

    return run


def _database(home: Path | None) -> Any:
    from .db import Database

    settings = _settings(home)
    settings.home.mkdir(parents=True, exist_ok=True)
    return Database(settings.metadata_url)


def _fail(message: str, err: TextIO) -> int:
    print(f"error: {message}", file=err)
    return 1


def user_command(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """``previsio user create NAME [--admin]`` and ``previsio user list``."""
    from .accounts import create_user, list_users
    from .errors import PlatformError

    db = _database(args.home)
    try:
        with db.session() as s:
            if args.action == "create":
                user = create_user(s, args.name, is_admin=args.admin)
                print(
                    f"user {user.name} created (id {user.id}{', admin' if user.is_admin else ''})", file=out
                )
                print(f"give it a token: previsio token create --user {user.name}", file=out)
            else:
                for user in list_users(s):
                    admin = " admin" if user.is_admin else ""
                    print(
                        f"{user.id}  {user.name}{admin}  created {user.created_at:%Y-%m-%d %H:%M}", file=out
                    )
    except PlatformError as exc:
        return _fail(exc.message, err)
    finally:
        db.engine.dispose()
    return 0


def token_command(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """``previsio token create --user NAME [--expires-in DAYS]``, ``token list --user NAME``, ``revoke``."""
    from .accounts import create_token, find_user, list_tokens, revoke_token
    from .errors import PlatformError

    db = _database(args.home)
    try:
        with db.session() as s:
            if args.action == "create":
                if not args.user:
                    return _fail("token create needs --user NAME", err)
                user = find_user(s, args.user)
                token, value = create_token(s, user, expires_in_days=args.expires_in)
                expiry = f", expires {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else ""
                print(f"token {token.id} for user {user.name}{expiry}; shown once, keep it safe:", file=err)
                print(value, file=out)
            elif args.action == "list":
                if not args.user:
                    return _fail("token list needs --user NAME", err)
                for token in list_tokens(s, find_user(s, args.user)):
                    state = "revoked" if token.revoked else "active"
                    expiry = f" expires {token.expires_at:%Y-%m-%d %H:%M}" if token.expires_at else ""
                    print(f"{token.id}  {state}  created {token.created_at:%Y-%m-%d %H:%M}{expiry}", file=out)
            else:
                if not args.id:
                    return _fail("token revoke needs the token id", err)
                token = revoke_token(s, args.id)
                print(f"token {token.id} revoked", file=out)
    except PlatformError as exc:
        return _fail(exc.message, err)
    finally:
        db.engine.dispose()
    return 0


def rotate_key_command(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """``previsio rotate-key``: new key, every secret re-encrypted, old keys retired."""
    from .vault import KeyRotationError, reencrypt, rotate_key

    settings = _settings(args.home)

    def echo(line: str) -> None:
        print(line, file=out, flush=True)

    try:
        if args.reencrypt_only:
            report = reencrypt(settings, grace_seconds=args.grace, echo=echo)
            if report.unreadable:
                return _fail(f"{report.unreadable} secrets cannot be decrypted with any key", err)
        else:
            report = rotate_key(settings, grace_seconds=args.grace, echo=echo)
    except KeyRotationError as exc:
        return _fail(str(exc), err)
    echo(f"done: {report.reencrypted} secret(s) re-encrypted in {report.passes} passes")
    return 0


def db_command(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """``previsio db upgrade``: run the metadata store's missing migrations.

    ``previsio db current`` says which revision the store is at and whether it needs an upgrade.
    """
    from sqlalchemy import create_engine

    from .db import current_revision, head_revision, upgrade_schema
    from .logs import redact_text

    settings = _settings(args.home)
    settings.home.mkdir(parents=True, exist_ok=True)
    try:
        if args.action == "current":
            engine = create_engine(settings.metadata_url)
            try:
                current = current_revision(engine)
            finally:
                engine.dispose()
            head = head_revision()
            state = "up to date" if current == head else f"needs `previsio db upgrade` to {head}"
            print(f"metadata store at revision {current or 'none (empty)'}: {state}", file=out)
            return 0
        engine = create_engine(settings.metadata_url)
        try:
            before, after = upgrade_schema(engine)
        finally:
            engine.dispose()
    except Exception as exc:  # noqa: BLE001 - the operator gets one line, with no credential of the URL
        return _fail(redact_text(f"the metadata store cannot be upgraded: {exc}".splitlines()[0]), err)
    if before == after:
        print(f"metadata store already at revision {after}", file=out)
    else:
        print(f"metadata store upgraded from revision {before or 'none (empty)'} to {after}", file=out)
    return 0


def worker_command(args: argparse.Namespace) -> int:
    """``previsio worker``: run the jobs API replicas send to the broker (``PREVISIO_EXECUTOR=celery``)."""
    from .worker import run_worker

    queues = [f"previsio.{q}" if "." not in q else q for q in args.queues.split(",")] if args.queues else None
    run_worker(
        queues,
        concurrency=args.concurrency,
        log_level=args.log_level,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
    )
    return 0


def add_commands(sub: Any) -> None:
    """Add ``user``, ``token``, ``rotate-key``, ``db`` and ``worker`` to the ``previsio`` command's
    subparsers."""
    home_help = "platform home (default $PREVISIO_HOME or ~/.previsio)"

    user = sub.add_parser("user", help="create or list the platform's users (on the platform's host)")
    user.add_argument("action", choices=["create", "list"])
    user.add_argument("name", nargs="?", help="user name (create)")
    user.add_argument("--admin", action="store_true", help="the user administers users and tokens")
    user.add_argument("--home", type=Path, default=None, help=home_help)
    user.set_defaults(func=_redacted_failures(_user))

    token = sub.add_parser("token", help="create, list or revoke API tokens (on the platform's host)")
    token.add_argument("action", choices=["create", "list", "revoke"])
    token.add_argument("id", nargs="?", help="token id (revoke)")
    token.add_argument("--user", default=None, help="user name or id (create, list)")
    token.add_argument(
        "--expires-in", type=float, default=None, metavar="DAYS", help="days until the token expires"
    )
    token.add_argument("--home", type=Path, default=None, help=home_help)
    token.set_defaults(func=_redacted_failures(token_command))

    rotate = sub.add_parser(
        "rotate-key", help="re-encrypt every connector secret with a new key (the platform may be running)"
    )
    rotate.add_argument("--home", type=Path, default=None, help=home_help)
    rotate.add_argument(
        "--grace", type=float, default=1.0, metavar="SECONDS", help="pause between re-encryption passes"
    )
    rotate.add_argument(
        "--reencrypt-only",
        action="store_true",
        help="re-encrypt with the newest key of PREVISIO_SECRET_KEY or the key file, adding no key",
    )
    rotate.set_defaults(func=_redacted_failures(rotate_key_command))

    db = sub.add_parser("db", help="upgrade the metadata store's schema, or show its revision")
    db.add_argument("action", choices=["upgrade", "current"])
    db.add_argument("--home", type=Path, default=None, help=home_help)
    db.set_defaults(func=db_command)

    worker = sub.add_parser("worker", help="run jobs from the broker (PREVISIO_EXECUTOR=celery)")
    worker.add_argument(
        "--queues",
        default=None,
        help="comma-separated queues: snapshots, uploads, exports (default: all three)",
    )
    worker.add_argument("--concurrency", type=int, default=2, help="jobs run at once (default 2)")
    worker.add_argument("--log-level", default="info")
    worker.add_argument(
        "--metrics-port", type=int, default=None, help="serve Prometheus metrics on this port"
    )
    worker.add_argument("--metrics-host", default="127.0.0.1", help="address of the metrics server")
    worker.set_defaults(func=worker_command)


def _user(args: argparse.Namespace) -> int:
    if args.action == "create" and not args.name:
        print("error: user create needs a NAME", file=sys.stderr)
        return 2
    return user_command(args)
