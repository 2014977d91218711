"""Project: create, fetch, list and delete (connectors, datasources and datasets have their own modules)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

import previsio_sdk as pio

from .payloads import TOKEN, MockApi, assert_request, error_payload, page_payload, project_payload


class TestProject:
    def test_is_creatable(self, client: pio.Client, api: MockApi) -> None:
        """Project.new posts the name and description to /projects and returns a Project."""
        api.add("POST", "/projects", status=201, json=project_payload(description="Churn study"))

        project = pio.Project.new("churn", description="Churn study", client=client)
        assert_request(
            api.requests[0], "POST", "/projects", body={"name": "churn", "description": "Churn study"}
        )
        assert isinstance(project, pio.Project)
        assert (project.id, project.name, project.description) == ("p1", "churn", "Churn study")
        assert project.created_at == datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
        assert project.client is client

    def test_is_retrievable(self, client: pio.Client, api: MockApi) -> None:
        """Project.from_id fetches /projects/{id}."""
        api.add("GET", "/projects/p1", json=project_payload())

        project = pio.Project.from_id("p1", client=client)
        assert_request(api.requests[0], "GET", "/projects/p1")
        assert project.name == "churn"

    def test_retrieving_a_missing_project_raises_not_found(self, client: pio.Client, api: MockApi) -> None:
        """Project.from_id of an unknown id raises NotFoundError."""
        api.add(
            "GET", "/projects/nope", status=404, json=error_payload("not_found", "No project with id 'nope'.")
        )

        with pytest.raises(pio.NotFoundError, match="No project"):
            pio.Project.from_id("nope", client=client)

    def test_is_listable_across_pages(self, client: pio.Client, api: MockApi) -> None:
        """Project.list follows pages until total is reached and returns Project objects."""
        api.add(
            "GET",
            "/projects",
            json=page_payload(
                [project_payload(id="p1", name="a"), project_payload(id="p2", name="b")], total=5
            ),
        )
        api.add(
            "GET",
            "/projects",
            json=page_payload(
                [project_payload(id="p3", name="c"), project_payload(id="p4", name="d")], total=5, page=2
            ),
        )
        api.add("GET", "/projects", json=page_payload([project_payload(id="p5", name="e")], total=5, page=3))

        projects = pio.Project.list(client=client)
        assert [p.id for p in projects] == ["p1", "p2", "p3", "p4", "p5"]
        assert all(isinstance(p, pio.Project) and p.client is client for p in projects)
        for number, sent in enumerate(api.requests, start=1):
            assert_request(sent, "GET", "/projects", query={"page": str(number), "page_size": "500"})

    def test_is_deletable(self, client: pio.Client, api: MockApi) -> None:
        """project.delete sends DELETE /projects/{id}."""
        api.add("DELETE", "/projects/p1", status=204)

        pio.Project.from_dict(project_payload(), client).delete()
        assert_request(api.requests[0], "DELETE", "/projects/p1")

    def test_duplicate_name_raises_conflict(self, client: pio.Client, api: MockApi) -> None:
        """Creating a project with a taken name raises ConflictError carrying the platform's details."""
        api.add(
            "POST",
            "/projects",
            status=409,
            json=error_payload(
                "conflict", "You already have a project named 'churn'.", details={"existing_id": "p1"}
            ),
        )

        with pytest.raises(pio.ConflictError) as info:
            pio.Project.new("churn", client=client)
        assert info.value.details == {"existing_id": "p1"}

    def test_ids_are_escaped_in_paths(self, client: pio.Client, api: MockApi) -> None:
        """An id with a slash stays one path segment."""
        api.add("GET", "/projects/a%2Fb", json=project_payload(id="a/b"))

        pio.Project.from_id("a/b", client=client)
        assert api.requests[0].path_url == "/api/v1/projects/a%2Fb"

    def test_repr_is_readable_and_hides_the_client(self, client: pio.Client) -> None:
        """repr of a project is one line (name, time) and shows neither the client nor the token."""
        text = repr(pio.Project.from_dict(project_payload(), client))
        assert text.startswith("<Project 'churn'")
        assert "client" not in text.lower() and TOKEN not in text
