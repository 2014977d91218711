"""Bad input never gets a 5xx: unknown ids, invalid values, malformed bodies; and the SDK's typed errors.

Every raw case checks the status, the error code and the shape of the error body; paths and bodies name the
resources of one module-wide set (``<project>``, ``<connector>``...) or ``<missing>``, an id nothing has.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import previsio_sdk as pio

JSON = {"Content-Type": "application/json"}
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")


def nested(depth: int) -> Any:
    """A JSON value of lists nested ``depth`` deep."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.fixture(scope="module")
def world(client: pio.Client, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Ids of a project with an SQLite and a PostgreSQL connector, a datasource, a dataset and its job."""
    db = tmp_path_factory.mktemp("errors") / "world.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, label TEXT)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"row {i}") for i in range(20)])
    con.commit()
    con.close()
    project = pio.Project.new(f"errors-{uuid.uuid4().hex[:8]}", client=client)
    other = pio.Project.new(f"errors-other-{uuid.uuid4().hex[:8]}", client=client)
    lite = project.create_sql_connector("lite", driver="sqlite", database=str(db))
    pg = project.create_sql_connector("pg", driver="postgresql", host="db.invalid", port=5432)
    foreign = other.create_sql_connector("lite", driver="sqlite", database=str(db))
    source = project.create_datasource(lite, "t", table="t")
    job = project.create_dataset("snap", datasource=source, wait=False)
    dataset = job.wait()
    yield {
        "project": project.id,
        "other_project": other.id,
        "connector": lite.id,
        "pg_connector": pg.id,
        "foreign_connector": foreign.id,
        "datasource": source.id,
        "dataset": dataset.id,
        "job": job.id,
        "missing": uuid.uuid4().hex,
        "sqlite_path": str(db),
    }
    project.delete()
    other.delete()


def fill(value: Any, ids: dict[str, str]) -> Any:
    """Replace ``<name>`` placeholders in strings (recursively in dicts and lists) by the ids of ``world``."""
    if isinstance(value, str):
        return re.sub(r"<(\w+)>", lambda m: ids[m.group(1)], value)
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    return value


def check_error(resp: Any, status: int, code: str, contains: str | None = None) -> dict[str, Any]:
    """Assert an error answer: the status, the body ``{"error": {code, message, details, request_id}}``."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details", "request_id"}
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    assert error["request_id"] == resp.headers["X-Request-ID"]
    if contains is not None:
        assert contains in error["message"], error["message"]
    return error


# -- unknown ids: 404 ----------------------------------------------------------------------------------------
NOT_FOUND = [
    ("GET", "/projects/<missing>", {}),
    ("PATCH", "/projects/<missing>", {"json": {"name": "renamed"}}),
    ("DELETE", "/projects/<missing>", {}),
    ("GET", "/projects/<missing>/connectors", {}),
    (
        "POST",
        "/projects/<missing>/connectors",
        {"json": {"name": "c", "driver": "sqlite", "database": "/x.db"}},
    ),
    ("GET", "/projects/<missing>/datasources", {}),
    (
        "POST",
        "/projects/<missing>/datasources",
        {"json": {"name": "d", "connector_id": "<connector>", "table": "t"}},
    ),
    ("GET", "/projects/<missing>/datasets", {}),
    ("POST", "/projects/<missing>/datasets", {"json": {"name": "s", "datasource_id": "<datasource>"}}),
    (
        "POST",
        "/projects/<missing>/datasets/upload",
        {"params": {"name": "u", "format": "csv"}, "data": b"a\n1\n"},
    ),
    ("GET", "/connectors/<missing>", {}),
    ("PATCH", "/connectors/<missing>", {"json": {"name": "renamed"}}),
    ("DELETE", "/connectors/<missing>", {}),
    ("POST", "/connectors/<missing>/test", {}),
    ("GET", "/connectors/<missing>/databases", {}),
    ("GET", "/connectors/<missing>/tables", {}),
    ("GET", "/connectors/<missing>/files", {}),
    ("GET", "/datasources/<missing>", {}),
    ("DELETE", "/datasources/<missing>", {}),
    ("GET", "/datasets/<missing>", {}),
    ("DELETE", "/datasets/<missing>", {}),
    ("GET", "/datasets/<missing>/download", {}),
    ("GET", "/datasets/<missing>/head", {}),
    ("GET", "/jobs/<missing>", {}),
    (
        "POST",
        "/projects/<project>/datasources",
        {"json": {"name": "d", "connector_id": "<missing>", "table": "t"}},
    ),
    (
        "POST",
        "/projects/<project>/datasources",
        {"json": {"name": "d", "connector_id": "<foreign_connector>", "table": "t"}},
    ),
    ("POST", "/projects/<project>/datasets", {"json": {"name": "s", "datasource_id": "<missing>"}}),
    ("GET", "/projects/%00", {}),
    ("GET", "/projects/" + "a" * 5000, {}),
    ("GET", "/connectors/%E2%80%AE%27%22", {}),
    ("GET", "/datasets/..%2F..%2Fplatform.db/download", {}),
    ("GET", "/no/such/route", {}),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs"), NOT_FOUND, ids=[f"{m} {p[:60]}" for m, p, _k in NOT_FOUND]
)
def test_unknown_ids_and_routes_answer_404_not_found(api, world, method, path, kwargs):
    """A request naming an id that does not exist (or a route that does not) answers 404 not_found."""
    check_error(api(method, fill(path, world), **fill(kwargs, world)), 404, "not_found")


