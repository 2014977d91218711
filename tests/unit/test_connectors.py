"""Connectors: creation from a project, browsing, testing, deletion, and secrets kept out of sight."""

from __future__ import annotations

import attrs
import pytest

import previsio_sdk as pio
from previsio_sdk.connectors import CONNECTOR_CLASSES

from .payloads import (
    TOKEN,
    MockApi,
    assert_request,
    connector_payload,
    json_of,
    page_payload,
    project_payload,
)

PASSWORD = "s3cr3t-Pa55"


@pytest.fixture
def project(client: pio.Client) -> pio.Project:
    return pio.Project.from_dict(project_payload(), client)


@pytest.fixture
def connector(client: pio.Client) -> pio.SQLConnector:
    conn = pio.Connector.from_dict(connector_payload(), client)
    assert isinstance(conn, pio.SQLConnector)
    return conn


def sql_body(**overrides: object) -> dict[str, object]:
    """The JSON body create_sql_connector is expected to send."""
    return {
        "name": "warehouse",
        "type": "sql",
        "driver": "postgresql",
        "host": "db.example.com",
        "port": 5432,
        "username": "me",
        "password": PASSWORD,
        "database": "sales",
        **overrides,
    }


class TestCreateSQLConnector:
    def test_is_creatable(self, project: pio.Project, api: MockApi) -> None:
        """create_sql_connector posts type, driver, host, port, username, password and database."""
        api.add("POST", "/projects/p1/connectors", status=201, json=connector_payload())

        conn = project.create_sql_connector(
            "warehouse",
            host="db.example.com",
            port=5432,
            username="me",
            password=PASSWORD,
            driver="postgresql",
            database="sales",
        )
        assert_request(api.requests[0], "POST", "/projects/p1/connectors", body=sql_body())
        assert isinstance(conn, pio.SQLConnector)
        assert (conn.id, conn.type, conn.driver, conn.has_password) == ("c1", "sql", "postgresql", True)

    @pytest.mark.parametrize(("port", "driver"), [(5432, "postgresql"), (3306, "mysql")])
    def test_infers_the_driver_from_a_well_known_port(
        self, project: pio.Project, api: MockApi, port: int, driver: str
    ) -> None:
        """Without driver=, port 5432 sends driver "postgresql" and 3306 sends "mysql"."""
        api.add(
            "POST", "/projects/p1/connectors", status=201, json=connector_payload(driver=driver, port=port)
        )

        project.create_sql_connector(
            "warehouse", host="db.example.com", port=port, username="me", password=PASSWORD, database="sales"
        )
        assert json_of(api.requests[0]) == sql_body(driver=driver, port=port)

    @pytest.mark.parametrize(
        ("host", "driver", "port"),
        [("db.example.com:5432", "postgresql", 5432), ("https://db.example.com:3306", "mysql", 3306)],
    )
    def test_infers_the_driver_from_a_port_written_in_the_host(
        self, project: pio.Project, api: MockApi, host: str, driver: str, port: int
    ) -> None:
        """Without driver= or port=, a well-known port written in the host (db:5432) chooses the driver."""
        api.add(
            "POST", "/projects/p1/connectors", status=201, json=connector_payload(driver=driver, port=port)
        )
        project.create_sql_connector(
            "warehouse", host=host, username="me", password=PASSWORD, database="sales"
        )
        assert json_of(api.requests[0]) == sql_body(driver=driver, port=port, host=host)

    @pytest.mark.parametrize("port", [1234, None])
    def test_another_port_without_driver_leaves_the_detection_to_the_platform(
        self, project: pio.Project, api: MockApi, port: int | None
    ) -> None:
        """Without driver= on a port other than 5432 or 3306, driver None is sent: the platform detects it."""
        api.add("POST", "/projects/p1/connectors", status=201, json=connector_payload(port=port))

        project.create_sql_connector("warehouse", host="db.example.com", port=port, password=PASSWORD)
        sent = json_of(api.requests[0])
        assert (sent["driver"], sent["port"]) == (None, port)

    def test_an_explicit_driver_wins_over_the_port(self, project: pio.Project, api: MockApi) -> None:
        """driver="mysql" on port 5432 sends "mysql" (MariaDB on an unusual port, for instance)."""
        api.add("POST", "/projects/p1/connectors", status=201, json=connector_payload(driver="mysql"))

        project.create_sql_connector(
            "warehouse",
            host="db.example.com",
            port=5432,
            username="me",
            password=PASSWORD,
            driver="mysql",
            database="sales",
        )
        assert json_of(api.requests[0])["driver"] == "mysql"

    def test_passes_a_url_host_as_given(self, project: pio.Project, api: MockApi) -> None:
        """A host given as a URL is sent to the platform unchanged (the platform parses it)."""
        api.add("POST", "/projects/p1/connectors", status=201, json=connector_payload())

        project.create_sql_connector("warehouse", host="https://db.example.com", port=5432)
        body = json_of(api.requests[0])
        assert (body["host"], body["port"], body["driver"]) == ("https://db.example.com", 5432, "postgresql")

    def test_sends_empty_credentials_as_null(self, project: pio.Project, api: MockApi) -> None:
        """No username or password sends null, not an empty string the platform would store."""
        api.add("POST", "/projects/p1/connectors", status=201, json=connector_payload(has_password=False))

        project.create_sql_connector("warehouse", host="db.example.com", port=5432)
        body = json_of(api.requests[0])
        assert (body["username"], body["password"], body["database"]) == (None, None, None)

    def test_validation_error_of_the_platform_is_raised(self, project: pio.Project, api: MockApi) -> None:
        """A setting the platform refuses raises ValidationError with the platform's code."""
        api.add(
            "POST",
            "/projects/p1/connectors",
            status=422,
            json={"error": {"code": "validation_error", "message": "Unknown driver 'oracle'."}},
        )

        with pytest.raises(pio.ValidationError) as info:
            project.create_sql_connector("warehouse", host="h", port=1, driver="oracle")
        assert info.value.code == "validation_error"


