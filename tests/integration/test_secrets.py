"""Connector passwords never come back: not in answers, headers, SDK objects, errors, logs or the metadata DB.

One test drives every connector endpoint with distinctive passwords (PostgreSQL through the scram-only role,
MariaDB, SQLite, plus one full of URL-special characters) and records everything the platform and the SDK
show; the password must appear nowhere, in clear or URL/JSON-escaped. Beyond this module, the whole suite is
watched: ``_no_secret_leaves_a_platform`` (conftest.py) searches every answer the suite received and every
platform log it produced for every credential the suite used, at the end of the session.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, quote_plus

import attrs
import pytest
import requests
from conftest import MY_HOST, MY_PORT, MY_USER, PG_HOST, PG_PORT, PG_SCRAM_PASSWORD, PG_SCRAM_USER
from fileservers import FileServers, session_file_servers

import previsio_sdk as pio

SECRET = "Sup3r-Secret-Pw-9981"
ROTATED = "Rot4ted-Secret-Pw-7731"
ODD = "p@ss/w%rd:Sécret#55?&=01"
API_KEY = "ApiKey-Secret-3141592"
ALL_SECRETS = (SECRET, ROTATED, ODD, API_KEY)


def forms(secret: str) -> set[str]:
    """The ways a secret could show up: as is, URL-quoted, JSON-escaped."""
    return {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }


def leaks(text: str, secrets: tuple[str, ...] = ALL_SECRETS) -> list[str]:
    """The forms of ``secrets`` found in ``text``."""
    return sorted(f for s in secrets for f in forms(s) if f in text)


class Recorder:
    """Sends raw requests to the platform and keeps every answer (status, headers, body) to search later."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.seen: list[tuple[str, str]] = []

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        resp = self.api(method, path, **kwargs)
        self.seen.append((f"{method} {path} -> {resp.status_code}", f"{dict(resp.headers)}\n{resp.text}"))
        return resp

    def note(self, label: str, obj: Any) -> None:
        """Keep the repr and str of an SDK object or exception."""
        self.seen.append((label, f"{obj!r}\n{obj}"))

    def leaks(self) -> list[tuple[str, list[str], str]]:
        """(what, which forms, the text) of every answer or object showing a secret."""
        return [(label, found, text[:500]) for label, text in self.seen if (found := leaks(text))]


@pytest.fixture
def rec(api: Any) -> Iterator[Recorder]:
    yield Recorder(api)


