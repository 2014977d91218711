"""Progress displays: a bar with a total when known, a counter otherwise, and a summary line that stays."""

from __future__ import annotations

import io
import sys
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import responses

import previsio_sdk as pio
from previsio_sdk import _progress
from previsio_sdk._progress import Progress, wanted

from .payloads import API_URL, MockApi, dataset_payload, job_payload


class FakeHandle:
    """Stands for IPython's DisplayHandle: records every bundle shown."""

    def __init__(self, shown: list[dict[str, str]]) -> None:
        self.shown = shown

    def update(self, bundle: dict[str, str], raw: bool = False) -> None:
        self.shown.append(bundle)


@pytest.fixture
def notebook(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """Pretend to run in a Jupyter kernel; the list collects what is displayed, last first shown last."""
    import IPython.display

    shown: list[dict[str, str]] = []

    def display(bundle: dict[str, str], raw: bool = False, display_id: bool = False) -> FakeHandle:
        shown.append(bundle)
        return FakeHandle(shown)

    monkeypatch.setattr(_progress, "in_notebook", lambda: True)
    monkeypatch.setattr(IPython.display, "display", display)
    monkeypatch.delenv(_progress.ENV_PROGRESS, raising=False)
    return shown


class TestWhenShown:
    def test_a_script_without_a_terminal_stays_quiet(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """No notebook, no terminal: nothing is shown unless asked for."""
        monkeypatch.setattr(_progress, "in_notebook", lambda: False)
        monkeypatch.setattr(_progress, "_stderr_is_terminal", lambda: False)
        assert wanted(None) is False
        assert wanted(True) is True

    def test_the_environment_variable_turns_it_off(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """PREVISIO_PROGRESS=0 turns progress off in a notebook; progress=True still wins."""
        monkeypatch.setattr(_progress, "in_notebook", lambda: True)
        monkeypatch.setenv("PREVISIO_PROGRESS", "0")
        assert wanted(None) is False
        assert wanted(True) is True
        monkeypatch.setenv("PREVISIO_PROGRESS", "1")
        assert wanted(None) is True


class TestNotebook:
    def test_a_bar_with_a_total_then_a_summary_that_stays(self, notebook: list[dict[str, str]]) -> None:
        """With a total the notebook shows an HTML <progress> bar; at the end, only the summary line."""
        bar = Progress("snapshot 'orders'", total=200_000)
        bar._last_shown = -1.0
        bar.update(50_000)
        assert '<progress value="50000" max="200000">' in notebook[-1]["text/html"]
        assert "50,000 rows / 200,000 rows (25%)" in notebook[-1]["text/plain"]
        bar.close("200,000 rows, 10.7 MB")
        assert notebook[-1]["text/plain"].startswith("snapshot 'orders': 200,000 rows, 10.7 MB in ")
        assert "<progress" not in notebook[-1]["text/html"]

    def test_without_a_total_a_counter(self, notebook: list[dict[str, str]]) -> None:
        """Without a total the display is a counter, with no bar and no percentage."""
        bar = Progress("export")
        bar._last_shown = -1.0
        bar.update(1234)
        assert notebook[-1]["text/plain"] == "export: 1,234 rows"
        assert "<progress" not in notebook[-1]["text/html"]

    def test_no_ipywidgets_and_no_tqdm_warning(self, notebook: list[dict[str, str]]) -> None:
        """The notebook display needs neither ipywidgets nor tqdm's notebook bar (no TqdmWarning)."""
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with Progress("load", total=10, unit="bytes") as bar:
                bar.update(10)
        assert "ipywidgets" not in sys.modules
        assert notebook[-1]["text/plain"].startswith("load: 10 B in ")

    def test_a_job_wait_ends_with_rows_and_size(
        self,
        notebook: list[dict[str, str]],
        client: pio.Client,
        api: MockApi,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Waiting for a snapshot leaves "snapshot 'name': N rows, size in T s" as the cell's output."""
        monkeypatch.setattr("previsio_sdk.client.time.sleep", lambda s: None)
        api.add("GET", "/jobs/j1", json=job_payload(status="running", progress_rows=2))
        api.add("GET", "/jobs/j1", json=job_payload(status="succeeded", progress_rows=3))
        api.add("GET", "/datasets/d1", json=dataset_payload(num_rows=3, size_bytes=10_700_000))
        pio.Job.from_dict(job_payload(), client).wait()
        assert notebook[-1]["text/plain"].startswith("snapshot 'orders_2024_01': 3 rows, 10.7 MB in ")


class TestTerminal:
    def test_the_summary_is_printed_to_stderr(self, capsys: pytest.CaptureFixture[str]) -> None:
        """In a terminal the bar goes away and one summary line is printed to stderr."""
        with Progress("download 'x'", total=2000, unit="bytes") as bar:
            bar.advance(2000)
        err = capsys.readouterr().err
        assert err.rstrip().splitlines()[-1].startswith("download 'x': 2.0 kB in ")

    def test_progress_false_prints_nothing(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A disabled display prints nothing, but still computes its summary."""
        with Progress("x", enabled=False) as bar:
            bar.update(5)
        assert capsys.readouterr().err == ""
        assert bar.summary is not None and bar.summary.startswith("x: 5 rows in ")


def parquet_file() -> bytes:
    labels = [f"{i * 7919 % 100_003:032d}" for i in range(100_000)]  # distinct: the bulk of the file
    table = pa.table({"id": pa.array(range(100_000), pa.int64()), "label": labels})
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=10_000)
    return buf.getvalue()


def test_remote_filters_fetch_only_the_needed_byte_ranges(client: pio.Client) -> None:
    """From a remote platform, to_arrow(columns, filters) reads with Range requests, far less than a file."""
    blob = parquet_file()
    served: list[int] = []

    def answer(request: Any) -> tuple[int, dict[str, str], bytes]:
        start, end = (int(x) for x in request.headers["Range"].removeprefix("bytes=").split("-"))
        served.append(end - start + 1)
        return 206, {"Content-Range": f"bytes {start}-{end}/{len(blob)}"}, blob[start : end + 1]

    client.may_share_files = False
    dataset = pio.Dataset.from_dict(dataset_payload(num_rows=100_000, size_bytes=len(blob)), client)
    with responses.RequestsMock() as mock:
        mock.add_callback(responses.GET, f"{API_URL}/datasets/d1/download", callback=answer)
        table = dataset.to_arrow(columns=["id"], filters=[("id", "<", 15_000)], progress=False)
        expr = dataset.to_pandas(columns=["id"], filters=pc.field("id") >= 99_990, progress=False)
    assert table.column_names == ["id"] and table.num_rows == 15_000
    assert list(expr["id"]) == list(range(99_990, 100_000))
    assert sum(served) < len(blob) / 3  # two loads, each a 64 kB footer read and its few id chunks


def test_integer_filters_on_decimal_columns_compare_as_decimals() -> None:
    """("amount", ">", 100) on a decimal column becomes Decimal(100): pyarrow refuses int64 there."""
    from decimal import Decimal

    from previsio_sdk._reading import fit_filters
    from previsio_sdk.datasets import Column

    schema = [Column("amount", "decimal128(10, 2)"), Column("n", "int64")]
    assert fit_filters([("amount", ">", 100), ("n", "<", 5)], schema) == [
        ("amount", ">", Decimal(100)),
        ("n", "<", 5),
    ]
    assert fit_filters([[("amount", "in", [1, 2])]], schema) == [[("amount", "in", [Decimal(1), Decimal(2)])]]
    expression = pc.field("amount") > 1
    assert fit_filters(expression, schema) is expression
