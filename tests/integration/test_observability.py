"""Observability the usual way: Prometheus metrics of every process, and health that names its parts."""

from __future__ import annotations

import re

import requests
from conftest import RunningPlatform

import previsio_sdk as pio


def _metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of the Prometheus text ``text``."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_count_jobs_by_state_durations_and_rows(platform: RunningPlatform, api, project) -> None:  # type: ignore[no-untyped-def]
    """``GET /metrics`` (an administrator's token) gives Prometheus text: jobs by kind and state from the
    metadata store, queue depth, and for the jobs this process ran their durations and rows moved."""
    before = _metric(api("GET", "/metrics").text, "previsio_rows_moved_total", kind="job") or 0
    project.create_dataset("m1", dataframe=__import__("pandas").DataFrame({"x": range(1234)}))
    resp = api("GET", "/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert (_metric(text, "previsio_jobs", kind="upload", state="succeeded") or 0) >= 1
    assert _metric(text, "previsio_queue_depth", queue="previsio.snapshots") is not None
    assert (_metric(text, "previsio_job_duration_seconds_count", kind="job", status="succeeded") or 0) >= 1
    assert _metric(text, "previsio_rows_moved_total", kind="job") == before + 1234
    assert _metric(text, "process_resident_memory_bytes") is not None


def test_metrics_need_an_administrator(platform: RunningPlatform, api, client) -> None:  # type: ignore[no-untyped-def]
    """Without a token the metrics are 401; with a user's token that is not an administrator's, 403."""
    assert api("GET", "/metrics", token=None).status_code == 401
    user = pio.User.create(f"m-{__import__('uuid').uuid4().hex[:8]}", client=client)
    assert api("GET", "/metrics", token=user.create_token().value).status_code == 403


def test_health_names_its_parts(platform: RunningPlatform) -> None:
    """``/health/parts`` needs no token and says the metadata and dataset stores answer; an embedded platform
    uses no broker."""
    resp = requests.get(f"{platform.url}/api/v1/health/parts", timeout=10)
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "parts": {"metadata": "ok", "store": "ok", "broker": "not_used"}}
