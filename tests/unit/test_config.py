"""Where the URL and token come from: argument > init_client > environment (> local platform, never here)."""

from __future__ import annotations

from pathlib import Path

import pytest

import previsio_sdk as pio
from previsio_sdk import _default, config

from .payloads import API_URL, BASE_URL, TOKEN, MockApi, assert_request, project_payload


class TestInitClient:
    def test_sets_the_default_client_used_without_a_client(self, api: MockApi) -> None:
        """After init_client(url, token), Project.new with no client sends through that client."""
        api.add("POST", "/projects", json=project_payload(), status=201)

        default = pio.init_client(BASE_URL, TOKEN)
        project = pio.Project.new("churn")
        assert_request(api.requests[0], "POST", "/projects", body={"name": "churn", "description": None})
        assert project.client is default
        assert _default.get_client() is default

    def test_passes_client_options_through(self) -> None:
        """Keyword options of init_client reach the Client (timeout, max_retries)."""
        default = pio.init_client(BASE_URL, TOKEN, timeout=3.0, max_retries=0)
        assert (default.timeout, default.max_retries) == (3.0, 0)

    def test_an_explicit_client_wins_over_the_default(self, client: pio.Client, api: MockApi) -> None:
        """A client passed to a call is used even when a default client is set."""
        api.add("GET", "/projects/p1", json=project_payload())

        pio.init_client("http://other.test", "other-token")
        project = pio.Project.from_id("p1", client=client)
        assert project.client is client
        assert api.requests[0].url == f"{API_URL}/projects/p1"

    def test_reset_forgets_the_default_client(self) -> None:
        """reset() drops the default client and what init_client was given."""
        pio.init_client(BASE_URL, TOKEN)
        _default.reset()
        assert (_default.configured_url(), _default.configured_token(), _default._client) == (
            None,
            None,
            None,
        )


class TestPrecedence:
    def test_client_reads_url_and_token_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch, api: MockApi
    ) -> None:
        """Client() with PREVISIO_URL and PREVISIO_TOKEN set uses them."""
        monkeypatch.setenv("PREVISIO_URL", BASE_URL)
        monkeypatch.setenv("PREVISIO_TOKEN", TOKEN)
        api.add("GET", "/projects/p1", json=project_payload())

        client = pio.Client()
        assert (client.url, client.is_local) == (BASE_URL, False)
        client.get("/projects/p1")
        assert_request(api.requests[0], "GET", "/projects/p1")

    def test_init_client_wins_over_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A Client built with no argument after init_client takes init_client's URL and token."""
        monkeypatch.setenv("PREVISIO_URL", "http://env.test")
        monkeypatch.setenv("PREVISIO_TOKEN", "env-token")

        pio.init_client(BASE_URL, TOKEN)
        client = pio.Client()
        assert client.url == BASE_URL
        assert client._token == TOKEN

    def test_arguments_win_over_init_client_and_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """URL and token given to Client win over init_client and the environment."""
        monkeypatch.setenv("PREVISIO_URL", "http://env.test")
        monkeypatch.setenv("PREVISIO_TOKEN", "env-token")
        pio.init_client("http://init.test", "init-token")

        client = pio.Client(url=BASE_URL, token=TOKEN)
        assert (client.url, client._token) == (BASE_URL, TOKEN)

    def test_an_explicit_url_takes_the_token_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Client(url=...) with no token takes PREVISIO_TOKEN."""
        monkeypatch.setenv("PREVISIO_TOKEN", TOKEN)

        assert pio.Client(url=BASE_URL)._token == TOKEN

    @pytest.mark.parametrize("value", ["", None])
    def test_empty_variables_count_as_unset(self, monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
        """An empty PREVISIO_URL or PREVISIO_TOKEN is the same as no variable."""
        if value is not None:
            monkeypatch.setenv("PREVISIO_URL", value)
            monkeypatch.setenv("PREVISIO_TOKEN", value)
        assert config.env_url() is None
        assert config.env_token() is None

    def test_no_url_anywhere_starts_the_local_platform(self) -> None:
        """With no URL from any source, Client() turns to the embedded local platform."""
        with pytest.raises(AssertionError, match="local platform"):
            pio.Client()


class TestHomeDir:
    def test_argument_wins(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """home_dir(home) resolves the argument even when PREVISIO_HOME is set."""
        monkeypatch.setenv("PREVISIO_HOME", str(tmp_path / "env"))
        assert config.home_dir(tmp_path / "arg") == (tmp_path / "arg").resolve()

    def test_environment_then_default(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
        """Without an argument PREVISIO_HOME is used, and ~/.previsio without it."""
        monkeypatch.setenv("PREVISIO_HOME", str(tmp_path))
        assert config.home_dir() == tmp_path.resolve()
        monkeypatch.delenv("PREVISIO_HOME")
        assert config.home_dir() == Path.home() / ".previsio"
