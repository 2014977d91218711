"""Untrusted work in a child process, so that it cannot take the platform down.

Reading a remote system or parsing a file it served runs code (libarrow's parsers, database clients) on
bytes an attacker may have chosen. A crash there (a segfault on a file nested 100,000 deep), a memory
blow-up or a hang would otherwise kill or freeze the platform with every job it runs. :func:`run_isolated`
runs one function in a child process forked from a pre-loaded server process (``forkserver``: a fork costs
milliseconds, and the child shares nothing with the platform's threads), watches it, and kills it when:

- it runs past its total deadline (``deadline``),
- its resident memory passes ``memory_limit`` bytes,
- the caller asks it to stop (``should_stop`` returns a reason: a cancelled job).

The child sends back its result or its :class:`~previsio_sdk.server.errors.PlatformError` (only the code,
message and details cross the pipe: never a traceback that could hold a secret), and may send progress
messages on the way. The parent never runs the child's code: whatever the child meets, the parent gets a
typed error.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from .errors import LimitExceeded, PlatformError

log = logging.getLogger(__name__)

#: Modules the fork server imports once, so that a child starts with them loaded (milliseconds per job).
PRELOAD = ["previsio_sdk.server.sandbox_preload"]
#: How often the parent looks at the child's memory, its deadline and the stop request (seconds).
WATCH_EVERY = 0.05

_context_lock = threading.Lock()
_context: Any = None


def _mp_context() -> Any:
    global _context
    with _context_lock:
        if _context is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(PRELOAD)
            _context = ctx
        return _context


class Stopped(PlatformError):
    """The work was stopped on request (a cancelled job): 409 ``cancelled``."""

    def __init__(self, reason: str = "cancelled", message: str = "The job was cancelled.") -> None:
        super().__init__(409, reason, message)


class Crashed(PlatformError):
    """The child process died without an answer (a crash in native code, killed by the system)."""

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(422, "worker_crashed", message, details)


@dataclass
class Usage:
    """What the child of one :func:`run_isolated` call used, filled in as it runs."""

    #: Highest resident memory of the child seen, in bytes (the kernel's high-water mark, ``VmHWM``).
    peak_rss: int = 0
    #: Resident memory of the child when the work began (what it shares with the fork server and has
    #: touched): ``peak_rss - start_rss`` is what the work itself held at most.
    start_rss: int = 0
    #: Whether the child answered (a result or its own error) rather than being stopped or crashing: a child
    #: that answered has cleaned up after itself.
    answered: bool = False


def rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid`` in bytes (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def peak_rss_bytes(pid: int | str = "self") -> int:
    """Highest resident memory process ``pid`` reached (``VmHWM``) in bytes; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _die_with_parent() -> None:
    """Have the kernel kill this process when its parent (the fork server) exits (Linux).

    The fork server exits when the platform does, even on SIGKILL: its children then stop too, instead of
    writing on for a platform that is gone.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before prctl
            os._exit(1)
    except (OSError, AttributeError):
        pass


class _ParentGone(BaseException):
    """The platform that asked for the work is gone: stop it quietly (a BaseException, so that no
    ``except Exception`` of the work turns it into an error to report)."""


def _send(conn: Connection, message: Any) -> None:
    try:
        conn.send(message)
    except OSError:  # the parent is gone: nobody to tell
        raise _ParentGone from None


def _exit_with_platform(lifeline: Connection) -> None:
    """Exit at once when the process that asked for the work is gone, even killed (SIGKILL).

    The fork server outlives the platform while a child runs (every child holds the pipe that keeps it
    alive), so the child's own parent-death signal would come only once the work is done. The lifeline is a
    pipe whose only writing end the platform holds: its end of file means the platform died, and the work
    stops before it commits anything the platform can no longer record (a table replaced, a file renamed).
    """

    def watch() -> None:
        try:
            lifeline.recv()
        except (EOFError, OSError):
            pass
        os._exit(70)

    threading.Thread(target=watch, name="previsio-lifeline", daemon=True).start()


def _child_main(
    conn: Connection,
    lifeline: Connection,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    secrets: list[str],
) -> None:
    """Run ``fn`` in the child; send ``("ok", result)`` or ``("error", (status, code, message, details))``."""
    from .logs import harden_logging, remember_secrets

    _die_with_parent()
    _exit_with_platform(lifeline)
    start = rss_bytes(os.getpid())
    remember_secrets(secrets)
    harden_logging()

    def report(message: Any) -> None:
        _send(conn, ("progress", message))

    try:
        try:
            result = fn(*args, report=report, **kwargs)
            _send(conn, ("ok", result, peak_rss_bytes(), start))
        except _ParentGone:
            raise
        except PlatformError as exc:
            _send(conn, ("error", (exc.status, exc.code, exc.message, exc.details), peak_rss_bytes(), start))
        except MemoryError:
            error = (422, "limit_exceeded", "The work ran out of memory.", None)
            _send(conn, ("error", error, peak_rss_bytes(), start))
        except BaseException as exc:  # noqa: BLE001 - the parent gets a typed error, the log the traceback
            log.error("isolated work failed unexpectedly", exc_info=exc)
            message = f"The work failed unexpectedly ({type(exc).__name__})."
            _send(conn, ("error", (500, "internal_error", message, None), peak_rss_bytes(), start))
    except _ParentGone:
        pass  # the work stopped and cleaned up after itself; the platform recovers the job at its next start
    finally:
        conn.close()


def run_isolated(
    fn: Callable[..., Any],
    *args: Any,
    deadline: float | None = None,
    on_deadline: Callable[[], PlatformError] | None = None,
    memory_limit: int | None = None,
    should_stop: Callable[[], str | None] | None = None,
    on_progress: Callable[[Any], None] | None = None,
    on_crash: Callable[[int | None], PlatformError] | None = None,
    secrets: Iterable[Any] = (),
    usage: Usage | None = None,
    **kwargs: Any,
) -> Any:
    """Run ``fn(*args, report=..., **kwargs)`` in a child process and return its result.

    ``fn`` must be a module-level function; its arguments and result are pickled. It receives ``report``, a
    function sending one picklable message to ``on_progress`` in the parent.

    Args:
        fn: The work.
        deadline: ``time.monotonic()`` value past which the child is killed; None for no deadline.
        on_deadline: The error raised when the deadline passes (default: 422 ``timeout``).
        memory_limit: Resident bytes past which the child is killed (:class:`LimitExceeded`); None for none.
        should_stop: Called while the child runs; a non-empty string stops it (:class:`Stopped`, that code).
        on_progress: Receives the messages the child reports.
        on_crash: The error raised when the child dies without answering, given its exit code (default:
            :class:`Crashed`).
        secrets: Values the child masks in its own log lines.
        usage: Filled in with what the child used (its peak resident memory), whatever the outcome.

    Returns:
        What ``fn`` returned.

    Raises:
        PlatformError: The child's own error, or why it was stopped.
    """
    ctx = _mp_context()
    parent, child = ctx.Pipe(duplex=False)
    life_r, life_w = ctx.Pipe(duplex=False)  # the child's lifeline: closed when this process dies
    masked = [s for s in secrets if isinstance(s, str)]
    proc = ctx.Process(
        target=_child_main,
        args=(child, life_r, fn, args, kwargs, masked),
        name="previsio-isolated",
        daemon=True,
    )
    proc.start()
    child.close()
    life_r.close()
    stop_check_at = 0.0
    usage = usage if usage is not None else Usage()
    try:
        while True:
            if proc.pid is not None:
                usage.peak_rss = max(usage.peak_rss, peak_rss_bytes(proc.pid))
            if parent.poll(WATCH_EVERY):
                try:
                    kind, payload, *rest = parent.recv()
                except (EOFError, OSError):
                    proc.join(5)
                    raise (on_crash or _crashed)(proc.exitcode) from None
                if kind == "progress":
                    if on_progress is not None:
                        on_progress(payload)
                    continue
                usage.answered = True
                if len(rest) == 2:
                    usage.peak_rss = max(usage.peak_rss, int(rest[0]))
                    usage.start_rss = int(rest[1])
                if kind == "ok":
                    return payload
                status, code, message, details = payload
                raise PlatformError(status, code, message, details)
            if not proc.is_alive() and not parent.poll(0):
                proc.join(1)
                raise (on_crash or _crashed)(proc.exitcode)
            now = time.monotonic()
            if deadline is not None and now > deadline:
                raise (on_deadline or _timed_out)()
            if memory_limit is not None and proc.pid is not None:
                used = rss_bytes(proc.pid)
                if used > memory_limit:
                    raise LimitExceeded(
                        f"The work used more memory than the platform allows per job ({memory_limit} bytes, "
                        "setting PREVISIO_JOB_MEMORY_BYTES) and was stopped.",
                        {"limit": "memory", "max": memory_limit},
                    )
            if should_stop is not None and now >= stop_check_at:
                stop_check_at = now + 0.5
                reason = should_stop()
                if reason:
                    raise Stopped(reason)
    finally:
        parent.close()
        life_w.close()
        if proc.is_alive():
            proc.kill()
        proc.join(5)


def _ready(*, report: Callable[[Any], None]) -> bool:
    """The work of :func:`warm_up`: nothing."""
    return True


def warm_up() -> threading.Thread:
    """Start the fork server and its imports (~2 s) in the background, so that the first job does not wait."""

    def run() -> None:
        try:
            run_isolated(_ready, deadline=time.monotonic() + 120)
        except Exception:  # noqa: BLE001 - the first job will say what is wrong
            log.warning("the fork server of isolated work could not be started", exc_info=True)

    thread = threading.Thread(target=run, name="previsio-sandbox-warm-up", daemon=True)
    thread.start()
    return thread


def _timed_out() -> PlatformError:
    return PlatformError(422, "timeout", "The remote system did not answer in time; the call was stopped.")


def _crashed(exitcode: int | None) -> PlatformError:
    how = f"signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"exit code {exitcode}"
    return Crashed(f"The work stopped without an answer ({how}).", {"exitcode": exitcode})
