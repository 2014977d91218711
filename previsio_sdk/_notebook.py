"""Errors in IPython and Jupyter: the user's own call and the message, without the SDK's inner frames.

When ``previsio_sdk`` is imported in an IPython shell that has no custom exception handler yet, an error of
the SDK (:class:`~previsio_sdk.errors.PrevisioError`) is shown with the frames of the user's code only: the
cell line that made the call, then the error's type and message. The frames inside the SDK (its HTTP choke
point, its helpers) say nothing a user can act on. Any other error is shown as IPython always shows it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import TracebackType
from typing import Any

from .errors import PrevisioError

_PACKAGE_DIR = str(Path(__file__).resolve().parent)


def _in_sdk(tb: TracebackType) -> bool:
    filename = tb.tb_frame.f_code.co_filename
    try:
        return str(Path(filename).resolve()).startswith(_PACKAGE_DIR)
    except (OSError, ValueError):
        return False


def user_frames(tb: TracebackType | None) -> TracebackType | None:
    """``tb`` without the frames of files inside the SDK package (the user's frames, in order)."""
    kept = []
    while tb is not None:
        if not _in_sdk(tb):
            kept.append(tb)
        tb = tb.tb_next
    chain = None
    for item in reversed(kept):
        chain = TracebackType(chain, item.tb_frame, item.tb_lasti, item.tb_lineno)
    return chain


def _show(
    shell: Any, etype: type[BaseException], value: BaseException, tb: Any, tb_offset: Any = None
) -> Any:
    """IPython custom exception handler: a traceback of the user's frames only, then the message."""
    stb = shell.InteractiveTB.structured_traceback(etype, value, user_frames(tb), tb_offset=tb_offset)
    shell._showtraceback(etype, value, stb)
    return stb


def install() -> bool:
    """Show SDK errors with the user's frames only in the running IPython shell, if there is one.

    Returns:
        Whether the handler was installed (not when IPython is not running, or another handler is set).
    """
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython is not None else None
    if shell is None or not hasattr(shell, "set_custom_exc"):
        return False
    if shell.custom_exceptions and shell.custom_exceptions != (PrevisioError,):
        return False  # someone else's handler: leave it
    shell.set_custom_exc((PrevisioError,), _show)
    return True
