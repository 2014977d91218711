"""Limits: request body size, upload size, page size and query time, each answered with a clear 4xx or a typed
failed job.

A platform of this module runs with small limits (4 KB bodies, 100 KB uploads, pages of 10, queries of 1 s);
the defaults are documented in the platform guide and in ``Settings``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import (
    MY_HOST,
    MY_PASSWORD,
    MY_PORT,
    MY_USER,
    PG_HOST,
    PG_PORT,
    PG_SCRAM_PASSWORD,
    PG_SCRAM_USER,
    RunningPlatform,
    start_platform,
    stop_platform,
)

import previsio_sdk as pio
from previsio_sdk.server.settings import Settings

MAX_REQUEST = 4096
MAX_UPLOAD = 100_000
MAX_PAGE = 10


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlatform]:
    """A platform with small limits."""
    running = start_platform(
        tmp_path_factory.mktemp("limited-home"),
        env={
            "PREVISIO_MAX_REQUEST_BYTES": str(MAX_REQUEST),
            "PREVISIO_MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
            "PREVISIO_MAX_PAGE_SIZE": str(MAX_PAGE),
            "PREVISIO_QUERY_TIMEOUT_SECONDS": "1",
        },
    )
    yield running
    stop_platform(running)


@pytest.fixture(scope="module")
def project(limited: RunningPlatform) -> pio.Project:
    """A project of the limited platform (shared by the module's tests)."""
    return pio.Project.new("limits", client=limited.client())


@pytest.fixture(scope="module")
def lite(project: pio.Project, tmp_path_factory: pytest.TempPathFactory) -> pio.SQLConnector:
    """An SQLite connector of the limited platform's project."""
    path = tmp_path_factory.mktemp("limits-db") / "limits.db"
    sqlite3.connect(path).close()
    return project.create_sql_connector("lite", driver="sqlite", database=str(path))


def _post(platform: RunningPlatform, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {platform.token}", **kwargs.pop("headers", {})}
    return requests.post(f"{platform.url}/api/v1{path}", headers=headers, timeout=60, **kwargs)


def _error(resp: requests.Response) -> tuple[int, str]:
    return resp.status_code, resp.json()["error"]["code"]


def test_the_defaults_are_documented_and_generous() -> None:
    """Default limits: 4 MiB bodies, 10 GiB uploads, pages of 1000, queries of an hour."""
    defaults = Settings(home=Path("/nonexistent"))
    assert defaults.max_request_bytes == 4 * 1024**2
    assert defaults.max_upload_bytes == 10 * 1024**3
    assert defaults.max_page_size == 1000
    assert defaults.query_timeout_seconds == 3600
    for name in ("max_request_bytes", "max_upload_bytes", "max_page_size", "query_timeout_seconds"):
        assert name in (Settings.__doc__ or ""), name


# -- request bodies ------------------------------------------------------------------------------------------
def test_a_json_body_over_the_limit_is_refused_with_413(limited: RunningPlatform) -> None:
    """A JSON body larger than max_request_bytes gets 413 payload_too_large, declared or streamed."""
    body = b'{"name": "big", "description": "' + b"x" * MAX_REQUEST + b'"}'
    declared = _post(limited, "/projects", data=body, headers={"Content-Type": "application/json"})
    assert _error(declared) == (413, "payload_too_large")
    assert str(MAX_REQUEST) in declared.json()["error"]["message"]
    streamed = _post(
        limited,
        "/projects",
        data=iter([body[:100], body[100:]]),
        headers={"Content-Type": "application/json"},
    )
    assert _error(streamed) == (413, "payload_too_large")
    just_under = _post(limited, "/projects", json={"name": "small", "description": "x" * (MAX_REQUEST - 100)})
    assert just_under.status_code == 201
    names = [p.name for p in pio.Project.list(client=limited.client())]
    assert "big" not in names and "small" in names


def test_the_sdk_raises_payload_too_large(project: pio.Project, lite: pio.SQLConnector) -> None:
    """Through the SDK, a body over the limit raises PayloadTooLargeError (a ValueError)."""
    with pytest.raises(pio.errors.PayloadTooLargeError) as info:
        project.create_datasource(lite, "huge-query", request="SELECT 1 -- " + "x" * MAX_REQUEST)
    assert info.value.status == 413 and isinstance(info.value, ValueError)


# -- uploads -------------------------------------------------------------------------------------------------
def test_an_upload_over_its_limit_is_refused_with_413_and_leaves_nothing(
    limited: RunningPlatform, project: pio.Project, tmp_path: Path
) -> None:
    """An upload over max_upload_bytes gets 413 (declared or streamed); one under it, above the body limit,
    is accepted: uploads have their own limit."""
    row = b"1234567890,abcdefghij\n"
    too_big = b"a,b\n" + row * (MAX_UPLOAD // len(row) + 10)
    path = f"/projects/{project.id}/datasets/upload"
    params = {"name": "too-big", "format": "csv"}
    octets = {"Content-Type": "application/octet-stream"}
    assert _error(_post(limited, path, params=params, data=too_big, headers=octets)) == (
        413,
        "payload_too_large",
    )
    streamed = _post(
        limited, path, params=params, data=iter([too_big[:50_000], too_big[50_000:]]), headers=octets
    )
    assert _error(streamed) == (413, "payload_too_large")
    big_file = tmp_path / "big.csv"
    big_file.write_bytes(too_big)
    with pytest.raises(pio.errors.PayloadTooLargeError):
        project.create_dataset("too-big", file_name=big_file)
    assert [d.name for d in project.list_datasets()] == []
    assert [p.name for p in (limited.home / "tmp").iterdir()] == []
    fits = b"a,b\n" + row * (MAX_UPLOAD // len(row) - 10)
    assert MAX_REQUEST < len(fits) <= MAX_UPLOAD
    (tmp_path / "fits.csv").write_bytes(fits)
    assert project.create_dataset("fits", file_name=tmp_path / "fits.csv").num_rows == fits.count(b"\n") - 1


# -- pages ---------------------------------------------------------------------------------------------------
def test_a_page_over_the_limit_is_refused_and_the_sdk_pages_within_it(
    limited: RunningPlatform, project: pio.Project
) -> None:
    """page_size over max_page_size gets 422 naming the limit; the SDK's lists then use pages of that size."""
    headers = {"Authorization": f"Bearer {limited.token}"}
    over = requests.get(f"{limited.url}/api/v1/projects", params={"page_size": MAX_PAGE + 1}, headers=headers)
    assert _error(over) == (422, "validation_error")
    assert over.json()["error"]["details"] == {"field": "page_size", "max": MAX_PAGE}
    at = requests.get(f"{limited.url}/api/v1/projects", params={"page_size": MAX_PAGE}, headers=headers)
    assert at.status_code == 200
    client = limited.client()
    for i in range(MAX_PAGE + 5):
        pio.Project.new(f"page-{i}", client=client)
    names = [p.name for p in pio.Project.list(client=client)]
    assert {f"page-{i}" for i in range(MAX_PAGE + 5)} <= set(names)


# -- query time ----------------------------------------------------------------------------------------------
SLOW_QUERIES: dict[str, str] = {
    "postgresql": "SELECT pg_sleep(5) AS slept",
    "mysql": "SELECT COUNT(*) AS n FROM information_schema.columns a, information_schema.columns b, "
    "information_schema.columns c",
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
    "SELECT COUNT(*) AS n FROM c",
}


@pytest.fixture
def slow_connector(
    request: pytest.FixtureRequest, project: pio.Project, lite: pio.SQLConnector
) -> Callable[[str], pio.SQLConnector]:
    """The connector of a dialect on the limited platform."""

    def make(driver: str) -> pio.SQLConnector:
        if driver == "postgresql":
            pg_database = request.getfixturevalue("pg_database")
            return project.create_sql_connector(
                f"slow-{driver}",
                host=PG_HOST,
                port=PG_PORT,
                username=PG_SCRAM_USER,
                password=PG_SCRAM_PASSWORD,
                database=pg_database,
            )
        if driver == "mysql":
            my_database = request.getfixturevalue("my_database")
            return project.create_sql_connector(
                f"slow-{driver}",
                host=MY_HOST,
                port=MY_PORT,
                username=MY_USER,
                password=MY_PASSWORD,
                driver="mysql",
                database=my_database,
            )
        return lite

    return make


@pytest.mark.parametrize("driver", sorted(SLOW_QUERIES))
def test_a_query_over_the_time_limit_fails_the_job_with_query_timeout(
    project: pio.Project, slow_connector: Callable[[str], pio.SQLConnector], driver: str
) -> None:
    """A snapshot whose query runs past query_timeout_seconds fails with query_timeout, saying which limit."""
    connector = slow_connector(driver)
    source = project.create_datasource(connector, f"slow-{driver}", request=SLOW_QUERIES[driver], check=False)
    with pytest.raises(pio.JobFailedError) as info:
        project.create_dataset(f"slow-{driver}", datasource=source, timeout=60)
    assert info.value.code == "query_timeout"
    assert "PREVISIO_QUERY_TIMEOUT_SECONDS" in info.value.message and "1 s" in info.value.message
    assert f"slow-{driver}" not in [d.name for d in project.list_datasets()]
    if driver != "sqlite":
        connector.delete(force=True)