def test_a_wrong_method_answers_405(api, world):
    """PUT on a project, a method no route has, answers 405 method_not_allowed (a 4xx, not a 5xx)."""
    check_error(api("PUT", fill("/projects/<project>", world), json={}), 405, "method_not_allowed")


# -- invalid values: 422 -------------------------------------------------------------------------------------
CONNECTORS, DATASOURCES = "/projects/<project>/connectors", "/projects/<project>/datasources"
DATASETS, UPLOAD = "/projects/<project>/datasets", "/projects/<project>/datasets/upload"
PG_CONNECTOR = "/connectors/<pg_connector>"
SQLITE = {"driver": "sqlite", "database": "/tmp/previsio-never-created.db"}
PG = {"driver": "postgresql", "host": "db.invalid"}
INVALID = [
    # projects
    ("project-empty-name", "POST", "/projects", {"json": {"name": ""}}, None),
    ("project-blank-name", "POST", "/projects", {"json": {"name": "   "}}, None),
    ("project-tab-name", "POST", "/projects", {"json": {"name": "\t\t"}}, None),
    ("project-nul-in-name", "POST", "/projects", {"json": {"name": "a\x00b"}}, None),
    ("project-escape-in-name", "POST", "/projects", {"json": {"name": "a\x1b[31mb"}}, None),
    ("project-newline-in-name", "POST", "/projects", {"json": {"name": "line\nbreak"}}, None),
    ("project-del-in-name", "POST", "/projects", {"json": {"name": "a\x7fb"}}, None),
    ("project-name-too-long", "POST", "/projects", {"json": {"name": "x" * 201}}, None),
    ("project-name-number", "POST", "/projects", {"json": {"name": 5}}, None),
    ("project-name-null", "POST", "/projects", {"json": {"name": None}}, None),
    ("project-name-list", "POST", "/projects", {"json": {"name": ["x"]}}, None),
    ("project-name-missing", "POST", "/projects", {"json": {}}, None),
    ("project-extra-field", "POST", "/projects", {"json": {"name": "ok", "colour": "red"}}, "colour"),
    ("project-body-list", "POST", "/projects", {"json": [{"name": "ok"}]}, None),
    ("project-body-string", "POST", "/projects", {"json": "ok"}, None),
    ("project-body-null", "POST", "/projects", {"data": "null", "headers": JSON}, None),
    ("project-no-body", "POST", "/projects", {}, None),
    ("project-description-number", "POST", "/projects", {"json": {"name": "ok", "description": 5}}, None),
    (
        "project-not-json-content-type",
        "POST",
        "/projects",
        {"data": '{"name": "ok"}', "headers": {"Content-Type": "text/plain"}},
        None,
    ),
    ("project-rename-blank", "PATCH", "/projects/<project>", {"json": {"name": "  "}}, None),
    ("project-rename-typo-field", "PATCH", "/projects/<project>", {"json": {"nme": "x"}}, None),
    # connectors
    ("connector-blank-name", "POST", CONNECTORS, {"json": {"name": "  ", **SQLITE}}, None),
    ("connector-newline-name", "POST", CONNECTORS, {"json": {"name": "a\nb", **SQLITE}}, None),
    (
        "connector-unknown-type",
        "POST",
        CONNECTORS,
        {"json": {"name": "c", "type": "nosuch", "host": "h"}},
        "Unknown connector type 'nosuch'",
    ),
    ("connector-empty-type", "POST", CONNECTORS, {"json": {"name": "c", "type": ""}}, None),
    (
        "connector-unknown-driver",
        "POST",
        CONNECTORS,
        {"json": {"name": "c", "driver": "oracle", "host": "h"}},
        "Unknown SQL driver 'oracle'",
    ),
    (
        "connector-odd-port-without-driver",
        "POST",
        CONNECTORS,
        # Nothing answers on port 1 of 127.0.0.1: the platform cannot tell which database it would be.
        {"json": {"name": "c", "host": "127.0.0.1", "port": 1}},
        "pass driver=",
    ),
    ("connector-no-port-no-driver", "POST", CONNECTORS, {"json": {"name": "c", "host": "h"}}, "pass driver="),
    ("connector-port-0", "POST", CONNECTORS, {"json": {"name": "c", **PG, "port": 0}}, None),
    ("connector-port-70000", "POST", CONNECTORS, {"json": {"name": "c", **PG, "port": 70000}}, None),
    ("connector-port-text", "POST", CONNECTORS, {"json": {"name": "c", **PG, "port": "abc"}}, None),
    ("connector-port-fraction", "POST", CONNECTORS, {"json": {"name": "c", **PG, "port": 5432.5}}, None),
    (
        "connector-sqlite-relative-path",
        "POST",
        CONNECTORS,
        {"json": {"name": "c", "driver": "sqlite", "database": "rel.db"}},
        "absolute",
    ),
    ("connector-sqlite-no-path", "POST", CONNECTORS, {"json": {"name": "c", "driver": "sqlite"}}, None),
    (
        "connector-pg-no-host",
        "POST",
        CONNECTORS,
        {"json": {"name": "c", "driver": "postgresql"}},
        "needs a host",
    ),
    (
        "connector-host-bad-ipv6-url",
        "POST",
        CONNECTORS,
        {"json": {"name": "c", "driver": "postgresql", "host": "http://[bad"}},
        None,
    ),
    (
        "connector-host-bad-port",
        "POST",
        CONNECTORS,
        {"json": {"name": "c", "driver": "postgresql", "host": "db:abc"}},
        None,
    ),
    (
        "connector-host-port-out-of-range",
        "POST",
        CONNECTORS,
        {"json": {"name": "c", "driver": "postgresql", "host": "db:99999"}},
        None,
    ),
    (
        "connector-credentials-in-host-url",
        "POST",
        CONNECTORS,
        {"json": {"name": "c", "driver": "postgresql", "host": "postgresql://me:pw-123@db:5432/sales"}},
        "credentials",
    ),
    (
        "connector-credentials-in-host",
        "POST",
        CONNECTORS,
        {"json": {"name": "c", "driver": "postgresql", "host": "me:pw-123@db:5432"}},
        "credentials",
    ),
    (
        "connector-nul-in-host",
        "POST",
        CONNECTORS,
        {"json": {"name": "c", "driver": "postgresql", "host": "db\x00.example.com"}},
        None,
    ),
    (
        "connector-nul-in-username",
        "POST",
        CONNECTORS,
        {"json": {"name": "c", **PG, "username": "u\x00"}},
        None,
    ),
    (
        "connector-nul-in-database",
        "POST",
        CONNECTORS,
        {"json": {"name": "c", **PG, "database": "x\x00"}},
        None,
    ),
    (
        "connector-nul-in-sqlite-path",
        "POST",
        CONNECTORS,
        {"json": {"name": "c", "driver": "sqlite", "database": "/tmp/x\x00.db"}},
        None,
    ),
    (
        "connector-options-too-deep",
        "POST",
        CONNECTORS,
        {"json": {"name": "c", **PG, "options": {"a": nested(300)}}},
        None,
    ),
    ("connector-options-list", "POST", CONNECTORS, {"json": {"name": "c", **PG, "options": [1, 2]}}, None),
    ("connector-password-number", "POST", CONNECTORS, {"json": {"name": "c", **PG, "password": 12345}}, None),
    (
        "connector-secret-number",
        "POST",
        CONNECTORS,
        {"json": {"name": "c", **PG, "secrets": {"token": 5}}},
        None,
    ),
    ("connector-typo-field", "POST", CONNECTORS, {"json": {"name": "c", **PG, "pasword": "x"}}, "pasword"),
    ("connector-update-blank-name", "PATCH", PG_CONNECTOR, {"json": {"name": " "}}, None),
    ("connector-update-unknown-driver", "PATCH", PG_CONNECTOR, {"json": {"driver": "oracle"}}, None),
    ("connector-update-bad-host", "PATCH", PG_CONNECTOR, {"json": {"host": "http://[bad"}}, None),
    ("connector-update-port-0", "PATCH", PG_CONNECTOR, {"json": {"port": 0}}, None),
    ("connector-update-nul-database", "PATCH", PG_CONNECTOR, {"json": {"database": "x\x00"}}, None),
    (
        "connector-update-options-too-deep",
        "PATCH",
        PG_CONNECTOR,
        {"json": {"options": {"a": nested(300)}}},
        None,
    ),
    ("connector-update-typo-field", "PATCH", PG_CONNECTOR, {"json": {"hots": "h"}}, None),
    (
        "connector-tables-nul-database",
        "GET",
        "/connectors/<pg_connector>/tables",
        {"params": {"database": "\x00"}},
        None,
    ),
    (
        "connector-delete-force-not-bool",
        "DELETE",
        "/connectors/<connector>",
        {"params": {"force": "maybe"}},
        None,
    ),
    # datasources
    (
        "datasource-blank-name",
        "POST",
        DATASOURCES,
        {"json": {"name": " ", "connector_id": "<connector>", "table": "t"}},
        None,
    ),
    (
        "datasource-table-and-request",
        "POST",
        DATASOURCES,
        {"json": {"name": "d", "connector_id": "<connector>", "table": "t", "request": "SELECT 1"}},
        None,
    ),
    (
        "datasource-neither-table-nor-request",
        "POST",
        DATASOURCES,
        {"json": {"name": "d", "connector_id": "<connector>"}},
        None,
    ),
    (
        "datasource-path-on-sql",
        "POST",
        DATASOURCES,
        {"json": {"name": "d", "connector_id": "<connector>", "table": "t", "path": "x.csv"}},
        None,
    ),
    (
        "datasource-nul-in-table",
        "POST",
        DATASOURCES,
        {"json": {"name": "d", "connector_id": "<connector>", "table": "t\x00"}},
        None,
    ),
    (
        "datasource-empty-connector-id",
        "POST",
        DATASOURCES,
        {"json": {"name": "d", "connector_id": "", "table": "t"}},
        None,
    ),
    (
        "datasource-check-not-bool",
        "POST",
        DATASOURCES,
        {"json": {"name": "d", "connector_id": "<connector>", "table": "t", "check": "maybe"}},
        None,
    ),
    (
        "datasource-options-too-deep",
        "POST",
        DATASOURCES,
        {"json": {"name": "d", "connector_id": "<connector>", "table": "t", "options": {"a": nested(300)}}},
        None,
    ),
    # snapshots and uploads
    ("snapshot-blank-name", "POST", DATASETS, {"json": {"name": " ", "datasource_id": "<datasource>"}}, None),
    ("snapshot-no-datasource", "POST", DATASETS, {"json": {"name": "s"}}, None),
    ("snapshot-datasource-number", "POST", DATASETS, {"json": {"name": "s", "datasource_id": 5}}, None),
    (
        "snapshot-extra-field",
        "POST",
        DATASETS,
        {"json": {"name": "s", "datasource_id": "<datasource>", "wait": True}},
        None,
    ),
    (
        "upload-blank-name",
        "POST",
        UPLOAD,
        {"params": {"name": "   ", "format": "csv"}, "data": b"a\n1\n"},
        None,
    ),
    (
        "upload-control-char-name",
        "POST",
        UPLOAD,
        {"params": {"name": "a\x01b", "format": "csv"}, "data": b"a\n1\n"},
        None,
    ),
    ("upload-no-name", "POST", UPLOAD, {"params": {"format": "csv"}, "data": b"a\n"}, None),
    (
        "upload-unknown-format",
        "POST",
        UPLOAD,
        {"params": {"name": "u", "format": "xlsx"}, "data": b"a\n1\n"},
        None,
    ),
    ("upload-no-format", "POST", UPLOAD, {"params": {"name": "u"}, "data": b"a\n"}, "format"),
    (
        "upload-unknown-extension",
        "POST",
        UPLOAD,
        {"params": {"name": "u", "file_name": "x.txt"}, "data": b"a\n"},
        "format",
    ),
    ("upload-empty-body", "POST", UPLOAD, {"params": {"name": "u", "format": "csv"}, "data": b""}, "empty"),
    # head
    ("head-negative", "GET", "/datasets/<dataset>/head", {"params": {"n": -1}}, None),
    ("head-too-many", "GET", "/datasets/<dataset>/head", {"params": {"n": 100_001}}, None),
    ("head-text", "GET", "/datasets/<dataset>/head", {"params": {"n": "ten"}}, None),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "contains"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_values_answer_422_validation_error(api, world, method, path, kwargs, contains):
    """A request with an invalid name, value, type, field or query parameter answers 422 and says why."""
    check_error(api(method, fill(path, world), **fill(kwargs, world)), 422, "validation_error", contains)


def test_credentials_written_into_the_host_are_not_echoed(api, world):
    """A host holding user:password@ is refused (422) without the password in the answer."""
    resp = api(
        "POST",
        fill("/projects/<project>/connectors", world),
        json={"name": "c", "driver": "postgresql", "host": "postgresql://me:Hidden-Pw-2718@[bad"},
    )
    check_error(resp, 422, "validation_error", "credentials")
    assert "Hidden-Pw-2718" not in resp.text


def test_a_write_statement_as_request_is_refused_as_invalid_source(api, world):
    """A datasource whose request is a write statement (DROP TABLE) answers 422 invalid_source."""
    resp = api(
        "POST",
        fill("/projects/<project>/datasources", world),
        json={"name": "drop", "connector_id": world["connector"], "request": "DROP TABLE t"},
    )
    check_error(resp, 422, "invalid_source", "read-only")


def test_rejected_connectors_and_datasources_were_not_stored(api, world, client):
    """After all the refused creations, the project holds only the resources the module created."""
    project = pio.Project.from_id(world["project"], client=client)
    assert sorted(c.name for c in project.list_connectors()) == ["lite", "pg"]
    assert [d.name for d in project.list_datasource()] == ["t"]
    assert [d.name for d in project.list_datasets()] == ["snap"]
    assert api("GET", fill("/connectors/<pg_connector>", world)).json()["options"] == {}


LIST_ROUTES = [
    "/projects",
    "/projects/<project>/connectors",
    "/projects/<project>/datasources",
    "/projects/<project>/datasets",
]
BAD_PAGES = [
    {"page": 0},
    {"page": -1},
    {"page": "abc"},
    {"page": 10_000_001},
    {"page_size": 0},
    {"page_size": 1001},
    {"page_size": 100_001},
    {"page_size": "all"},
]


@pytest.mark.parametrize("params", BAD_PAGES, ids=[f"{k}={v}" for p in BAD_PAGES for k, v in p.items()])
@pytest.mark.parametrize("route", LIST_ROUTES)
def test_bad_page_parameters_answer_422(api, world, route, params):
    """A list request with page or page_size below 1, page_size above 1000, or text, answers 422."""
    check_error(api("GET", fill(route, world), params=params), 422, "validation_error")


def test_the_largest_page_size_is_accepted(api, world):
    """page_size=1000, the maximum, is accepted and echoed in the page."""
    resp = api("GET", "/projects", params={"page": 1, "page_size": 1000})
    assert resp.status_code == 200
    assert resp.json()["page_size"] == 1000


# -- malformed bodies: 400 -----------------------------------------------------------------------------------
MALFORMED = [
    ("POST", "/projects", "{bad"),
    ("POST", "/projects", '{"name": "x",}'),
    ("POST", "/projects", "{'name': 'x'}"),
    ("POST", "/projects", '{"name": "x"} trailing'),
    ("PATCH", "/projects/<project>", "{"),
    ("POST", "/projects/<project>/connectors", '{"name": "c", "password": "unterminated'),
    ("PATCH", "/connectors/<pg_connector>", '{"port": 54,32}'),
    ("POST", "/projects/<project>/datasources", "nul"),
    ("POST", "/projects/<project>/datasets", "["),
    ("POST", "/projects", b'{"name": "\xff\xfe"}'),
    ("POST", "/projects", "[" * 100_000 + "]" * 100_000),
]


@pytest.mark.parametrize(
    ("method", "path", "data"),
    MALFORMED,
    ids=[
        "bad",
        "trailing-comma",
        "single-quotes",
        "trailing-text",
        "open-brace",
        "unterminated-string",
        "bad-number",
        "nul",
        "open-bracket",
        "invalid-utf8",
        "nested-too-deep",
    ],
)
def test_malformed_json_bodies_answer_400_malformed_json(api, world, method, path, data):
    """A body that is not valid JSON (syntax, encoding or depth) answers 400 malformed_json."""
    check_error(api(method, fill(path, world), data=data, headers=JSON), 400, "malformed_json")


# -- conflicts: 409 ------------------------------------------------------------------------------------------
def test_a_duplicate_project_name_is_a_conflict_naming_the_existing_project(client, project):
    """Creating a second project of the same name answers 409 (ConflictError) naming the existing one."""
    with pytest.raises(pio.ConflictError) as info:
        pio.Project.new(project.name, client=client)
    err = info.value
    assert (err.status, err.code) == (409, "conflict")
    assert project.id in err.message and project.name in err.message
    assert err.details == {"existing_id": project.id, "name": project.name}
    assert REQUEST_ID.match(err.request_id)
    with pytest.raises(pio.ConflictError):
        pio.Project.new(f"  {project.name} ", client=client)  # the same name once blanks are removed


def test_renaming_a_project_to_a_taken_name_is_a_conflict(api, client, project):
    """PATCH /projects/{id} to the name of another of the caller's projects answers 409; a free one works."""
    other = pio.Project.new(f"other-{uuid.uuid4().hex[:8]}", client=client)
    try:
        taken = api("PATCH", f"/projects/{other.id}", json={"name": project.name})
        check_error(taken, 409, "conflict", project.id)
        renamed = {"name": f"{other.name}-renamed", "description": "d"}
        resp = api("PATCH", f"/projects/{other.id}", json=renamed)
        assert resp.status_code == 200
        assert (resp.json()["name"], resp.json()["description"]) == (other.name + "-renamed", "d")
    finally:
        other.delete()


# -- the SDK's typed errors ----------------------------------------------------------------------------------
def _missing_job(client: pio.Client) -> pio.Job:
    return pio.Job(id=uuid.uuid4().hex, project_id="p", kind="upload", status="pending", client=client)


SDK_CASES: list[tuple[str, Callable[[pio.Client, pio.Project, dict[str, str]], Any], type, int, str]] = [
    (
        "project-from-unknown-id",
        lambda c, p, w: pio.Project.from_id(w["missing"], client=c),
        pio.NotFoundError,
        404,
        "not_found",
    ),
    (
        "connector-from-unknown-id",
        lambda c, p, w: pio.Connector.from_id(w["missing"], client=c),
        pio.NotFoundError,
        404,
        "not_found",
    ),
    (
        "datasource-from-unknown-id",
        lambda c, p, w: pio.DataSource.from_id(w["missing"], client=c),
        pio.NotFoundError,
        404,
        "not_found",
    ),
    (
        "dataset-from-unknown-id",
        lambda c, p, w: pio.Dataset.from_id(w["missing"], client=c),
        pio.NotFoundError,
        404,
        "not_found",
    ),
    (
        "job-refresh-unknown-id",
        lambda c, p, w: _missing_job(c).refresh(),
        pio.NotFoundError,
        404,
        "not_found",
    ),
    (
        "snapshot-of-unknown-datasource",
        lambda c, p, w: p.create_dataset("s", datasource=w["missing"]),
        pio.NotFoundError,
        404,
        "not_found",
    ),
    (
        "blank-project-name",
        lambda c, p, w: pio.Project.new("   ", client=c),
        pio.ValidationError,
        422,
        "validation_error",
    ),
    (
        "control-char-project-name",
        lambda c, p, w: pio.Project.new("bell\x07", client=c),
        pio.ValidationError,
        422,
        "validation_error",
    ),
    (
        "unknown-sql-driver",
        lambda c, p, w: p.create_sql_connector("c", host="h", driver="oracle"),
        pio.ValidationError,
        422,
        "validation_error",
    ),
    (
        "missing-table",
        lambda c, p, w: p.create_datasource(
            p.create_sql_connector("lite", driver="sqlite", database=w["sqlite_path"]), "d", table="nope"
        ),
        pio.ValidationError,
        422,
        "source_not_found",
    ),
    (
        "duplicate-connector-name",
        lambda c, p, w: [
            p.create_sql_connector("dup", driver="sqlite", database=w["sqlite_path"]) for _ in range(2)
        ],
        pio.ConflictError,
        409,
        "conflict",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "status", "code"), [c[1:] for c in SDK_CASES], ids=[c[0] for c in SDK_CASES]
)
def test_the_sdk_raises_the_typed_error_with_status_code_message_and_request_id(
    client, project, world, call, error, status, code
):
    """The SDK raises each error answer as its pio class, with status, code, message and request id."""
    with pytest.raises(pio.APIError) as info:
        call(client, project, world)
    err = info.value
    assert type(err) is error
    assert (err.status, err.code) == (status, code)
    assert err.message and err.message in str(err)
    assert REQUEST_ID.match(err.request_id) and err.request_id in str(err)


def test_a_port_where_no_database_answers_is_refused_asking_for_driver(project, closed_port):
    """create_sql_connector on an unusual port where nothing answers raises ValidationError (driver=?)."""
    with pytest.raises(pio.ValidationError, match="driver="):
        project.create_sql_connector("c", host="127.0.0.1", port=closed_port)
    assert project.list_connectors() == []


def test_deleting_a_connector_in_use_is_a_conflict_listing_its_datasources(project, world):
    """Connector.delete() while a datasource uses it raises ConflictError naming it; force=True works."""
    lite = project.create_sql_connector("lite", driver="sqlite", database=world["sqlite_path"])
    source = project.create_datasource(lite, "uses-lite", table="t")
    with pytest.raises(pio.ConflictError) as info:
        lite.delete()
    assert "uses-lite" in info.value.message
    assert info.value.details == {"datasources": [{"id": source.id, "name": "uses-lite"}], "exporters": []}
    lite.delete(force=True)
    with pytest.raises(pio.NotFoundError):
        pio.DataSource.from_id(source.id, client=project.client)


def test_a_request_id_sent_by_the_caller_is_echoed_in_the_error(api, world):
    """A sane X-Request-ID sent by the caller comes back in the header and in the error body."""
    resp = api("GET", fill("/projects/<missing>", world), headers={"X-Request-ID": "trace-42-abc"})
    assert check_error(resp, 404, "not_found")["request_id"] == "trace-42-abc"
    odd = api("GET", fill("/projects/<missing>", world), headers={"X-Request-ID": "no spaces allowed\t"})
    assert REQUEST_ID.match(check_error(odd, 404, "not_found")["request_id"])