class TestSecrets:
    def test_password_travels_once_and_is_shown_nowhere(self, project: pio.Project, api: MockApi) -> None:
        """The create body carries the password but no repr or str of the returned connector does."""
        api.add("POST", "/projects/p1/connectors", status=201, json=connector_payload())

        conn = project.create_sql_connector(
            "warehouse", host="db.example.com", port=5432, username="me", password=PASSWORD, database="sales"
        )
        assert json_of(api.requests[0])["password"] == PASSWORD
        for text in (repr(conn), str(conn), repr(project), repr(project.client)):
            assert PASSWORD not in text
            assert TOKEN not in text

    def test_connector_objects_have_no_password_attribute(self, connector: pio.SQLConnector) -> None:
        """A connector only knows whether a password is set: it has has_password and no password field."""
        assert "password" not in {f.name for f in attrs.fields(pio.SQLConnector)}
        assert not hasattr(connector, "password")
        assert connector.has_password is True

    def test_repr_is_readable_and_hides_the_client(self, connector: pio.SQLConnector) -> None:
        """repr is one line: class, name, address and whether a password is set, without the client."""
        text = repr(connector)
        assert text == "<SQLConnector 'warehouse' postgresql://me@db.example.com:5432/sales, password set>"
        assert "client" not in text.lower()


