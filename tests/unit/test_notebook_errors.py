"""SDK errors in IPython: the traceback keeps the user's frames and drops the SDK's own."""

from __future__ import annotations

import sys

import pytest

import previsio_sdk as pio
from previsio_sdk import _notebook

from .payloads import MockApi


def test_the_sdk_frames_are_dropped_and_the_callers_kept(client: pio.Client, api: MockApi) -> None:
    """Of a NotFoundError raised deep in Client.request, only this test's frame is left."""
    api.add("GET", "/projects/nope", json={"error": {"code": "not_found", "message": "no"}}, status=404)
    with pytest.raises(pio.NotFoundError) as info:
        pio.Project.from_id("nope", client=client)
    full, kept = [], []
    tb = info.value.__traceback__
    while tb is not None:
        full.append(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    tb = _notebook.user_frames(info.value.__traceback__)
    while tb is not None:
        kept.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    assert any("previsio_sdk" in f for f in full)
    assert kept == ["test_the_sdk_frames_are_dropped_and_the_callers_kept"]


def test_install_sets_the_handler_only_in_a_shell_without_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """In an IPython shell the handler is set for PrevisioError; another tool's handler is left alone."""

    class Shell:
        custom_exceptions: tuple = ()

        def set_custom_exc(self, exc_tuple: tuple, handler: object) -> None:
            self.custom_exceptions = exc_tuple

    class FakeIPython:
        shell = Shell()

        @classmethod
        def get_ipython(cls) -> Shell:
            return cls.shell

    monkeypatch.setitem(sys.modules, "IPython", FakeIPython)
    assert _notebook.install() is True
    assert FakeIPython.shell.custom_exceptions == (pio.PrevisioError,)
    FakeIPython.shell.custom_exceptions = (ValueError,)
    assert _notebook.install() is False
    monkeypatch.setitem(sys.modules, "IPython", None)
    assert _notebook.install() is False
