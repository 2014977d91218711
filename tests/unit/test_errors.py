"""Errors: the hierarchy, and how an error answer of the platform becomes an exception."""

from __future__ import annotations

import pytest

import previsio_sdk as pio
from previsio_sdk import errors

from .payloads import TOKEN, MockApi, error_payload

STATUS_TABLE = [
    (400, errors.BadRequestError, "bad_request"),
    (401, errors.AuthenticationError, "not_authenticated"),
    (403, errors.PermissionDeniedError, "forbidden"),
    (404, errors.NotFoundError, "not_found"),
    (409, errors.ConflictError, "conflict"),
    (413, errors.PayloadTooLargeError, "payload_too_large"),
    (422, errors.ValidationError, "validation_error"),
    (429, errors.RateLimitError, "rate_limited"),
    (500, errors.ServerError, "internal_error"),
    (503, errors.ServerError, "unavailable"),
]


class TestErrorClassForStatus:
    @pytest.mark.parametrize(("status", "cls", "code"), STATUS_TABLE)
    def test_maps_each_status_to_its_class(self, status: int, cls: type[errors.APIError], code: str) -> None:
        """Each documented HTTP status maps to its own APIError subclass."""
        assert errors.error_class_for_status(status) is cls

    @pytest.mark.parametrize(
        ("status", "cls"),
        [
            (418, errors.BadRequestError),
            (599, errors.ServerError),
            (502, errors.ServerError),
            (302, errors.APIError),
        ],
    )
    def test_maps_other_statuses_by_their_class(self, status: int, cls: type[errors.APIError]) -> None:
        """An unlisted 4xx is a BadRequestError, any 5xx a ServerError, anything else a plain APIError."""
        assert errors.error_class_for_status(status) is cls


class TestHierarchy:
    @pytest.mark.parametrize("name", errors.__all__)
    def test_every_error_derives_from_previsio_error(self, name: str) -> None:
        """Every exception class of previsio_sdk.errors is a PrevisioError with a docstring."""
        obj = getattr(errors, name)
        if isinstance(obj, type):
            assert issubclass(obj, errors.PrevisioError)
            assert obj.__doc__

    @pytest.mark.parametrize(
        ("cls", "builtin"),
        [
            (errors.ConfigurationError, ValueError),
            (errors.ValidationError, ValueError),
            (errors.BadRequestError, ValueError),
            (errors.NotFoundError, LookupError),
            (errors.PermissionDeniedError, PermissionError),
            (errors.ServerUnreachableError, ConnectionError),
            (errors.JobTimeoutError, TimeoutError),
        ],
    )
    def test_subclasses_the_matching_builtin(self, cls: type[Exception], builtin: type[Exception]) -> None:
        """Errors that mean a built-in condition can be caught as that built-in."""
        assert issubclass(cls, builtin)

    def test_public_names_are_exported_at_the_top(self) -> None:
        """The errors most callers catch are importable from previsio_sdk directly."""
        for name in (
            "APIError",
            "NotFoundError",
            "ConflictError",
            "ValidationError",
            "ServerError",
            "ServerUnreachableError",
            "JobFailedError",
            "JobTimeoutError",
            "ConfigurationError",
        ):
            assert getattr(pio, name) is getattr(errors, name)


class TestFromAnswer:
    @pytest.mark.parametrize(("status", "cls", "code"), STATUS_TABLE)
    def test_raises_the_class_of_the_status_with_the_body_fields(
        self,
        client: pio.Client,
        api: MockApi,
        backoffs: list[int],
        status: int,
        cls: type[errors.APIError],
        code: str,
    ) -> None:
        """An error answer raises its class with status, code, message, details and request id of its body."""
        body = error_payload(code, "Something is wrong.", details={"field": "name"}, request_id="req-42")
        api.add("POST", "/projects", status=status, json=body, headers={"X-Request-ID": "req-from-header"})

        with pytest.raises(cls) as info:
            client.post("/projects", {"name": "x"})
        err = info.value
        assert type(err) is cls
        assert (err.status, err.code, err.message, err.request_id) == (
            status,
            code,
            "Something is wrong.",
            "req-42",
        )
        assert err.details == {"field": "name"}

    def test_takes_the_request_id_from_the_header_when_the_body_has_none(
        self, client: pio.Client, api: MockApi
    ) -> None:
        """With no request_id in the body, the X-Request-ID header of the answer is used."""
        api.add(
            "GET",
            "/projects/p9",
            status=404,
            json=error_payload("not_found", "No project.", request_id=None),
            headers={"X-Request-ID": "hdr-7"},
        )

        with pytest.raises(pio.NotFoundError) as info:
            client.get("/projects/p9")
        assert info.value.request_id == "hdr-7"

    def test_str_leads_with_the_request_id(self, client: pio.Client, api: MockApi) -> None:
        """str(error) reads ``[request id] status code: message``."""
        api.add(
            "GET",
            "/projects/p9",
            status=404,
            json=error_payload("not_found", "No project.", request_id="r-1"),
        )

        with pytest.raises(pio.NotFoundError) as info:
            client.get("/projects/p9")
        assert str(info.value) == "[r-1] 404 not_found: No project."

    @pytest.mark.parametrize(
        ("body", "content_type"),
        [
            ("<html><body>502 Bad Gateway</body></html>", "text/html"),
            ("", "text/plain"),
            ('{"detail": "Not Found"}', "application/json"),
            ('["a list"]', "application/json"),
            ('{"error": "a string"}', "application/json"),
        ],
    )
    def test_a_body_that_is_not_an_error_object_still_gives_a_typed_error(
        self, client: pio.Client, api: MockApi, body: str, content_type: str
    ) -> None:
        """An HTML, empty or differently shaped error body still raises the status's class with the reason."""
        api.add(
            "GET",
            "/projects/p9",
            status=404,
            body=body,
            content_type=content_type,
            headers={"X-Request-ID": "hdr-9"},
        )

        with pytest.raises(pio.NotFoundError) as info:
            client.get("/projects/p9")
        assert info.value.status == 404
        assert info.value.code is None
        assert info.value.message == "Not Found"
        assert info.value.request_id == "hdr-9"

    def test_error_holds_no_token_nor_authorization_header(self, client: pio.Client, api: MockApi) -> None:
        """Neither str nor repr of an API error shows the token or the Authorization header."""
        api.add("GET", "/projects", status=401, json=error_payload("not_authenticated", "Invalid token."))

        with pytest.raises(pio.AuthenticationError) as info:
            client.get("/projects")
        for text in (str(info.value), repr(info.value), repr(vars(info.value))):
            assert TOKEN not in text
            assert "Authorization" not in text and "Bearer" not in text
        assert repr(info.value) == (
            "AuthenticationError(message='Invalid token.', status=401, "
            "code='not_authenticated', request_id='req-1')"
        )


class TestJobErrors:
    def test_job_failed_error_carries_the_job_id_and_code(self) -> None:
        """JobFailedError keeps the job id beside the code and message."""
        err = errors.JobFailedError("Table missing.", code="source_not_found", job_id="j1")
        assert (err.job_id, err.code, err.message, err.status) == (
            "j1",
            "source_not_found",
            "Table missing.",
            None,
        )
        assert str(err) == "source_not_found: Table missing."
