"""Answers of the platform as the server's routes shape them, and a wrapper of the ``responses`` mock."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
import responses

BASE_URL = "http://previsio.test"
API_URL = f"{BASE_URL}/api/v1"
TOKEN = "tok-123"
CREATED_AT = "2024-05-01T12:00:00Z"


def project_payload(**overrides: Any) -> dict[str, Any]:
    """``ProjectPublic``."""
    return {"id": "p1", "name": "churn", "description": None, "created_at": CREATED_AT, **overrides}


def connector_payload(**overrides: Any) -> dict[str, Any]:
    """``ConnectorPublic`` of an SQL connector with a password set."""
    return {
        "id": "c1",
        "project_id": "p1",
        "name": "warehouse",
        "type": "sql",
        "driver": "postgresql",
        "host": "db.example.com",
        "port": 5432,
        "username": "me",
        "database": "sales",
        "options": {},
        "has_password": True,
        "secret_fields": ["password"],
        "created_at": CREATED_AT,
        **overrides,
    }


def datasource_payload(**overrides: Any) -> dict[str, Any]:
    """``DataSourcePublic`` of a table datasource."""
    return {
        "id": "s1",
        "project_id": "p1",
        "connector_id": "c1",
        "name": "orders",
        "database": "sales",
        "table": "orders",
        "request": None,
        "path": None,
        "bucket": None,
        "options": {},
        "created_at": CREATED_AT,
        **overrides,
    }


def dataset_payload(**overrides: Any) -> dict[str, Any]:
    """``DatasetPublic`` of a complete snapshot."""
    return {
        "id": "d1",
        "project_id": "p1",
        "name": "orders_2024_01",
        "origin": "snapshot",
        "datasource_id": "s1",
        "num_rows": 3,
        "size_bytes": 1234,
        "content_hash": "ab" * 32,
        "schema": [
            {"name": "id", "type": "int64", "nullable": False},
            {"name": "amount", "type": "double", "nullable": True},
        ],
        "file_name": None,
        "created_at": CREATED_AT,
        **overrides,
    }


def job_payload(**overrides: Any) -> dict[str, Any]:
    """``JobPublic`` of a snapshot job."""
    return {
        "id": "j1",
        "project_id": "p1",
        "kind": "snapshot",
        "status": "pending",
        "dataset_id": "d1",
        "progress_rows": 0,
        "error_code": None,
        "error_message": None,
        "created_at": CREATED_AT,
        "started_at": None,
        "finished_at": None,
        **overrides,
    }


def exporter_payload(**overrides: Any) -> dict[str, Any]:
    """``ExporterPublic`` of a table exporter."""
    return {
        "id": "e1",
        "project_id": "p1",
        "connector_id": "c1",
        "name": "scores_out",
        "description": None,
        "database": None,
        "table": "scores",
        "path": None,
        "bucket": None,
        "write_mode": "replace",
        "key": None,
        "options": {},
        "created_at": CREATED_AT,
        **overrides,
    }


def export_payload(**overrides: Any) -> dict[str, Any]:
    """``ExportPublic`` of a pending export of dataset d1."""
    return {
        "id": "x1",
        "project_id": "p1",
        "exporter_id": "e1",
        "dataset_id": "d1",
        "source": "dataset",
        "file_name": None,
        "status": "pending",
        "rows": None,
        "progress_rows": 0,
        "destination": None,
        "error_code": None,
        "error_message": None,
        "created_at": CREATED_AT,
        "started_at": None,
        "finished_at": None,
        **overrides,
    }


def page_payload(
    items: list[Any], total: int | None = None, page: int = 1, page_size: int = 500
) -> dict[str, Any]:
    """One page of a list."""
    return {
        "items": items,
        "total": len(items) if total is None else total,
        "page": page,
        "page_size": page_size,
    }


def error_payload(
    code: str, message: str, details: Any = None, request_id: str | None = "req-1"
) -> dict[str, Any]:
    """The body of an error answer."""
    return {"error": {"code": code, "message": message, "details": details, "request_id": request_id}}


class MockApi:
    """The ``responses`` mock, addressed with paths below ``/api/v1``."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.mock = mock

    def add(self, method: str, path: str, **kwargs: Any) -> None:
        """Answer ``method path`` (any query string) with ``kwargs`` (``json``, ``status``, ``body``...)."""
        self.mock.add(method, f"{API_URL}{path}", **kwargs)

    @property
    def requests(self) -> list[requests.PreparedRequest]:
        """The requests sent so far, in order."""
        return [call.request for call in self.mock.calls]


def path_of(request: requests.PreparedRequest) -> str:
    """The request's path below ``/api/v1``."""
    path = urlsplit(request.url).path
    assert path.startswith("/api/v1/"), path
    return path[len("/api/v1") :]


def query_of(request: requests.PreparedRequest) -> dict[str, str]:
    """The request's query parameters (each given once)."""
    parsed = parse_qs(urlsplit(request.url).query, keep_blank_values=True)
    assert all(len(v) == 1 for v in parsed.values()), parsed
    return {k: v[0] for k, v in parsed.items()}


def json_of(request: requests.PreparedRequest) -> Any:
    """The request's JSON body, or None when it has no body."""
    if request.body is None:
        return None
    return json.loads(request.body)


def assert_request(
    request: requests.PreparedRequest,
    method: str,
    path: str,
    query: dict[str, str] | None = None,
    body: Any = None,
) -> None:
    """Assert the exact method, path, query string and JSON body of a request, and its token."""
    assert request.method == method
    assert path_of(request) == path
    assert query_of(request) == (query or {})
    assert json_of(request) == body
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
