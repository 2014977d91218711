"""The lean install: the SDK imports none of the platform's packages, and says what to do without them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from previsio_sdk import local
from previsio_sdk.errors import ConfigurationError
from previsio_sdk.local import ensure_local_platform as real_ensure_local_platform

#: Packages of the ``platform`` extra only: none may be imported by ``import previsio_sdk``.
PLATFORM_ONLY = ("fastapi", "uvicorn", "sqlalchemy", "pydantic", "psycopg", "pymysql", "connectorx")


def test_importing_the_sdk_imports_no_platform_package() -> None:
    """``import previsio_sdk`` (and its public classes) loads no web framework nor database driver."""
    code = (
        "import sys, previsio_sdk as pio\n"
        "pio.Project, pio.Dataset, pio.Client\n"
        f"print(sorted(m for m in {PLATFORM_ONLY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_without_the_platform_the_first_call_says_what_to_install_or_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    """With the SDK alone and no URL, starting the local platform fails with one sentence naming the fix."""
    monkeypatch.setattr(local, "PLATFORM_MODULES", ("previsio_no_such_module",))
    assert not local.platform_installed()
    with pytest.raises(ConfigurationError) as info:
        real_ensure_local_platform(tmp_path)  # type: ignore[arg-type]
    message = str(info.value)
    assert "pip install 'previsio_sdk[platform]'" in message
    assert "PREVISIO_URL" in message and "init_client" in message
    assert message.count(". ") == 0 and message.endswith(".")


def test_with_the_platform_installed_the_check_passes() -> None:
    """In the test environment (the ``platform`` extra installed) the platform counts as installed."""
    assert local.platform_installed()
