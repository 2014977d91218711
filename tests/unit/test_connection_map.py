"""Connection configurations: validation, ``${VAR}`` expansion, the connectors map, and update/rename."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import responses

import previsio_sdk as pio
from previsio_sdk.connection_map import ConnectorMap, load_config, parse_connector_config

from .payloads import API_URL, connector_payload

PG = {"driver": "postgresql", "host": "db", "port": 5432, "username": "u", "password": "p", "database": "d"}


@pytest.mark.parametrize(
    ("config", "problems"),
    [
        ({"w": {"host": "db"}}, ["w.driver: missing: give driver (an SQL database) or type (ftp, s3...)"]),
        ({"w": {"driver": "sqlite"}}, ["w.database: missing: the SQLite database file"]),
        (
            {"w": {"driver": "postgresql", "database": "d"}},
            ["w.host: missing: the address of the postgresql server"],
        ),
        ({"w": {"type": "sql"}}, ["w.driver: missing: postgresql, mysql or sqlite"]),
        ({"f": {"type": "ftp", "username": "u"}}, ["f.host: missing: the address of the ftp server"]),
        ({"l": {"type": "local"}}, ["l.root: missing: the directory on the platform's machine"]),
        (
            {"w": {**PG, "pasword": "x"}},
            ["w.pasword: unknown key for a sql connector (did you mean 'password'?)"],
        ),
        ({"w": {**PG, "port": "high"}}, ["w.port: must be an integer, not str 'high'"]),
        ({"w": {**PG, "port": True}}, ["w.port: must be an integer, not bool True"]),
        ({"w": {**PG, "host": 42}}, ["w.host: must be a string, not int 42"]),
        ({"w": {"driver": "sqlite", "database": 1}}, ["w.database: must be a string, not int 1"]),
        ({"l": {"type": "local", "root": ["a"]}}, ["l.root: must be a string, not list ['a']"]),
        (
            {"f": {"type": "ftp", "host": "h", "tls": "maybe"}},
            ["f.tls: must be true or false, not str 'maybe'"],
        ),
        (
            {"w": {**PG, "password": "${IT_NOT_SET_ANYWHERE}"}},
            ["w.password: environment variable IT_NOT_SET_ANYWHERE is not set"],
        ),
        (
            {"w": {**PG, "password": "${not a name}"}},
            ["w.password: ${not a name} is not a valid environment variable reference"],
        ),
        (
            {"w": "postgresql://db"},
            ["w: settings must be a mapping of keys to values, not 'postgresql://db'"],
        ),
        ({"w": {"type": 3}}, ["w.type: must be a connector type name such as 'sql' or 's3'"]),
        (
            {"s": {"type": "s3", "bucket": "b", "secret": "x"}},
            ["s.secret: unknown key for a s3 connector (did you mean 'secret_key'?)"],
        ),
        (
            {"a": {"host": "h"}, "b": {"driver": "sqlite"}, "c": {**PG, "nope": 1}},
            [
                "a.driver: missing: give driver (an SQL database) or type (ftp, s3...)",
                "b.database: missing: the SQLite database file",
                "c.nope: unknown key for a sql connector; known: database, driver, host, password, port, "
                "username",
            ],
        ),
    ],
    ids=[
        "missing-driver",
        "sqlite-without-file",
        "server-without-host",
        "sql-type-without-driver",
        "ftp-without-host",
        "local-without-root",
        "misspelt-key",
        "port-not-a-number",
        "port-a-boolean",
        "host-not-a-string",
        "sqlite-file-not-a-string",
        "root-not-a-string",
        "tls-not-a-boolean",
        "unset-variable",
        "bad-variable-name",
        "settings-not-a-mapping",
        "type-not-a-string",
        "s3-unknown-key",
        "every-problem-at-once",
    ],
)
def test_bad_configurations_report_every_problem(config: dict[str, Any], problems: list[str]) -> None:
    """A bad configuration raises one ConfigurationError listing each problem as ``name.key: problem``."""
    with pytest.raises(pio.ConfigurationError) as info:
        parse_connector_config(config, environ={})
    assert info.value.details == problems
    for problem in problems:
        assert problem in str(info.value)


def test_variables_and_types_are_resolved(tmp_path: Path) -> None:
    """``${VAR}`` comes from the environment given; digits become a port; aliases map to the API's names."""
    specs = parse_connector_config(
        {
            "w": {**PG, "port": "${PORT}", "password": "pw-${SUFFIX}"},
            "lake": {"type": "s3", "access_key": "AK", "secret_key": "SK", "endpoint_url": "http://m:9000"},
            "local": {"driver": "sqlite", "database": "data/x.db"},
        },
        base_dir=tmp_path,
        environ={"PORT": "6543", "SUFFIX": "42"},
    )
    w, lake, local = (s.body for s in specs)
    assert (w["port"], w["password"], w["type"]) == (6543, "pw-42", "sql")
    assert (lake["username"], lake["password"], lake["host"]) == ("AK", "SK", "http://m:9000")
    assert local["database"] == str(tmp_path / "data" / "x.db")
    assert "pw-42" not in repr(specs)


