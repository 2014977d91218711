"""Users, tokens and roles: who may see and do what, operation by operation of the OpenAPI document.

A project is shared with an editor and a viewer; a third user is no member. Every operation the platform
documents is sent by each of them with the project's real ids: the viewer may read, never change; the editor
may change, never manage; the non-member gets 404 for everything, as if the project did not exist. An
operation added to the platform without an entry here fails the tests that walk the document.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import RunningPlatform

import previsio_sdk as pio

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
PREVISIO = str(Path(sys.executable).with_name("previsio"))

#: Routes outside any project: the health checks, creating a project (anyone may), the administrators' API
#: (accounts, and the process's metrics).
NOT_PROJECT_SCOPED = {
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/health/parts"),
    ("GET", "/api/v1/projects"),
    ("POST", "/api/v1/projects"),
}
ADMIN_PATHS = re.compile(r"^/api/v1/(users|tokens|metrics)(/|$)")

#: Reads that use a connector's stored credentials against its remote system: editors only.
EDITOR_READS = re.compile(
    r"^/api/v1/(connectors/\{connector_id\}/(databases|tables|files)|datasources/\{datasource_id\}/estimate)$"
)
#: What only an owner may do.
OWNER_OPERATIONS = {
    ("PATCH", "/api/v1/projects/{project_id}"),
    ("DELETE", "/api/v1/projects/{project_id}"),
    ("POST", "/api/v1/projects/{project_id}/members"),
    ("DELETE", "/api/v1/projects/{project_id}/members/{user_id}"),
    ("POST", "/api/v1/connectors/{connector_id}/secrets/export"),
}

#: A body of the right shape for each operation that takes one (the role check answers before any use).
REQUESTS: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/api/v1/projects/{project_id}"): {"json": {"description": "changed"}},
    ("POST", "/api/v1/projects/{project_id}/members"): {"json": {"user": "<viewer>", "role": "editor"}},
    ("POST", "/api/v1/projects/{project_id}/connectors"): {
        "json": {"name": "new", "driver": "sqlite", "database": "/tmp/new.db"}
    },
    ("PATCH", "/api/v1/connectors/{connector_id}"): {"json": {"name": "renamed"}},
    ("POST", "/api/v1/connectors/{connector_id}/secrets/export"): {"json": {"passphrase": "long enough"}},
    ("POST", "/api/v1/projects/{project_id}/datasources"): {
        "json": {"name": "new", "connector_id": "<connector_id>", "table": "t"}
    },
    ("POST", "/api/v1/projects/{project_id}/datasets"): {
        "json": {"name": "new", "datasource_id": "<datasource_id>"}
    },
    ("POST", "/api/v1/projects/{project_id}/datasets/upload"): {
        "params": {"name": "new", "format": "csv"},
        "data": b"a\n1\n",
        "headers": {"Content-Type": "application/octet-stream"},
    },
    ("POST", "/api/v1/projects/{project_id}/exporters"): {
        "json": {"name": "new", "connector_id": "<connector_id>", "table": "out", "write_mode": "replace"}
    },
    ("POST", "/api/v1/exporters/{exporter_id}/exports"): {"json": {"dataset_id": "<dataset_id>"}},
    ("POST", "/api/v1/exporters/{exporter_id}/exports/upload"): {
        "params": {"format": "csv"},
        "data": b"a\n1\n",
        "headers": {"Content-Type": "application/octet-stream"},
    },
    ("POST", "/api/v1/jobs/{job_id}/cancel"): {},
    ("POST", "/api/v1/exports/{export_id}/cancel"): {},
}


@dataclass
class Person:
    """A user of the shared platform and its token."""

    user: pio.User
    token: str


def _operations(platform: RunningPlatform) -> list[tuple[str, str]]:
    spec = requests.get(
        f"{platform.url}/api/v1/openapi.json",
        headers={"Authorization": f"Bearer {platform.token}"},
        timeout=30,
    ).json()
    return sorted(
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in HTTP_METHODS
    )


def _project_operations(platform: RunningPlatform) -> list[tuple[str, str]]:
    return [
        (m, p)
        for m, p in _operations(platform)
        if (m, p) not in NOT_PROJECT_SCOPED and not ADMIN_PATHS.match(p)
    ]


@pytest.fixture(scope="module")
def people(client: pio.Client) -> dict[str, Person]:
    """An editor, a viewer and a stranger (no member), each with a token; made through the admin API."""
    out = {}
    for role in ("editor", "viewer", "stranger"):
        user = pio.User.create(f"{role}-{uuid.uuid4().hex[:8]}", client=client)
        token = user.create_token(expires_in_days=1)
        assert token.value
        out[role] = Person(user, token.value)
    return out


@pytest.fixture(scope="module")
def shared(
    client: pio.Client, people: dict[str, Person], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """A project shared with the editor and the viewer: a connector, a datasource, a dataset, a job."""
    db = tmp_path_factory.mktemp("access") / "shared.db"
    con = sqlite3.connect(db)
    with con:
        con.execute("CREATE TABLE t (id INTEGER, label TEXT)")
        con.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"row {i}") for i in range(50)])
    con.close()
    project = pio.Project.new(f"shared-{uuid.uuid4().hex[:8]}", client=client)
    project.add_member(people["editor"].user, "editor")
    project.add_member(people["viewer"].user.name, "viewer")
    connector = project.create_sql_connector("lite", driver="sqlite", database=str(db))
    source = project.create_datasource(connector, "t", table="t")
    job = project.create_dataset("snap", datasource=source, wait=False)
    dataset = job.wait()
    ids = {
        "project_id": project.id,
        "connector_id": connector.id,
        "datasource_id": source.id,
        "dataset_id": dataset.id,
        "job_id": job.id,
        "user_id": people["editor"].user.id,
        "viewer": people["viewer"].user.name,
    }
    exporter = client.post(
        f"/projects/{project.id}/exporters",
        {"name": "out", "connector_id": connector.id, "table": "out", "write_mode": "replace"},
    )
    ids["exporter_id"] = exporter["id"]
    export = client.post(f"/exporters/{exporter['id']}/exports", {"dataset_id": dataset.id})
    ids["export_id"] = export["id"]
    deadline = time.monotonic() + 60
    while client.get(f"/exports/{export['id']}")["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, "the export never ended"
        time.sleep(0.05)
    yield ids
    project.delete()


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return re.sub(r"[{<](\w+)[}>]", lambda m: ids[m.group(1)], value)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _send(
    platform: RunningPlatform, token: str, method: str, path: str, ids: dict[str, str]
) -> requests.Response:
    unknown = set(re.findall(r"\{(\w+)\}", path)) - set(ids)
    assert not unknown, f"{method} {path}: add an id for {unknown} to the shared fixture"
    kwargs = _fill(dict(REQUESTS.get((method, path), {})), ids)
    if method in ("POST", "PATCH", "PUT") and (method, path) not in REQUESTS:
        kwargs = {"json": {}}  # refused for its role before its body is looked at, or 422: see below
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return requests.request(method, platform.url + _fill(path, ids), headers=headers, timeout=60, **kwargs)


def _code(resp: requests.Response) -> str:
    try:
        return resp.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return ""


def test_every_write_operation_has_a_request_here(platform: RunningPlatform) -> None:
    """Each write operation of a project's resources has a well-formed request in REQUESTS."""
    missing = [
        (m, p)
        for m, p in _project_operations(platform)
        if m in ("POST", "PATCH", "PUT") and (m, p) not in REQUESTS and not p.endswith("/test")
    ]
    assert missing == []


