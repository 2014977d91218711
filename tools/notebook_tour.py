"""Run docs/notebook_tour.ipynb on a fresh local platform and take the screenshots of docs/notebook_tour.rst.

Usage (from the repository root; needs Debian's ``chromium``: ``apt-get install -y chromium``)::

    .venv/bin/python tools/notebook_tour.py

Executes the notebook in a real Jupyter kernel (nbclient), renders its cells and saved outputs as HTML pages
in the look of Jupyter, and screenshots them with headless Chromium into ``docs/_static/tour/``.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from previsio_sdk.local import ensure_local_platform, stop_local_platform

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "docs" / "notebook_tour.ipynb"
OUT = ROOT / "docs" / "_static" / "tour"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: Cells (1-based, code cells only) of each screenshot.
SHOTS = {"tour-1-resources.png": (1, 2, 3), "tour-2-project-and-data.png": (4, 5, 6, 7, 8)}

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Roboto, sans-serif; font-size: 13px; margin: 16px;
       width: 1040px; }
.cell { margin-bottom: 14px; }
.in { display: flex; }
.prompt { color: #303f9f; width: 70px; flex: none; font-family: monospace; padding-top: 6px; }
.out .prompt { color: #d84315; }
pre.code { background: #f5f5f5; border: 1px solid #e0e0e0; padding: 6px 8px; margin: 0; flex: 1;
           white-space: pre-wrap; }
.out { display: flex; margin-top: 4px; } .body { flex: 1; overflow: hidden; }
pre.stream, pre.text { margin: 2px 0; white-space: pre-wrap; } pre.stderr { background: #fdd; padding: 4px; }
pre.error { background: #fdd; padding: 6px; white-space: pre-wrap; }
table { border-collapse: collapse; margin: 4px 0; font-size: 12px; }
th, td { border: none; padding: 3px 10px; text-align: right; } thead th { border-bottom: 1px solid #999; }
tbody tr:nth-child(odd) { background: #f5f5f5; } td:first-child, th:first-child { text-align: left; }
summary { font-weight: 600; margin-top: 6px; cursor: pointer; }
"""


def execute(env: dict[str, str]) -> nbformat.NotebookNode:
    """The tour, executed in a new kernel whose environment has ``env`` added."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        with tempfile.TemporaryDirectory() as cwd:
            NotebookClient(
                nb, kernel_name="python3", timeout=180, resources={"metadata": {"path": cwd}}
            ).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return nb


def _output_html(out: nbformat.NotebookNode) -> str:
    kind = out["output_type"]
    if kind == "stream":
        return f'<pre class="stream {out["name"]}">{html.escape(out["text"])}</pre>'
    if kind == "error":
        return f'<pre class="error">{html.escape(ANSI.sub("", chr(10).join(out["traceback"])))}</pre>'
    data = out.get("data", {})
    if "text/html" in data:
        return data["text/html"]
    return f'<pre class="text">{html.escape(data.get("text/plain", ""))}</pre>'


def render(nb: nbformat.NotebookNode, cells: tuple[int, ...]) -> str:
    """An HTML page of the code cells numbered ``cells`` (1-based) with their saved outputs."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><style>{STYLE}</style></head><body>"]
    code = [c for c in nb.cells if c.cell_type == "code"]
    for n in cells:
        cell = code[n - 1]
        count = cell.get("execution_count") or " "
        parts.append(f'<div class="cell"><div class="in"><div class="prompt">In [{count}]:</div>')
        parts.append(f'<pre class="code">{html.escape(cell.source)}</pre></div>')
        for out in cell.get("outputs", []):
            prompt = f"Out[{count}]:" if out["output_type"] == "execute_result" else ""
            parts.append(f'<div class="out"><div class="prompt">{prompt}</div><div class="body">')
            parts.append(_output_html(out) + "</div></div>")
        parts.append("</div>")
    parts.append("</body></html>")
    return "".join(parts)


def screenshot(page: Path, target: Path, height: int) -> None:
    """Headless Chromium's screenshot of ``page``, 1100 pixels wide."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium is needed: apt-get install -y chromium")
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            f"--window-size=1100,{height}",
            f"--screenshot={target}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="previsio-tour-") as tmp:
        home = Path(tmp) / "home"
        url, token = ensure_local_platform(home)
        try:
            nb = execute({"PREVISIO_URL": url, "PREVISIO_TOKEN": token, "PREVISIO_HOME": str(home)})
        finally:
            stop_local_platform(home)
        for name, cells in SHOTS.items():
            page = Path(tmp) / f"{name}.html"
            page.write_text(render(nb, cells), encoding="utf-8")
            screenshot(page, OUT / name, height=1300 if len(cells) > 3 else 1000)
            print(f"wrote {OUT / name}")


if __name__ == "__main__":
    main()