def test_relative_paths_stay_relative_for_a_remote_platform(tmp_path: Path) -> None:
    """A platform on another machine resolves paths itself: they are sent as written."""
    (spec,) = parse_connector_config(
        {"local": {"driver": "sqlite", "database": "x.db"}}, base_dir=tmp_path, on_this_machine=False
    )
    assert spec.body["database"] == "x.db"


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_config_files(tmp_path: Path, suffix: str) -> None:
    """YAML and JSON files are read; relative paths resolve against the file's directory."""
    path = tmp_path / f"c{suffix}"
    data = {"local": {"driver": "sqlite", "database": "x.db"}}
    path.write_text(json.dumps(data))  # JSON is YAML too
    assert load_config(path) == (data, tmp_path)


def test_unreadable_config_files(tmp_path: Path) -> None:
    """A missing file, invalid JSON or a list instead of a mapping are ConfigurationErrors."""
    with pytest.raises(pio.ConfigurationError, match="Cannot read"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(pio.ConfigurationError, match="not valid JSON"):
        load_config(tmp_path / "bad.json")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(pio.ConfigurationError, match="must hold a mapping"):
        load_config(tmp_path / "list.yaml")


def _map(client: pio.Client) -> ConnectorMap:
    return ConnectorMap(
        "churn",
        [
            pio.Connector.from_dict(connector_payload(), client),
            pio.Connector.from_dict(
                connector_payload(
                    id="c2", name="local", driver="sqlite", host=None, port=None, database="/data/l.db"
                ),
                client,
            ),
            pio.Connector.from_dict(
                connector_payload(
                    id="c3",
                    name="lake",
                    type="s3",
                    driver=None,
                    host="http://minio:9000",
                    port=9000,
                    database=None,
                    options={"bucket": "raw"},
                    needs_credentials=True,
                ),
                client,
            ),
        ],
    )


def test_the_map_looks_up_by_name_and_suggests_close_names(client: pio.Client) -> None:
    """``connectors[name]`` returns the connector; a wrong name raises a KeyError naming close matches."""
    conns = _map(client)
    assert conns["warehouse"].id == "c1" and list(conns) == ["warehouse", "local", "lake"] and len(conns) == 3
    with pytest.raises(pio.ConnectorNotFoundError, match="Did you mean 'warehouse'") as info:
        conns["warehose"]
    assert isinstance(info.value, KeyError) and isinstance(info.value, pio.NotFoundError)
    assert info.value.details["suggestions"] == ["warehouse"]
    assert "warehose" not in conns


def test_the_map_repr_lists_names_types_and_addresses(client: pio.Client) -> None:
    """The repr shows each connector's name, type and address, and flags those needing credentials."""
    text = repr(_map(client))
    assert "3 connector(s)" in text
    assert "warehouse  sql/postgresql  db.example.com:5432/sales" in text
    assert "local      sql/sqlite      /data/l.db" in text
    assert "lake       s3              http://minio:9000/raw  [needs credentials]" in text


@responses.activate
def test_update_sends_the_changes_and_updates_the_connector(client: pio.Client) -> None:
    """``update`` PATCHes only the changes and refreshes the object in place; ``rename`` is an update."""
    conn = pio.Connector.from_dict(connector_payload(needs_credentials=True), client)
    responses.patch(f"{API_URL}/connectors/c1", json=connector_payload(host="db2", needs_credentials=False))
    assert conn.update(password="new", host="db2") is conn
    assert json.loads(responses.calls[0].request.body) == {"password": "new", "host": "db2"}
    assert conn.host == "db2" and not conn.needs_credentials
    responses.patch(f"{API_URL}/connectors/c1", json=connector_payload(name="dw"))
    conn.rename("dw")
    assert conn.name == "dw" and json.loads(responses.calls[1].request.body) == {"name": "dw"}
    with pytest.raises(pio.ConfigurationError, match="Unknown connector settings"):
        conn.update(colour="blue")