def test_a_viewer_reads_everything_and_changes_nothing(platform, people, shared) -> None:
    """The viewer gets 2xx for every read and 403 forbidden for every write and credential-using read."""
    wrong = []
    for method, path in _project_operations(platform):
        resp = _send(platform, people["viewer"].token, method, path, shared)
        may = method == "GET" and not EDITOR_READS.match(path)
        if (may and resp.status_code >= 400) or (
            not may and (resp.status_code, _code(resp)) != (403, "forbidden")
        ):
            wrong.append((method, path, resp.status_code, resp.text[:200]))
    assert wrong == []
    # nothing changed: the owner still sees the same resources
    owner = platform.client()
    project = pio.Project.from_id(shared["project_id"], client=owner)
    assert [c.name for c in project.list_connectors()] == ["lite"]
    assert [d.name for d in project.list_datasets()] == ["snap"]
    assert {m.role for m in project.list_members()} == {"owner", "editor", "viewer"}


def test_a_stranger_gets_404_for_every_operation_of_the_project(platform, people, shared) -> None:
    """A non-member gets 404 not_found from every project operation, by id and by list, like a missing id."""
    wrong = []
    for method, path in _project_operations(platform):
        resp = _send(platform, people["stranger"].token, method, path, shared)
        if (resp.status_code, _code(resp)) != (404, "not_found"):
            wrong.append((method, path, resp.status_code, resp.text[:200]))
    assert wrong == []
    stranger = pio.Client(url=platform.url, token=people["stranger"].token)
    assert shared["project_id"] not in [p.id for p in pio.Project.list(client=stranger)]
    with pytest.raises(pio.NotFoundError) as info:
        pio.Project.from_id(shared["project_id"], client=stranger)
    with pytest.raises(pio.NotFoundError) as missing:
        pio.Project.from_id(uuid.uuid4().hex, client=stranger)
    assert info.value.message.replace(shared["project_id"], "X") == missing.value.message.replace(
        missing.value.message.split("'")[1], "X"
    )