def test_passwords_never_leave_the_platform(rec, project, platform, pg_database, my_database, sqlite_path):
    """No endpoint answer, header, SDK repr/str, error message or log line shows a connector's password."""
    import sqlite3

    con = sqlite3.connect(sqlite_path)
    con.execute("CREATE TABLE t (a INTEGER)")
    con.commit()
    con.close()
    base = f"/projects/{project.id}"
    bodies = {
        "pg": {
            "driver": "postgresql",
            "host": PG_HOST,
            "port": PG_PORT,
            "username": PG_SCRAM_USER,
            "password": SECRET,
            "database": pg_database,
        },
        "pg-odd": {
            "driver": "postgresql",
            "host": PG_HOST,
            "port": PG_PORT,
            "username": PG_SCRAM_USER,
            "password": ODD,
            "database": pg_database,
        },
        "maria": {
            "driver": "mysql",
            "host": MY_HOST,
            "port": MY_PORT,
            "username": MY_USER,
            "password": SECRET,
            "database": my_database,
        },
        "lite": {
            "driver": "sqlite",
            "database": str(sqlite_path),
            "password": SECRET,
            "secrets": {"api_key": API_KEY},
        },
    }
    ids = {}
    for name, body in bodies.items():
        resp = rec("POST", f"{base}/connectors", json={"name": name, **body})
        assert resp.status_code == 201, resp.text
        assert resp.json()["has_password"] is True
        assert "password" not in resp.json()
        ids[name] = resp.json()["id"]
    assert rec("GET", f"/connectors/{ids['lite']}").json()["secret_fields"] == ["api_key", "password"]

    # every read and action of each connector, a datasource and a snapshot through each
    job_ids = []
    for name, cid in ids.items():
        assert rec("GET", f"/connectors/{cid}").status_code == 200
        outcome = rec("POST", f"/connectors/{cid}/test").json()
        if name == "lite":
            assert outcome["ok"] is True
        else:
            assert (outcome["ok"], outcome["code"]) == (False, "authentication_failed"), outcome
        rec("GET", f"/connectors/{cid}/databases")
        rec("GET", f"/connectors/{cid}/tables")
        rec("GET", f"/connectors/{cid}/tables", params={"database": "other"})
        rec("GET", f"/connectors/{cid}/files")
        checked = rec(
            "POST", f"{base}/datasources", json={"name": f"checked-{name}", "connector_id": cid, "table": "t"}
        )
        assert checked.status_code == (201 if name == "lite" else 422), checked.text
        unchecked = rec(
            "POST",
            f"{base}/datasources",
            json={"name": f"unchecked-{name}", "connector_id": cid, "table": "t", "check": False},
        )
        job = rec(
            "POST", f"{base}/datasets", json={"name": f"snap-{name}", "datasource_id": unchecked.json()["id"]}
        )
        assert job.status_code == 202
        job_ids.append((name, job.json()["id"]))
    rec("GET", f"{base}/connectors")
    rec("GET", f"{base}/connectors", params={"page_size": 1, "page": 2})
    rec("GET", f"{base}/datasources")

    # the failed snapshots say why, without the password
    for name, job_id in job_ids:
        job = pio.Job(id=job_id, project_id=project.id, kind="snapshot", status="?", client=project.client)
        if name == "lite":
            job.wait(timeout=60)
        else:
            with pytest.raises(pio.JobFailedError) as failed:
                job.wait(timeout=60)
            rec.note(f"JobFailedError {name}", failed.value)
            assert failed.value.code == "authentication_failed", failed.value
        rec("GET", f"/jobs/{job_id}")

    # updates: a new password, then refused updates and malformed bodies that carry it
    for name, cid in ids.items():
        patched = rec("PATCH", f"/connectors/{cid}", json={"password": ROTATED})
        assert patched.status_code == 200 and patched.json()["has_password"] is True
        assert rec("POST", f"/connectors/{cid}/test").json()["ok"] is (name == "lite")
        refused = [
            rec("PATCH", f"/connectors/{cid}", json={"password": [ROTATED]}),
            rec("PATCH", f"/connectors/{cid}", json={"pasword": ROTATED}),
            rec("PATCH", f"/connectors/{cid}", json={"password": ROTATED, "port": "not-a-port"}),
            rec(
                "PATCH",
                f"/connectors/{cid}",
                data=f'{{"password": "{ROTATED}',
                headers={"Content-Type": "application/json"},
            ),
        ]
        assert [r.status_code for r in refused] == [422, 422, 422, 400]
    refused = [
        rec(
            "POST",
            f"{base}/connectors",
            json={"name": "bad", "driver": "oracle", "host": "h", "password": ROTATED},
        ),
        rec(
            "POST",
            f"{base}/connectors",
            json={
                "name": "bad",
                "driver": "postgresql",
                "host": f"http://user:{ROTATED}@[bad",
                "password": ROTATED,
            },
        ),
        rec(
            "POST",
            f"{base}/connectors",
            json={"name": "bad", "driver": "postgresql", "host": f"postgresql://user:{ROTATED}@db:5432/x"},
        ),
    ]
    assert [r.status_code for r in refused] == [422, 422, 422]

    # the SDK's objects and errors
    client = project.client
    rec.note("client", client)
    for connector in project.list_connectors():
        rec.note(f"connector {connector.name}", connector)
        again = pio.Connector.from_id(connector.id, client=client)
        rec.note(f"connector from_id {connector.name}", again)
        rec.note(f"connector fields {connector.name}", attrs.asdict(again))
        result = again.test()
        rec.note(f"test result {connector.name}", result)
        if connector.name != "lite":
            assert not result and result.code == "authentication_failed"
            for call in (again.list_databases, again.list_tables):
                with pytest.raises(pio.ValidationError) as info:
                    call()
                rec.note(f"error {connector.name} {call.__name__}", info.value)
                rec.note(f"error details {connector.name}", info.value.details)
                assert info.value.code == "authentication_failed"
            with pytest.raises(pio.ValidationError) as info:
                project.create_datasource(again, f"sdk-{connector.name}", table="t")
            rec.note(f"datasource error {connector.name}", info.value)
    for source in project.list_datasource():
        rec.note(f"datasource {source.name}", source)

    # rotating to the real password makes the PostgreSQL connector work: the password set is the one used
    rec("PATCH", f"/connectors/{ids['pg']}", json={"password": PG_SCRAM_PASSWORD})
    assert pio.Connector.from_id(ids["pg"], client=client).test(), "the scram password should now be accepted"

    assert rec.leaks() == []

    # what the platform wrote: its log, its metadata database, its key file
    log = platform.log_text()
    assert "POST /api/v1/projects" in log  # the access log is on
    assert leaks(log, (*ALL_SECRETS, PG_SCRAM_PASSWORD, platform.token)) == []
    for db_file in sorted(platform.home.glob("platform.db*")):
        raw = db_file.read_bytes()
        for secret in (*ALL_SECRETS, PG_SCRAM_PASSWORD, platform.token):
            assert secret.encode() not in raw, (db_file.name, secret)
            assert secret.encode("utf-16-le") not in raw, (db_file.name, secret)
    key_file = platform.home / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((platform.home / "admin.token").stat().st_mode) == 0o600