class TestListAndRetrieve:
    def test_is_listable_across_pages(self, project: pio.Project, api: MockApi) -> None:
        """list_connectors follows the pages and returns objects of their type's class (else Connector)."""
        api.add(
            "GET",
            "/projects/p1/connectors",
            json=page_payload(
                [connector_payload(id="c1"), connector_payload(id="c2", type="other", driver=None)], total=3
            ),
        )
        api.add(
            "GET", "/projects/p1/connectors", json=page_payload([connector_payload(id="c3")], total=3, page=2)
        )

        conns = project.list_connectors()
        assert [(c.id, type(c)) for c in conns] == [
            ("c1", pio.SQLConnector),
            ("c2", pio.Connector),
            ("c3", pio.SQLConnector),
        ]
        for number, sent in enumerate(api.requests, start=1):
            assert_request(
                sent, "GET", "/projects/p1/connectors", query={"page": str(number), "page_size": "500"}
            )

    def test_is_retrievable_as_its_type_class(self, client: pio.Client, api: MockApi) -> None:
        """Connector.from_id of an "sql" connector returns an SQLConnector."""
        api.add("GET", "/connectors/c1", json=connector_payload())

        conn = pio.Connector.from_id("c1", client=client)
        assert_request(api.requests[0], "GET", "/connectors/c1")
        assert type(conn) is pio.SQLConnector
        assert CONNECTOR_CLASSES["sql"] is pio.SQLConnector
        assert (conn.host, conn.port, conn.username, conn.database) == ("db.example.com", 5432, "me", "sales")


class TestTest:
    def test_success_is_truthy(self, connector: pio.SQLConnector, api: MockApi) -> None:
        """connector.test() posts to /connectors/{id}/test and returns a truthy result on ok."""
        api.add("POST", "/connectors/c1/test", json={"ok": True, "code": None, "message": "Connected."})

        result = connector.test()
        assert_request(api.requests[0], "POST", "/connectors/c1/test")
        assert result
        assert result == pio.ConnectorTestResult(ok=True, message="Connected.", code=None)

    def test_failure_is_falsy_and_says_why(self, connector: pio.SQLConnector, api: MockApi) -> None:
        """A failed test is a falsy result carrying the driver's code and message (not an exception)."""
        api.add(
            "POST",
            "/connectors/c1/test",
            json={
                "ok": False,
                "code": "authentication_failed",
                "message": "password authentication failed for 'me'",
            },
        )

        result = connector.test()
        assert not result
        assert result.code == "authentication_failed"
        assert "password authentication failed" in result.message


class TestBrowse:
    def test_lists_databases(self, connector: pio.SQLConnector, api: MockApi) -> None:
        """list_databases GETs /connectors/{id}/databases and returns the names."""
        api.add("GET", "/connectors/c1/databases", json={"items": ["postgres", "sales"]})

        assert connector.list_databases() == ["postgres", "sales"]
        assert_request(api.requests[0], "GET", "/connectors/c1/databases")

    @pytest.mark.parametrize(("database", "query"), [("sales", {"database": "sales"}), (None, {})])
    def test_lists_tables_of_a_database(
        self, connector: pio.SQLConnector, api: MockApi, database: str | None, query: dict[str, str]
    ) -> None:
        """list_tables(database) sends database as a query parameter, and none for the default database."""
        api.add("GET", "/connectors/c1/tables", json={"items": ["orders", "audit.log"]})

        assert connector.list_tables(database) == ["orders", "audit.log"]
        assert_request(api.requests[0], "GET", "/connectors/c1/tables", query=query)


class TestDelete:
    @pytest.mark.parametrize(("force", "query"), [(False, {}), (True, {"force": "true"})])
    def test_is_deletable(
        self, connector: pio.SQLConnector, api: MockApi, force: bool, query: dict[str, str]
    ) -> None:
        """connector.delete() sends DELETE /connectors/{id}, with force=true only when asked."""
        api.add("DELETE", "/connectors/c1", status=204)

        connector.delete(force=force)
        assert_request(api.requests[0], "DELETE", "/connectors/c1", query=query)

    def test_delete_in_use_raises_conflict_listing_users(
        self, connector: pio.SQLConnector, api: MockApi
    ) -> None:
        """Deleting a connector used by datasources raises ConflictError whose details name them."""
        users = {"datasources": [{"id": "s1", "name": "orders"}]}
        api.add(
            "DELETE",
            "/connectors/c1",
            status=409,
            json={
                "error": {
                    "code": "conflict",
                    "message": "Connector 'warehouse' is used by datasources 'orders'.",
                    "details": users,
                }
            },
        )

        with pytest.raises(pio.ConflictError) as info:
            connector.delete()
        assert info.value.details == users