def test_an_editor_changes_resources_but_does_not_manage_the_project(platform, people, shared) -> None:
    """The editor gets 403 for the owner's operations, and creates, tests and deletes resources."""
    for method, path in sorted(OWNER_OPERATIONS):
        ids = {**shared, "user_id": people["viewer"].user.id}
        resp = _send(platform, people["editor"].token, method, path, ids)
        assert (resp.status_code, _code(resp)) == (403, "forbidden"), (method, path, resp.text)
    editor = pio.Client(url=platform.url, token=people["editor"].token)
    project = pio.Project.from_id(shared["project_id"], client=editor)
    for path in ("/api/v1/jobs/{job_id}/cancel", "/api/v1/exports/{export_id}/cancel"):
        resp = _send(platform, people["editor"].token, "POST", path, shared)  # they have ended
        assert (resp.status_code, _code(resp)) == (409, "job_finished"), (path, resp.text)
    connector = pio.Connector.from_id(shared["connector_id"], client=editor)
    assert connector.test()
    assert "t" in connector.list_tables()
    source = project.create_datasource(connector, "by-editor", table="t")
    dataset = project.create_dataset("by-editor", datasource=source)
    assert dataset.num_rows == 50
    dataset.delete()
    source.delete()


def test_a_viewer_through_the_sdk(platform, people, shared, tmp_path) -> None:
    """Through the SDK a viewer lists, reads, downloads; creating or testing raises PermissionDeniedError."""
    viewer = pio.Client(url=platform.url, token=people["viewer"].token)
    project = pio.Project.from_id(shared["project_id"], client=viewer)
    (dataset,) = project.list_datasets()
    assert dataset.head(3).shape == (3, 2)
    dataset.download(tmp_path / "snap.parquet")
    assert (tmp_path / "snap.parquet").stat().st_size == dataset.size_bytes
    assert [c.name for c in project.list_connectors()] == ["lite"]
    connector = pio.Connector.from_id(shared["connector_id"], client=viewer)
    with pytest.raises(pio.PermissionDeniedError) as info:
        connector.test()
    assert info.value.code == "forbidden" and "viewer" in info.value.message
    with pytest.raises(pio.PermissionDeniedError):
        project.create_sql_connector("mine", driver="sqlite", database="/tmp/x.db")
    with pytest.raises(pio.PermissionDeniedError):
        dataset.delete()
    with pytest.raises(pio.PermissionDeniedError):
        project.add_member(people["stranger"].user, "owner")


def test_owners_manage_members_and_a_project_keeps_an_owner(platform, client, people) -> None:
    """An owner adds, promotes and removes members; the last owner cannot leave; a member may leave."""
    project = pio.Project.new(f"members-{uuid.uuid4().hex[:8]}", client=client)
    try:
        me = next(m for m in project.list_members())
        assert me.role == "owner"
        added = project.add_member(people["stranger"].user.name, "viewer")
        assert (added.user_id, added.role) == (people["stranger"].user.id, "viewer")
        assert project.add_member(people["stranger"].user.id, "owner").role == "owner"
        assert {m.user_name: m.role for m in project.list_members()} == {
            me.user_name: "owner",
            people["stranger"].user.name: "owner",
        }
        project.add_member(people["stranger"].user, "editor")
        with pytest.raises(pio.ConflictError):
            project.remove_member(me.user_id)  # the last owner
        with pytest.raises(pio.ConflictError):
            project.add_member(me.user_id, "viewer")
        with pytest.raises(pio.NotFoundError):
            project.add_member(f"nobody-{uuid.uuid4().hex[:6]}", "viewer")
        theirs = pio.Project.from_id(
            project.id, client=pio.Client(url=platform.url, token=people["stranger"].token)
        )
        theirs.remove_member(people["stranger"].user.name)  # a member leaves on its own
        with pytest.raises(pio.NotFoundError):
            theirs.list_members()
        assert [m.user_name for m in project.list_members()] == [me.user_name]
    finally:
        project.delete()