def test_the_sdk_never_sends_a_password_in_a_url(project, platform, pg_database):
    """Creating a connector sends the password in the JSON body only, never in the URL or a header."""
    sent: list[requests.PreparedRequest] = []
    session = requests.Session()
    session.hooks["response"].append(lambda resp, *a, **k: sent.append(resp.request))
    client = pio.Client(url=platform.url, token=platform.token, session=session)
    mine = pio.Project.from_id(project.id, client=client)
    connector = mine.create_sql_connector(
        "pg", host=PG_HOST, port=PG_PORT, username=PG_SCRAM_USER, password=SECRET, database=pg_database
    )
    connector.test()
    assert sent
    for request in sent:
        assert leaks(request.url or "") == []
        assert leaks(str({k: v for k, v in request.headers.items() if k != "Authorization"})) == []
    assert any(SECRET in (r.body.decode() if isinstance(r.body, bytes) else (r.body or "")) for r in sent)


# -- logs at debug level -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> FileServers:
    """The session's file servers (an S3 server among them)."""
    return session_file_servers(tmp_path_factory.getbasetemp())


def test_the_platform_log_at_debug_level_holds_no_library_debug_output(platform, project, servers):
    """At --log-level debug the platform logs its own debug lines, but none of the credential-printing
    libraries' (botocore signs requests in its debug output, SQLAlchemy prints statement parameters)."""
    s3 = servers.s3
    connector = project.create_s3_connector(
        "s3-debug", username=s3.access_key, password=s3.secret_key, host=s3.endpoint
    )
    assert connector.test()
    connector.list_files(bucket=s3.bucket)
    log = platform.log_text()
    assert "DEBUG" in log, "the platform runs at debug level"
    noisy = [
        line
        for line in log.splitlines()
        if " DEBUG " in line
        and any(f" {name}" in line for name in ("botocore", "sqlalchemy", "urllib3", "s3fs"))
    ]
    assert noisy == []
    assert leaks(log, (s3.secret_key,)) == []


def test_the_redacting_filter_masks_secrets_in_messages_arguments_and_tracebacks():
    """Log records lose bearer tokens, password= values, URL credentials and every remembered secret."""
    import logging

    from previsio_sdk.server.logs import RedactingFilter, harden_logging, remember_secrets

    remember_secrets([SECRET, "abc"])  # too short to be searched for: "abc" stays
    records = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("previsio-test-redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.debug("connect %s with %d rows", f"postgresql://u:{ODD}@db/x", 3)
        logger.info("header Authorization: Bearer pvo_abcdefghijklmnop and password=%s&x=1", ROTATED)
        logger.info("abc is %s; the api key is %r", SECRET, {"api_key": API_KEY})
        try:
            raise RuntimeError(f"failed with {SECRET}")
        except RuntimeError:
            logger.exception("boom")
    finally:
        logger.removeHandler(handler)
    text = "\n".join(records)
    assert leaks(text, (SECRET, ROTATED, ODD, API_KEY, "pvo_abcdefghijklmnop")) == []
    assert "3 rows" in text and "abc is ***" in text and "RuntimeError" in text
    harden_logging(logger_names=())
    for name in ("botocore", "sqlalchemy.engine", "paramiko", "s3fs", "urllib3", "asyncssh", "psycopg"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
