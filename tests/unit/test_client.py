"""Client: the single choke point (URL, token, retries, pages, jobs, downloads)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import requests
import responses

import previsio_sdk as pio
from previsio_sdk.client import format_path

from .payloads import (
    API_URL,
    BASE_URL,
    TOKEN,
    MockApi,
    assert_request,
    job_payload,
    page_payload,
    project_payload,
)


class TestRequest:
    def test_joins_the_api_prefix_and_sends_the_bearer_token(self, client: pio.Client, api: MockApi) -> None:
        """Every request goes to <url>/api/v1<path> with ``Authorization: Bearer <token>``."""
        api.add("GET", "/projects/p1", json=project_payload())

        assert client.get("/projects/p1") == project_payload()
        (sent,) = api.requests
        assert sent.url == f"{API_URL}/projects/p1"
        assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
        assert sent.headers["Accept"] == "application/json"

    def test_sends_query_parameters_and_json_bodies(self, client: pio.Client, api: MockApi) -> None:
        """``post`` sends its body as JSON and its keyword arguments as the query string."""
        api.add("POST", "/things", json={"ok": True})

        assert client.post("/things", {"a": 1, "b": [1, 2]}, dry="true") == {"ok": True}
        assert_request(api.requests[0], "POST", "/things", query={"dry": "true"}, body={"a": 1, "b": [1, 2]})
        assert api.requests[0].headers["Content-Type"] == "application/json"

    def test_patch_and_delete_send_their_method(self, client: pio.Client, api: MockApi) -> None:
        """``patch`` sends a JSON body with PATCH and ``delete`` sends DELETE with its query parameters."""
        api.add("PATCH", "/projects/p1", json=project_payload(name="renamed"))
        api.add("DELETE", "/connectors/c1", status=204)

        assert client.patch("/projects/p1", {"name": "renamed"})["name"] == "renamed"
        assert client.delete("/connectors/c1", force="true") is None
        assert_request(api.requests[0], "PATCH", "/projects/p1", body={"name": "renamed"})
        assert_request(api.requests[1], "DELETE", "/connectors/c1", query={"force": "true"})

    def test_strips_a_trailing_slash_of_the_url(self, api: MockApi) -> None:
        """A URL given with a trailing slash does not produce a double slash in request URLs."""
        api.add("GET", "/health", json={"status": "ok", "version": "0.1.0"})

        pio.Client(url=f"{BASE_URL}/", token=TOKEN).get("/health")
        assert api.requests[0].url == f"{API_URL}/health"

    def test_sends_no_authorization_without_a_token(self, api: MockApi) -> None:
        """A client with no token (and none in the environment) sends no Authorization header."""
        api.add("GET", "/health", json={"status": "ok", "version": "0.1.0"})

        pio.Client(url=BASE_URL).get("/health")
        assert "Authorization" not in api.requests[0].headers

    def test_identifies_itself_in_the_user_agent(self, client: pio.Client, api: MockApi) -> None:
        """Requests carry a ``previsio_sdk/<version>`` User-Agent instead of the requests default."""
        api.add("GET", "/health", json={"status": "ok", "version": "0.1.0"})

        client.get("/health")
        assert api.requests[0].headers["User-Agent"] == f"previsio_sdk/{pio.__version__}"

    def test_keeps_the_user_agent_of_a_given_session(self, api: MockApi) -> None:
        """A caller's session with its own User-Agent keeps it, and is the session used."""
        session = requests.Session()
        session.headers["User-Agent"] = "my-app/2.0"
        api.add("GET", "/health", json={"status": "ok", "version": "0.1.0"})

        client = pio.Client(url=BASE_URL, token=TOKEN, session=session)
        client.get("/health")
        assert client.session is session
        assert api.requests[0].headers["User-Agent"] == "my-app/2.0"

    def test_passes_the_client_timeout_to_each_request(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Every request is sent with the client's timeout unless the call gives its own."""
        seen: list[float] = []

        def fake_request(method: str, url: str, **kwargs: object) -> requests.Response:
            seen.append(kwargs["timeout"])  # type: ignore[arg-type]
            resp = requests.Response()
            resp.status_code = 200
            resp._content = b"{}"
            return resp

        client = pio.Client(url=BASE_URL, token=TOKEN, timeout=7.5)
        monkeypatch.setattr(client.session, "request", fake_request)
        client.request("GET", "/health")
        client.request("GET", "/health", timeout=1.0)
        assert seen == [7.5, 1.0]


class TestFormatPath:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("p1", "/projects/p1"),
            ("a/b", "/projects/a%2Fb"),
            ("../x", "/projects/..%2Fx"),
            ("a b?c#d", "/projects/a%20b%3Fc%23d"),
        ],
    )
    def test_escapes_ids_so_they_never_reshape_a_path(self, value: str, expected: str) -> None:
        """An id holding ``/``, ``?``, ``#`` or blanks is escaped into a single path segment."""
        assert format_path("/projects/{}", value) == expected


