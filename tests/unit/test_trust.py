"""Idempotency keys on creation requests, and the members, users and tokens of the SDK."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
import requests

import previsio_sdk as pio

from .payloads import MockApi, assert_request, job_payload, page_payload, project_payload, query_of

KEY = re.compile(r"^[0-9a-f]{32}$")


def _key(request: requests.PreparedRequest) -> str:
    return request.headers["Idempotency-Key"]


@pytest.fixture
def project(client: pio.Client) -> pio.Project:
    return pio.Project.from_dict(project_payload(), client)


class TestIdempotencyKeys:
    def test_every_post_carries_a_new_key(self, client: pio.Client, api: MockApi) -> None:
        """Two creations send two different random Idempotency-Key headers."""
        api.add("POST", "/projects", status=201, json=project_payload())
        api.add("POST", "/projects", status=201, json=project_payload(id="p2"))

        pio.Project.new("a", client=client)
        pio.Project.new("b", client=client)
        first, second = (_key(r) for r in api.requests)
        assert KEY.match(first) and KEY.match(second) and first != second

    def test_a_post_cut_off_by_a_connection_error_is_sent_again_with_the_same_key(
        self, client: pio.Client, api: MockApi, backoffs: list[int]
    ) -> None:
        """A creation whose connection drops is retried with the same key and body, and succeeds."""
        api.add("POST", "/projects", body=requests.ConnectionError("reset by peer"))
        api.add("POST", "/projects", status=201, json=project_payload())

        project = pio.Project.new("churn", client=client)
        assert project.id == "p1"
        first, second = api.requests
        assert _key(first) == _key(second)
        assert first.body == second.body
        assert_request(second, "POST", "/projects", body={"name": "churn", "description": None})
        assert backoffs == [1]

    @pytest.mark.parametrize("status", [502, 503, 504])
    def test_a_post_answered_by_a_gateway_error_is_retried_with_the_same_key(
        self, client: pio.Client, api: MockApi, backoffs: list[int], status: int
    ) -> None:
        """A creation answered 502/503/504 is retried with the same key, after a backoff."""
        api.add("POST", "/projects", status=status)
        api.add("POST", "/projects", status=201, json=project_payload())

        client.post("/projects", {"name": "x"})
        assert len({_key(r) for r in api.requests}) == 1
        assert backoffs == [1]

    def test_a_key_still_in_use_is_retried(
        self, client: pio.Client, api: MockApi, backoffs: list[int]
    ) -> None:
        """A 409 idempotency_key_in_use (the first attempt still running) is retried with the same key."""
        busy = {"error": {"code": "idempotency_key_in_use", "message": "Still running."}}
        api.add("POST", "/projects", status=409, json=busy)
        api.add("POST", "/projects", status=201, json=project_payload())

        assert client.post("/projects", {"name": "x"})["id"] == "p1"
        assert backoffs == [1]

    def test_another_conflict_is_not_retried(
        self, client: pio.Client, api: MockApi, backoffs: list[int]
    ) -> None:
        """A 409 conflict (a duplicate name) is the answer: raised at once."""
        api.add("POST", "/projects", status=409, json={"error": {"code": "conflict", "message": "Taken."}})

        with pytest.raises(pio.ConflictError):
            client.post("/projects", {"name": "x"})
        assert len(api.requests) == 1 and backoffs == []

    def test_a_post_gives_up_after_max_retries(self, api: MockApi, backoffs: list[int]) -> None:
        """A creation that never connects is tried 1 + max_retries times with one key, then raises."""
        api.add("POST", "/projects", body=requests.ConnectionError("refused"))
        client = pio.Client(url="http://previsio.test", token="tok-123", max_retries=2)

        with pytest.raises(pio.ServerUnreachableError):
            client.post("/projects", {"name": "x"})
        assert len(api.requests) == 3 and len({_key(r) for r in api.requests}) == 1

    def test_an_upload_cut_off_is_sent_again_whole_with_the_same_key(
        self, project: pio.Project, api: MockApi, backoffs: list[int], tmp_path: Path
    ) -> None:
        """An upload whose connection drops is sent again from the file's start, with the same key."""
        path = tmp_path / "orders.csv"
        path.write_bytes(b"id,amount\n1,2.5\n2,3.5\n")
        sent: list[bytes] = []

        def record(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
            body = request.body
            sent.append(body.read() if hasattr(body, "read") else body)
            if len(sent) == 1:
                raise requests.ConnectionError("reset by peer")
            return 202, {}, __import__("json").dumps(job_payload(kind="upload"))

        api.mock.add_callback(
            "POST", "http://previsio.test/api/v1/projects/p1/datasets/upload", callback=record
        )
        job = project.create_dataset("orders", file_name=str(path), wait=False)
        assert job.id == "j1"
        assert sent == [path.read_bytes(), path.read_bytes()]
        assert len({_key(r) for r in api.requests}) == 1

    def test_a_raw_body_that_cannot_rewind_is_not_retried(
        self, client: pio.Client, api: MockApi, backoffs: list[int]
    ) -> None:
        """A POST with a key but a body stream that cannot seek is sent once (it cannot be sent again)."""

        class OneShot(io.RawIOBase):
            def readable(self) -> bool:
                return True

            def readinto(self, buffer: bytearray) -> int:
                return 0

        api.add("POST", "/blob", status=503)
        with pytest.raises(pio.ServerError):
            client.request("POST", "/blob", data=OneShot(), idempotency_key="k1")
        assert len(api.requests) == 1 and backoffs == []


class TestMembers:
    def test_add_member_sends_the_user_and_role(self, project: pio.Project, api: MockApi) -> None:
        """add_member POSTs {"user", "role"} to the project's members and returns a Member."""
        api.add(
            "POST",
            "/projects/p1/members",
            status=201,
            json={"user_id": "u2", "user_name": "bob", "role": "editor"},
        )

        member = project.add_member("bob", "editor")
        assert member == pio.Member(user_id="u2", user_name="bob", role="editor")
        assert_request(
            api.requests[0], "POST", "/projects/p1/members", body={"user": "bob", "role": "editor"}
        )

    def test_add_member_takes_a_user_object(
        self, project: pio.Project, api: MockApi, client: pio.Client
    ) -> None:
        """A User object is sent by id; the default role is viewer."""
        api.add("POST", "/projects/p1/members", json={"user_id": "u2", "user_name": "bob", "role": "viewer"})

        project.add_member(pio.User(id="u2", name="bob", client=client))
        assert_request(api.requests[0], "POST", "/projects/p1/members", body={"user": "u2", "role": "viewer"})

    def test_list_members_pages_through(self, project: pio.Project, api: MockApi) -> None:
        """list_members returns Member objects from the paged list."""
        items = [
            {"user_id": "u1", "user_name": "admin", "role": "owner"},
            {"user_id": "u2", "user_name": "bob", "role": "viewer"},
        ]
        api.add("GET", "/projects/p1/members", json=page_payload(items))

        assert [(m.user_name, m.role) for m in project.list_members()] == [
            ("admin", "owner"),
            ("bob", "viewer"),
        ]

    def test_remove_member_deletes_by_name_or_id(self, project: pio.Project, api: MockApi) -> None:
        """remove_member sends DELETE /projects/{pid}/members/{user}, the user escaped."""
        api.add("DELETE", "/projects/p1/members/bob%2F1", status=204)

        project.remove_member("bob/1")
        assert api.requests[0].method == "DELETE"


class TestUsersAndTokens:
    def test_create_user_and_token_and_hide_its_value(self, client: pio.Client, api: MockApi) -> None:
        """User.create then create_token give the token's value once; no repr shows it."""
        api.add(
            "POST",
            "/users",
            status=201,
            json={"id": "u2", "name": "bob", "is_admin": False, "created_at": "2024-05-01T12:00:00Z"},
        )
        token_body = {
            "id": "t1",
            "user_id": "u2",
            "created_at": "2024-05-01T12:00:00Z",
            "expires_at": None,
            "revoked": False,
            "token": "pvo_SecretValue123",
        }
        api.add("POST", "/users/u2/tokens", status=201, json=token_body)
        api.add("DELETE", "/tokens/t1", status=204)

        user = pio.User.create("bob", client=client)
        token = user.create_token(expires_in_days=30)
        assert token.value == "pvo_SecretValue123"
        assert "pvo_SecretValue123" not in repr(token) and "pvo_SecretValue123" not in repr(user)
        assert_request(api.requests[0], "POST", "/users", body={"name": "bob", "is_admin": False})
        assert_request(api.requests[1], "POST", "/users/u2/tokens", body={"expires_in_days": 30})
        token.revoke()
        assert api.requests[2].method == "DELETE"

    def test_a_listed_token_has_no_value(self, client: pio.Client, api: MockApi) -> None:
        """Tokens listed for a user carry no value (the platform keeps only digests)."""
        api.add(
            "GET",
            "/users/u2/tokens",
            json=page_payload(
                [{"id": "t1", "user_id": "u2", "created_at": None, "expires_at": None, "revoked": True}]
            ),
        )
        tokens = pio.User(id="u2", name="bob", client=client).list_tokens()
        assert [(t.id, t.revoked, t.value) for t in tokens] == [("t1", True, None)]

    def test_a_non_admin_gets_permission_denied(self, client: pio.Client, api: MockApi) -> None:
        """A 403 forbidden answer raises PermissionDeniedError."""
        api.add("GET", "/users", status=403, json={"error": {"code": "forbidden", "message": "Admins only."}})

        with pytest.raises(pio.PermissionDeniedError) as info:
            pio.User.list(client=client)
        assert info.value.code == "forbidden"


class TestPageLimits:
    def test_lists_use_the_largest_page_the_platform_allows(self, client: pio.Client, api: MockApi) -> None:
        """A 422 naming a smaller largest page_size makes the list go on with pages of that size."""
        refusal = {
            "error": {
                "code": "validation_error",
                "message": "page_size may not exceed 2.",
                "details": {"field": "page_size", "max": 2},
            }
        }
        api.add("GET", "/projects", status=422, json=refusal)
        first = [project_payload(id="p1"), project_payload(id="p2")]
        api.add("GET", "/projects", json=page_payload(first, total=3, page_size=2))
        api.add(
            "GET", "/projects", json=page_payload([project_payload(id="p3")], total=3, page=2, page_size=2)
        )

        assert [p.id for p in pio.Project.list(client=client)] == ["p1", "p2", "p3"]
        assert [query_of(r) for r in api.requests] == [
            {"page": "1", "page_size": "500"},
            {"page": "1", "page_size": "2"},
            {"page": "2", "page_size": "2"},
        ]

    def test_another_validation_error_is_raised(self, client: pio.Client, api: MockApi) -> None:
        """A 422 that names no page limit is raised as it is."""
        api.add(
            "GET", "/projects", status=422, json={"error": {"code": "validation_error", "message": "No."}}
        )

        with pytest.raises(pio.ValidationError):
            pio.Project.list(client=client)
