"""Progress of long work (snapshots, uploads, downloads, loads, exports): a bar, then a one-line summary.

Where the size of the work is known (a row estimate from the source, a file's size, a download's length) the
display is a bar with a total and an ETA; where it is not, a counter. When the work ends, the display is
replaced by one line that stays (``orders: 200,000 rows, 10.7 MB in 2.6 s``): in a notebook it is the cell's
saved output, in a terminal it is printed to stderr.

In a notebook the display is plain HTML updated in place (no ipywidgets, so no ``TqdmWarning``); in a terminal
it is a ``tqdm`` bar on stderr. A script without a terminal stays quiet. ``progress=False`` on a call, or
``PREVISIO_PROGRESS=0`` in the environment, turns it off; ``progress=True`` forces it on.
"""

from __future__ import annotations

import html
import os
import sys
import time
from types import TracebackType
from typing import Any

from ._display import count, human_bytes

#: Environment variable that turns progress displays off (``0``, ``false``, ``no``, ``off``).
ENV_PROGRESS = "PREVISIO_PROGRESS"
_OFF = frozenset({"0", "false", "no", "off"})
_NOTEBOOK_EVERY = 0.25  # seconds between two updates of a notebook display


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (an IPython shell that sends rich output)."""
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def wanted(progress: bool | None) -> bool:
    """Whether to show progress: ``progress`` if given, else in a notebook or a terminal unless turned off.

    ``PREVISIO_PROGRESS=0`` turns it off; ``progress=True`` wins over the variable.
    """
    if progress is not None:
        return progress
    if os.environ.get(ENV_PROGRESS, "").strip().lower() in _OFF:
        return False
    return in_notebook() or _stderr_is_terminal()


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def seconds(elapsed: float) -> str:
    """A duration as ``2.6 s`` or ``3 min 12 s``."""
    if elapsed < 60:
        return f"{elapsed:.1f} s"
    minutes, secs = divmod(int(round(elapsed)), 60)
    return f"{minutes} min {secs} s"


class Progress:
    """The display of one long piece of work; use as a context manager or call :meth:`close`.

    Args:
        description: What is being done (``snapshot orders``), the label of the bar and of the summary.
        total: How much there is to do, in ``unit``, when known: a bar with an ETA; None: a counter.
        unit: ``rows`` or ``bytes`` (bytes are shown as ``10.7 MB``).
        enabled: Show anything at all (see :func:`wanted`).
    """

    def __init__(
        self, description: str, total: int | None = None, unit: str = "rows", enabled: bool = True
    ) -> None:
        self.description = description
        self.total = total if total and total > 0 else None
        self.unit = unit
        self.enabled = enabled
        self.done = 0
        self.started = time.monotonic()
        self.summary: str | None = None
        self._closed = False
        self._last_shown = 0.0
        self._bar: Any = None
        self._handle: Any = None
        if enabled:
            self._open()

    # -- life cycle ------------------------------------------------------------------------------------------
    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        elif issubclass(exc_type, KeyboardInterrupt):
            self.close(f"interrupted after {self._amount(self.done)}", ok=False)
        else:
            self.close(f"failed after {self._amount(self.done)}", ok=False)

    def _open(self) -> None:
        if in_notebook():
            from IPython.display import display

            self._handle = display(self._bundle(), raw=True, display_id=True)
        else:
            from tqdm import tqdm

            self._bar = tqdm(
                desc=self.description,
                total=self.total,
                unit=" rows" if self.unit == "rows" else "B",
                unit_scale=True,
                unit_divisor=1000,
                leave=False,
                file=sys.stderr,
            )

    def update(self, done: int, total: int | None = None) -> None:
        """Set how much is done so far (and the total, when it becomes known)."""
        if total and total > 0:
            self.total = total
        done = max(done, 0)
        delta, self.done = done - self.done, done
        if not self.enabled or self._closed:
            return
        if self._bar is not None:
            if self.total is not None and self._bar.total != self.total:
                self._bar.total = self.total
                self._bar.refresh()
            self._bar.update(delta)
        elif self._handle is not None:
            now = time.monotonic()
            if now - self._last_shown >= _NOTEBOOK_EVERY:
                self._last_shown = now
                self._handle.update(self._bundle(), raw=True)

    def advance(self, amount: int) -> None:
        """Add ``amount`` to what is done."""
        self.update(self.done + amount)

    def close(self, summary: str | None = None, ok: bool = True) -> None:
        """End the display, leaving one summary line (``summary``, else what was done and how long it took).

        Args:
            summary: The line to leave, without the time it took (added here); None: the amount done.
            ok: Whether the work succeeded (a failed or interrupted one is marked as such).
        """
        if self._closed:
            return
        self._closed = True
        elapsed = time.monotonic() - self.started
        what = summary if summary is not None else self._amount(self.done)
        self.summary = f"{self.description}: {what} in {seconds(elapsed)}"
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
            print(("" if ok else "✗ ") + self.summary, file=sys.stderr)
        elif self._handle is not None:
            text = self.summary if ok else f"✗ {self.summary}"
            self._handle.update(
                {"text/plain": text, "text/html": f"<pre>{html.escape(text)}</pre>"}, raw=True
            )

    # -- what is shown ---------------------------------------------------------------------------------------
    def _amount(self, n: int) -> str:
        return human_bytes(n) if self.unit == "bytes" else f"{count(n)} rows"

    def status(self) -> str:
        """The current state in words: ``12,000 / 200,000 rows (6%), 3 s left`` or ``12,000 rows``."""
        if self.total is None:
            return f"{self.description}: {self._amount(self.done)}"
        share = min(self.done / self.total, 1.0)
        text = f"{self.description}: {self._amount(self.done)} / {self._amount(self.total)} ({share:.0%})"
        elapsed = time.monotonic() - self.started
        if self.done and elapsed > 0.5:
            left = max(self.total - self.done, 0) / (self.done / elapsed)
            text += f", {seconds(left)} left"
        return text

    def _bundle(self) -> dict[str, str]:
        text = self.status()
        bar = ""
        if self.total is not None:
            bar = f'<progress value="{min(self.done, self.total)}" max="{self.total}"></progress> '
        return {"text/plain": text, "text/html": f"<div>{bar}<code>{html.escape(text)}</code></div>"}


class CountingReader:
    """A binary file wrapper that reports what was read to a :class:`Progress` (an upload's body)."""

    def __init__(self, fh: Any, progress: Progress) -> None:
        self._fh = fh
        self._progress = progress

    def read(self, size: int = -1) -> bytes:
        chunk = self._fh.read(size)
        self._progress.update(self._fh.tell())
        return chunk

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)

    def __iter__(self) -> Any:
        while chunk := self.read(1 << 16):
            yield chunk