class TestRetries:
    @pytest.mark.parametrize("status", [502, 503, 504])
    def test_retries_an_idempotent_request_on_a_gateway_status(
        self, client: pio.Client, api: MockApi, backoffs: list[int], status: int
    ) -> None:
        """A GET answered 502/503/504 then 200 succeeds after one backoff (two calls)."""
        api.add("GET", "/projects/p1", status=status, json={"error": {"code": "unavailable", "message": "x"}})
        api.add("GET", "/projects/p1", json=project_payload())

        assert client.get("/projects/p1")["id"] == "p1"
        assert len(api.requests) == 2
        assert backoffs == [1]

    def test_does_not_retry_a_post_without_idempotency_key(
        self, client: pio.Client, api: MockApi, backoffs: list[int]
    ) -> None:
        """A POST sent without an idempotency key and answered 503 is not sent again: ServerError at once."""
        api.add("POST", "/projects", status=503, json={"error": {"code": "unavailable", "message": "Down."}})

        with pytest.raises(pio.ServerError) as info:
            client.request("POST", "/projects", json={"name": "x"})
        assert info.value.status == 503
        assert len(api.requests) == 1
        assert backoffs == []

    def test_does_not_retry_a_raw_upload(self, client: pio.Client, api: MockApi, backoffs: list[int]) -> None:
        """A request with a raw body (a stream that cannot be replayed) is never retried."""
        api.add("PUT", "/blob", status=503)

        with pytest.raises(pio.ServerError):
            client.request("PUT", "/blob", data=b"payload")
        assert len(api.requests) == 1
        assert backoffs == []

    def test_gives_up_after_max_retries_with_the_last_error(self, api: MockApi, backoffs: list[int]) -> None:
        """A GET answered 503 every time is tried 1 + max_retries times, then raises ServerError."""
        api.add(
            "GET", "/projects/p1", status=503, json={"error": {"code": "unavailable", "message": "Down."}}
        )

        client = pio.Client(url=BASE_URL, token=TOKEN, max_retries=2)
        with pytest.raises(pio.ServerError) as info:
            client.get("/projects/p1")
        assert info.value.code == "unavailable"
        assert len(api.requests) == 3
        assert backoffs == [1, 2]

    @pytest.mark.parametrize("status", [500, 501])
    def test_does_not_retry_other_server_errors(
        self, client: pio.Client, api: MockApi, backoffs: list[int], status: int
    ) -> None:
        """A 500 or 501 is a platform bug, not an outage: it raises at once."""
        api.add("GET", "/projects/p1", status=status)

        with pytest.raises(pio.ServerError):
            client.get("/projects/p1")
        assert len(api.requests) == 1

    def test_retries_a_connection_error_then_raises_server_unreachable(
        self, client: pio.Client, api: MockApi, backoffs: list[int]
    ) -> None:
        """A GET that cannot connect is retried max_retries times, then raises ServerUnreachableError."""
        api.add("GET", "/projects", body=requests.ConnectionError("refused: Bearer tok-123"))

        with pytest.raises(pio.ServerUnreachableError) as info:
            client.get("/projects")
        assert len(api.requests) == 1 + client.max_retries
        assert backoffs == [1, 2, 3]
        assert BASE_URL in str(info.value)
        assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)
        assert info.value.__cause__ is None and info.value.__suppress_context__
        assert isinstance(info.value, ConnectionError)

    def test_recovers_from_a_connection_error(
        self, client: pio.Client, api: MockApi, backoffs: list[int]
    ) -> None:
        """A GET whose first attempt times out succeeds on the retry."""
        api.add("GET", "/projects/p1", body=requests.Timeout("slow"))
        api.add("GET", "/projects/p1", json=project_payload())

        assert client.get("/projects/p1")["id"] == "p1"
        assert backoffs == [1]

    def test_does_not_retry_a_post_without_idempotency_key_that_cannot_connect(
        self, client: pio.Client, api: MockApi, backoffs: list[int]
    ) -> None:
        """A POST without idempotency key that cannot connect raises at once (it may have arrived)."""
        api.add("POST", "/projects", body=requests.ConnectionError("reset"))

        with pytest.raises(pio.ServerUnreachableError):
            client.request("POST", "/projects", json={"name": "x"})
        assert len(api.requests) == 1
        assert backoffs == []

    def test_backoff_is_capped_and_jittered(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The backoff sleeps between half and all of min(2 s, 0.1 s * 2**attempt)."""
        slept: list[float] = []
        monkeypatch.setattr("previsio_sdk.client.time.sleep", slept.append)

        for attempt in (1, 2, 3, 10):
            pio.Client._backoff(attempt)
        caps = [0.2, 0.4, 0.8, 2.0]
        assert all(cap / 2 <= s <= cap for s, cap in zip(slept, caps, strict=True))


class TestIterPages:
    def test_follows_pages_until_total_is_reached(self, client: pio.Client, api: MockApi) -> None:
        """Pages 1, 2, 3 are fetched with the page size and extra parameters, and every item is yielded."""
        api.add("GET", "/items", json=page_payload([1, 2], total=5, page=1, page_size=2))
        api.add("GET", "/items", json=page_payload([3, 4], total=5, page=2, page_size=2))
        api.add("GET", "/items", json=page_payload([5], total=5, page=3, page_size=2))

        assert list(client.iter_pages("/items", page_size=2, kind="x")) == [1, 2, 3, 4, 5]
        for number, sent in enumerate(api.requests, start=1):
            assert_request(sent, "GET", "/items", query={"page": str(number), "page_size": "2", "kind": "x"})

    def test_stops_on_an_empty_page(self, client: pio.Client, api: MockApi) -> None:
        """A page with no items ends the list even when ``total`` promised more (no endless loop)."""
        api.add("GET", "/items", json=page_payload([1], total=10, page_size=1))
        api.add("GET", "/items", json=page_payload([], total=10, page=2, page_size=1))

        assert list(client.iter_pages("/items", page_size=1)) == [1]
        assert len(api.requests) == 2

    def test_makes_one_request_for_an_empty_list(self, client: pio.Client, api: MockApi) -> None:
        """An empty list costs one request and yields nothing."""
        api.add("GET", "/items", json=page_payload([]))

        assert list(client.iter_pages("/items")) == []
        assert_request(api.requests[0], "GET", "/items", query={"page": "1", "page_size": "500"})


class FakeBar:
    """Stands for tqdm: records what the client shows."""

    instances: list[FakeBar] = []

    def __init__(self, **kwargs: object) -> None:
        self.kwargs = kwargs
        self.total = kwargs.get("total")
        self.n = 0
        self.closed = False
        FakeBar.instances.append(self)

    def refresh(self) -> None:
        pass

    def update(self, k: int) -> None:
        self.n += k

    def close(self) -> None:
        self.closed = True


class TestWaitJob:
    @pytest.fixture(autouse=True)
    def _fast(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr("previsio_sdk.client.time.sleep", lambda s: None)
        FakeBar.instances = []
        monkeypatch.setattr("tqdm.tqdm", FakeBar)

    def test_polls_until_the_job_succeeds(self, client: pio.Client, api: MockApi) -> None:
        """The job is fetched until its status is ``succeeded``, and its last description is returned."""
        api.add("GET", "/jobs/j1", json=job_payload(status="pending"))
        api.add("GET", "/jobs/j1", json=job_payload(status="running", progress_rows=10))
        api.add("GET", "/jobs/j1", json=job_payload(status="succeeded", progress_rows=25))

        job = client.wait_job("j1", progress=False)
        assert job["status"] == "succeeded"
        assert len(api.requests) == 3
        for sent in api.requests:
            assert_request(sent, "GET", "/jobs/j1")
        assert FakeBar.instances == []

    def test_raises_job_failed_with_the_platform_reason(self, client: pio.Client, api: MockApi) -> None:
        """A failed job raises JobFailedError carrying its error_code, error_message and id."""
        api.add(
            "GET",
            "/jobs/j1",
            json=job_payload(
                status="failed", error_code="source_not_found", error_message="Table 'orders' does not exist."
            ),
        )

        with pytest.raises(pio.JobFailedError) as info:
            client.wait_job("j1", progress=False)
        assert info.value.code == "source_not_found"
        assert info.value.message == "Table 'orders' does not exist."
        assert info.value.job_id == "j1"
        assert "source_not_found" in str(info.value)

    def test_a_failed_job_without_a_reason_still_says_it_failed(
        self, client: pio.Client, api: MockApi
    ) -> None:
        """A failed job with no message raises JobFailedError with a generic message."""
        api.add("GET", "/jobs/j1", json=job_payload(status="failed"))

        with pytest.raises(pio.JobFailedError, match="failed"):
            client.wait_job("j1", progress=False)

    def test_raises_job_timeout_when_the_timeout_passes(self, client: pio.Client, api: MockApi) -> None:
        """A job still running when the timeout passes raises JobTimeoutError naming the job."""
        api.add("GET", "/jobs/j1", json=job_payload(status="running"))

        with pytest.raises(pio.JobTimeoutError) as info:
            client.wait_job("j1", timeout=0.0, progress=False)
        assert info.value.job_id == "j1"
        assert "running" in str(info.value)
        assert isinstance(info.value, TimeoutError)

    def test_escapes_the_job_id(self, client: pio.Client, api: MockApi) -> None:
        """The job id is escaped into the path."""
        api.add("GET", "/jobs/a%2Fb", json=job_payload(id="a/b", status="succeeded"))

        client.wait_job("a/b", progress=False)
        assert api.requests[0].path_url == "/api/v1/jobs/a%2Fb"

    def test_progress_shows_rows_written_and_closes_the_bar(self, client: pio.Client, api: MockApi) -> None:
        """With progress=True a bar labelled with the description follows progress_rows, then closes."""
        api.add("GET", "/jobs/j1", json=job_payload(status="running", progress_rows=10))
        api.add("GET", "/jobs/j1", json=job_payload(status="succeeded", progress_rows=25))

        client.wait_job("j1", progress=True, description="snapshot")
        (bar,) = FakeBar.instances
        assert bar.n == 25
        assert bar.closed
        assert bar.kwargs["desc"] == "snapshot"

    def test_closes_the_bar_when_the_job_fails(self, client: pio.Client, api: MockApi) -> None:
        """The progress bar is closed even when waiting ends in an error."""
        api.add("GET", "/jobs/j1", json=job_payload(status="failed", error_code="boom"))

        with pytest.raises(pio.JobFailedError):
            client.wait_job("j1", progress=True)
        assert FakeBar.instances[0].closed

    def test_progress_none_shows_no_bar_outside_a_terminal(
        self, client: pio.Client, api: MockApi, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """With progress=None and stderr not a terminal (nor a notebook), no bar is shown."""
        api.add("GET", "/jobs/j1", json=job_payload(status="succeeded"))

        client.wait_job("j1")
        assert FakeBar.instances == []
        assert capsys.readouterr().err == ""


class TestDownload:
    def test_streams_the_body_to_a_path(self, client: pio.Client, api: MockApi, tmp_path: Path) -> None:
        """The body is written to the path (no ``.part`` file left) and the byte count returned."""
        api.add("GET", "/datasets/d1/download", body=b"PAR1" + b"x" * 1000)

        target = tmp_path / "out.parquet"
        assert client.download("/datasets/d1/download", target) == 1004
        assert target.read_bytes() == b"PAR1" + b"x" * 1000
        assert list(tmp_path.iterdir()) == [target]
        assert api.requests[0].headers["Accept"] == "*/*"

    def test_streams_the_body_to_a_file_object(self, client: pio.Client, api: MockApi) -> None:
        """A binary file object receives the body."""
        api.add("GET", "/datasets/d1/download", body=b"abc")

        buf = io.BytesIO()
        assert client.download("/datasets/d1/download", buf) == 3
        assert buf.getvalue() == b"abc"

    def test_an_error_answer_writes_nothing(self, client: pio.Client, api: MockApi, tmp_path: Path) -> None:
        """A 404 raises NotFoundError and leaves no file behind."""
        api.add(
            "GET",
            "/datasets/d1/download",
            status=404,
            json={"error": {"code": "not_found", "message": "No dataset with id 'd1'."}},
        )

        with pytest.raises(pio.NotFoundError):
            client.download("/datasets/d1/download", tmp_path / "out.parquet")
        assert list(tmp_path.iterdir()) == []

    def test_an_interrupted_transfer_leaves_no_file(
        self, client: pio.Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """A transfer cut in the middle raises ServerUnreachableError and leaves no target nor .part file."""

        class BrokenBody(io.BytesIO):
            def read(self, size: int | None = -1) -> bytes:
                if self.tell():
                    raise requests.exceptions.ChunkedEncodingError("connection reset")
                return super().read(4)

        def fake_request(method: str, url: str, **kwargs: object) -> requests.Response:
            resp = requests.Response()
            resp.status_code = 200
            resp.raw = BrokenBody(b"PAR1" + b"x" * 100)
            return resp

        monkeypatch.setattr(client.session, "request", fake_request)
        with pytest.raises(pio.ServerUnreachableError, match="cut off"):
            client.download("/datasets/d1/download", tmp_path / "out.parquet")
        assert list(tmp_path.iterdir()) == []


class TestRepr:
    def test_repr_shows_the_url_and_never_the_token(self, client: pio.Client) -> None:
        """repr and str of a client name its URL and hold no token."""
        assert repr(client) == f"Client(url={BASE_URL!r})"
        assert TOKEN not in repr(client) and TOKEN not in str(client)

    def test_the_token_is_not_put_on_the_shared_session(self, client: pio.Client) -> None:
        """The token is added per request, so a caller's session never stores it."""
        assert TOKEN not in repr(dict(client.session.headers))


class TestTokenScope:
    def test_a_token_given_to_init_client_is_not_sent_to_another_url(self) -> None:
        """Client(url=B) does not reuse the token that init_client gave for URL A."""
        pio.init_client("http://a.test", "token-for-a")
        other = pio.Client(url="http://b.test")
        assert other._token is None
        same = pio.Client(url="http://a.test/")
        assert same._token == "token-for-a"

    def test_previsio_token_is_not_sent_to_a_url_other_than_previsio_url(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """PREVISIO_TOKEN belongs to PREVISIO_URL: another explicit URL gets no token from the environment."""
        monkeypatch.setenv("PREVISIO_URL", "http://env.test")
        monkeypatch.setenv("PREVISIO_TOKEN", "env-token")
        assert pio.Client(url="http://elsewhere.test")._token is None
        assert pio.Client()._token == "env-token"

    def test_credentials_in_the_url_are_not_shown(self) -> None:
        """A URL carrying user:password shows without them in repr."""
        client = pio.Client(url="http://user:pw-Secret-1@host.test", token="t")
        assert "pw-Secret-1" not in repr(client)
        assert "host.test" in repr(client)


class TestQueryParameterNamedPath:
    @responses.activate
    def test_a_query_parameter_may_be_called_path(self, client: pio.Client) -> None:
        """get() takes its path positionally, so a query parameter named ``path`` (file listings) passes."""
        responses.get(
            "http://previsio.test/api/v1/connectors/c1/files",
            json={"items": [], "total": 0, "page": 1, "page_size": 500},
        )
        assert list(client.iter_pages("/connectors/c1/files", path="2024/")) == []
        assert responses.calls[0].request.params["path"] == "2024/"