def test_only_administrators_manage_users_and_tokens(platform, people) -> None:
    """Every users/tokens/metrics operation answers 403 forbidden to a user who is not an administrator."""
    ops = [(m, p) for m, p in _operations(platform) if ADMIN_PATHS.match(p)]
    assert len(ops) >= 5, ops
    ids = {"user_id": people["editor"].user.id, "token_id": uuid.uuid4().hex}
    for method, path in ops:
        resp = requests.request(
            method,
            platform.url + _fill(path, ids),
            headers={"Authorization": f"Bearer {people['editor'].token}"},
            json={"name": "x"} if path.endswith("/users") and method == "POST" else None,
            timeout=30,
        )
        assert (resp.status_code, _code(resp)) == (403, "forbidden"), (method, path, resp.text)


def test_revoked_and_expired_tokens_are_refused(platform, client) -> None:
    """A revoked token and an expired one get 401 invalid_token; another token of the user still works."""
    user = pio.User.create(f"short-{uuid.uuid4().hex[:8]}", client=client)
    keep = user.create_token()
    revoke = user.create_token()
    expire = user.create_token(expires_in_days=1.5 / 86400)  # 1.5 s
    assert len({keep.value, revoke.value, expire.value}) == 3
    for token in (keep, revoke, expire):
        assert pio.Project.list(client=pio.Client(url=platform.url, token=token.value)) == []
    revoke.revoke()
    time.sleep(1.6)
    for token in (revoke, expire):
        with pytest.raises(pio.AuthenticationError) as info:
            pio.Project.list(client=pio.Client(url=platform.url, token=token.value))
        assert info.value.code == "invalid_token"
    assert pio.Project.list(client=pio.Client(url=platform.url, token=keep.value)) == []
    listed = {t.id: t for t in user.list_tokens()}
    assert listed[revoke.id].revoked and not listed[keep.id].revoked
    assert all(t.value is None for t in listed.values())


def test_tokens_are_random_and_only_their_digest_is_stored(platform, client) -> None:
    """Tokens are long and random; the metadata store holds their SHA-256 digest, never the token."""
    user = pio.User.create(f"digest-{uuid.uuid4().hex[:8]}", client=client)
    values = [user.create_token().value for _ in range(3)]
    assert all(v and v.startswith("pvo_") and len(v) >= 40 for v in values)
    assert len(set(values)) == 3
    raw = b"".join(p.read_bytes() for p in sorted(platform.home.glob("platform.db*")))
    for value in values:
        assert value is not None
        assert value.encode() not in raw
        assert hashlib.sha256(value.encode()).hexdigest().encode() in raw


def test_cli_creates_users_and_tokens_while_the_platform_runs(platform) -> None:
    """`previsio user create`, `previsio token create|revoke` on a running platform's home take effect."""
    name = f"cli-{uuid.uuid4().hex[:8]}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [PREVISIO, *args, "--home", str(platform.home)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done

    created = run("user", "create", name)
    assert name in created.stdout and "pvo_" not in created.stdout + created.stderr
    issued = run("token", "create", "--user", name, "--expires-in", "1")
    token = issued.stdout.strip()
    assert token.startswith("pvo_") and token not in issued.stderr
    assert name in run("user", "list").stdout
    client = pio.Client(url=platform.url, token=token)
    project = pio.Project.new("cli-made", client=client)
    assert [p.id for p in pio.Project.list(client=client)] == [project.id]
    token_id = run("token", "list", "--user", name).stdout.split()[0]
    run("token", "revoke", token_id)
    with pytest.raises(pio.AuthenticationError):
        pio.Project.list(client=client)
    again = subprocess.run(
        [PREVISIO, "user", "create", name, "--home", str(platform.home)], capture_output=True, text=True
    )
    assert again.returncode == 1 and "already exists" in again.stderr
