"""The notebook tour (docs/notebook_tour.ipynb) run in a real Jupyter kernel; its saved outputs checked.

The kernel has no ipywidgets (the test extra does not install it), as in many plain Jupyter setups: the
progress display must still work, leave its summary line in the saved notebook, and warn about nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

import previsio_sdk as pio

TOUR = Path(__file__).resolve().parents[2] / "docs" / "notebook_tour.ipynb"


def _delete_tour_project(client: pio.Client) -> None:
    for project in pio.Project.list(client):
        if project.name == "tour":
            project.delete()


@pytest.fixture
def executed(platform, client: pio.Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The tour executed against the test platform, saved and read back as a person would open it."""
    _delete_tour_project(client)
    monkeypatch.setenv("PREVISIO_URL", platform.url)
    monkeypatch.setenv("PREVISIO_TOKEN", platform.token)
    monkeypatch.delenv("PREVISIO_PROGRESS", raising=False)
    nb = nbformat.read(TOUR, as_version=4)
    NotebookClient(
        nb, kernel_name="python3", timeout=180, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    saved = tmp_path / "tour.ipynb"
    nbformat.write(nb, saved)
    yield nbformat.read(saved, as_version=4)
    _delete_tour_project(client)


def _outputs(cell) -> list:  # type: ignore[no-untyped-def]
    return [o for o in cell.get("outputs", [])]


def _all_text(nb) -> str:  # type: ignore[no-untyped-def]
    parts = []
    for cell in nb.cells:
        for out in _outputs(cell):
            parts.append(out.get("text", ""))
            parts += [str(v) for v in out.get("data", {}).values()]
            parts += out.get("traceback", [])
    return "\n".join(parts)


def test_the_tour_runs_and_its_saved_outputs_show_what_a_person_needs(executed) -> None:  # type: ignore[no-untyped-def]
    """Summary line kept, no TqdmWarning, HTML tables in the outputs, and SDK errors with the user's frame."""
    code = [c for c in executed.cells if c.cell_type == "code"]
    text = _all_text(executed)
    assert "TqdmWarning" not in text and "IProgress" not in text

    snapshot = code[2]
    plain = [o["data"]["text/plain"] for o in _outputs(snapshot) if "data" in o]
    assert any(re.match(r"snapshot 'orders_2024': 2,000 rows, [\d.]+ kB in [\d.]+ s", p) for p in plain), (
        plain
    )
    html = next(o["data"]["text/html"] for o in _outputs(snapshot) if o["output_type"] == "execute_result")
    assert "<table" in html and "ordered_at" in html  # the schema table and the first rows

    project_html = _outputs(code[3])[0]["data"]["text/html"]
    assert project_html.count("<table") == 3 and "sample" in project_html and "orders_2024" in project_html
    list_html = _outputs(code[4])[0]["data"]["text/html"]
    assert list_html.count("<table") == 1

    error = next(o for o in _outputs(code[-1]) if o["output_type"] == "error")
    assert error["ename"] == "ValidationError"
    assert "Did you mean 'customers'?" in error["evalue"]
    traceback = "\n".join(error["traceback"])
    assert "client.py" not in traceback and "project.py" not in traceback
    assert 'table="customer"' in re.sub(r"\x1b\[[0-9;]*m", "", traceback)  # the user's own call is shown
