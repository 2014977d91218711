"""The platform's network guard and the redaction of secrets, decided without any network traffic.

Addresses outside 127.0.0.0/8 are never contacted: the decisions are pure functions of an address, names
resolve through a stub resolver, and every way of opening a socket fails the test if it is reached.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from previsio_sdk.server import netguard
from previsio_sdk.server.drivers import ConnectorConfig, driver_class
from previsio_sdk.server.drivers.base import redact
from previsio_sdk.server.logs import redact_text, remember_secrets
from previsio_sdk.server.netguard import (
    AddressNotAllowed,
    NetworkPolicy,
    checked_addresses,
    denied_reason,
    use_resolver,
)
from previsio_sdk.server.serve import local_overrides
from previsio_sdk.server.settings import SettingsError, load_settings, redact_configuration

DENY = SimpleNamespace(deny_private_networks=True, allowed_networks=[], tmp_dir=None, query_timeout_seconds=0)


# -- decisions on addresses ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("10.0.0.5", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local (cloud metadata)"),
        ("100.64.0.1", "shared address space (CGNAT)"),
        ("0.0.0.0", "unspecified / this network"),
        ("0.1.2.3", "unspecified / this network"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.10", "documentation"),
        ("198.18.0.1", "benchmarking"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fd00::1", "unique local (private)"),
        ("fc00::1", "unique local (private)"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "link-local (cloud metadata)"),
        ("::127.0.0.1", "loopback"),  # IPv4-compatible
        ("::ffff:0:a9fe:a9fe", "link-local (cloud metadata)"),  # IPv4-translated (SIIT)
        ("::10.0.0.5", "private"),
        ("64:ff9b::a00:5", "private"),  # NAT64 of 10.0.0.5
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        ("2002:a9fe:a9fe::1", "link-local (cloud metadata)"),  # 6to4 of 169.254.169.254
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),  # Teredo, client 127.0.0.1 (bits inverted)
        ("2001:db8::1", "documentation"),
    ],
)
def test_denied_ranges(address: str, why: str) -> None:
    """Each address of a denied range, in any IPv6 form that carries a denied IPv4 address, is refused."""
    assert denied_reason(address) == why
    assert NetworkPolicy(deny_private=True).refusal(address) == why


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "169.255.0.1", "2606:4700::1111", "::ffff:8.8.8.8"],
)
def test_public_addresses_are_allowed(address: str) -> None:
    """Addresses just outside the denied ranges, and public ones in their IPv6 forms, are allowed."""
    assert denied_reason(address) is None
    assert NetworkPolicy(deny_private=True).refusal(address) is None


def test_the_operator_allows_listed_networks_only() -> None:
    """allowed_networks lets its networks through, in their mapped forms too; the rest stays denied."""
    settings = SimpleNamespace(deny_private_networks=True, allowed_networks=["10.1.0.0/16", "127.0.0.1"])
    policy = NetworkPolicy.from_settings(settings)
    assert policy.refusal("10.1.2.3") is None
    assert policy.refusal("::ffff:10.1.2.3") is None
    assert policy.refusal("127.0.0.1") is None
    assert policy.refusal("127.0.0.2") == "loopback"
    assert policy.refusal("10.2.0.1") == "private"
    assert policy.refusal("169.254.169.254") == "link-local (cloud metadata)"


def test_no_denial_outside_the_platform_and_on_the_embedded_platform() -> None:
    """Without the setting (a driver used by a script) nothing is denied; the local platform turns it off."""
    assert NetworkPolicy.from_settings(None).refusal("10.0.0.5") is None
    off = SimpleNamespace(deny_private_networks=False, allowed_networks=[])
    assert NetworkPolicy.from_settings(off).refusal("169.254.169.254") is None
    assert local_overrides({})["deny_private_networks"] is False
    assert "deny_private_networks" not in local_overrides({"PREVISIO_DENY_PRIVATE_NETWORKS": "true"})


def test_settings_default_to_denial_and_parse_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    """previsio serve denies by default; PREVISIO_ALLOWED_NETWORKS is a JSON list of CIDRs, checked."""
    monkeypatch.delenv("PREVISIO_DENY_PRIVATE_NETWORKS", raising=False)
    monkeypatch.setenv("PREVISIO_ALLOWED_NETWORKS", '["10.1.0.0/16", "fd00:1::/64", "192.168.1.7"]')
    settings = load_settings()
    assert settings.deny_private_networks is True
    assert settings.allowed_networks == ["10.1.0.0/16", "fd00:1::/64", "192.168.1.7/32"]
    monkeypatch.setenv("PREVISIO_ALLOWED_NETWORKS", '["not a network"]')
    with pytest.raises(SettingsError, match="PREVISIO_ALLOWED_NETWORKS"):
        load_settings()


# -- resolution, before any connection -----------------------------------------------------------------------
@pytest.fixture
def no_connection(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Fail the test if anything opens a connection (sockets, asyncio), whatever the address."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise AssertionError(f"a connection was attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(asyncio.BaseEventLoop, "sock_connect", refuse)
    monkeypatch.setattr(asyncio.BaseEventLoop, "create_connection", refuse)
    yield attempts
    assert not attempts


EVIL = ["10.0.0.5", "169.254.169.254", "::ffff:127.0.0.1", "100.64.1.1", "fd00::5", "0.0.0.0", "::1"]


def stub(address: str, *more: str) -> netguard.Resolver:
    """A resolver answering ``address`` (and ``more``) for evil.test, and no other name."""

    def resolve(host: str, port: int) -> list[tuple[int, str]]:
        if host != "evil.test":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, a) for a in (address, *more)]

    return resolve


@pytest.mark.parametrize("address", EVIL)
def test_a_name_resolving_to_a_denied_address_is_refused(address: str, no_connection: list[Any]) -> None:
    """The check runs on the resolved address: a harmless-looking name is refused for where it points."""
    with use_resolver(stub(address)), pytest.raises(AddressNotAllowed) as info:
        checked_addresses("evil.test", 80, DENY)
    assert info.value.status == 422
    assert info.value.code == "address_not_allowed"
    assert "evil.test" in info.value.message and "PREVISIO_ALLOWED_NETWORKS" in info.value.message
    assert address not in info.value.message  # the internal network is not mapped for the caller


def test_one_denied_address_refuses_the_name(no_connection: list[Any]) -> None:
    """A name with a public and a private address is refused: the connection could use either."""
    with use_resolver(stub("8.8.8.8", "10.0.0.5")), pytest.raises(AddressNotAllowed):
        checked_addresses("evil.test", 80, DENY)
    with use_resolver(stub("8.8.8.8", "2606:4700::1111")):
        assert checked_addresses("evil.test", 80, DENY) == ["8.8.8.8", "2606:4700::1111"]


@pytest.mark.parametrize("literal", ["127.0.0.1", "[::1]", "::ffff:7f00:1", "169.254.169.254"])
def test_literal_addresses_are_checked_without_resolution(literal: str, no_connection: list[Any]) -> None:
    """A literal address is checked as it is; the resolver is not asked."""

    def fail(host: str, port: int) -> list[tuple[int, str]]:
        raise AssertionError("the resolver was asked about a literal address")

    with use_resolver(fail), pytest.raises(AddressNotAllowed):
        checked_addresses(literal, 80, DENY)


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "127.1", "0177.0.0.1", "localhost"])
def test_other_spellings_of_loopback_are_refused(host: str, no_connection: list[Any]) -> None:
    """Decimal, hex, short and octal spellings of 127.0.0.1 are judged by what the system resolves them to."""
    with pytest.raises(AddressNotAllowed):
        checked_addresses(host, 80, DENY)


def _driver(kind: str, host: str, **extra: Any) -> Any:
    cls = driver_class(kind)
    return cls(cls.normalize_config(ConnectorConfig(type=kind, host=host, **extra)), settings=DENY)


DRIVERS = {
    "http": lambda: _driver("http", "http://evil.test/data", username="u", secrets={"password": "pw-secret"}),
    "https": lambda: _driver("http", "https://evil.test", secrets={"token": "tok-secret"}),
    "s3": lambda: _driver("s3", "http://evil.test:9000", username="AK", secrets={"password": "sk-secret"}),
    "ftp": lambda: _driver("ftp", "evil.test", username="u", secrets={"password": "pw-secret"}),
    "sftp": lambda: _driver("sftp", "evil.test", username="u", secrets={"password": "pw-secret"}),
    "postgresql": lambda: _driver(
        "sql", "evil.test", driver="postgresql", username="u", secrets={"password": "pw-secret"}
    ),
    "mysql": lambda: _driver(
        "sql", "evil.test", driver="mysql", username="u", secrets={"password": "pw-secret"}
    ),
}


@pytest.mark.parametrize("kind", sorted(DRIVERS))
@pytest.mark.parametrize("address", ["10.0.0.5", "169.254.169.254", "::ffff:127.0.0.1"])
def test_every_driver_refuses_before_connecting(
    kind: str, address: str, no_connection: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each connector type asks the guard first: test() reports address_not_allowed, no socket connects.

    libpq and ConnectorX connect in C, where the socket patch cannot see: the engine must not even be made.
    """
    import sqlalchemy as sa

    def no_engine(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an engine was made for a refused host")

    monkeypatch.setattr(sa, "create_engine", no_engine)
    driver = DRIVERS[kind]()
    with use_resolver(stub(address)):
        outcome = driver.test()
    assert (outcome.ok, outcome.code) == (False, "address_not_allowed"), outcome.message


@pytest.mark.parametrize("kind", sorted(DRIVERS))
def test_creation_refuses_a_denied_host_early(kind: str, no_connection: list[Any]) -> None:
    """check_network(), run when a connector is created or updated, refuses the same hosts (no connection)."""
    with use_resolver(stub("10.0.0.5")), pytest.raises(AddressNotAllowed):
        DRIVERS[kind]().check_network()


def test_an_unknown_name_passes_the_early_check(no_connection: list[Any]) -> None:
    """A name that does not resolve yet is accepted at creation: the check when connecting decides."""
    driver = _driver("ftp", "not-yet.test", username="u", secrets={"password": "pw-secret"})
    with use_resolver(stub("10.0.0.5")):
        driver.check_network()
        outcome = driver.test()
    assert (outcome.ok, outcome.code) == (False, "connection_failed")
    assert "not-yet.test" in outcome.message


# -- secrets in messages -------------------------------------------------------------------------------------
SECRET = "p@ss w+rd/é'\"x"
USER = "bob"


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        quote(SECRET, safe=""),
        quote(SECRET),
        quote_plus(SECRET),
        quote(SECRET, safe="").lower(),
        quote_plus(SECRET).lower(),
        json.dumps(SECRET)[1:-1],
        json.dumps(SECRET, ensure_ascii=False)[1:-1],
        SECRET.replace("\\", "\\\\").replace("'", "\\'"),
        base64.b64encode(f"{USER}:{SECRET}".encode()).decode(),
        base64.b64encode(SECRET.encode()).decode(),
    ],
)
def test_redaction_covers_every_encoded_form(form: str) -> None:
    """A secret echoed raw, percent-encoded (any case, + or %20), JSON-escaped, conninfo-quoted or in base64
    (an HTTP basic header) is masked, by the drivers' redaction and in log lines alike."""
    message = f"failed: Authorization: Basic {form} password='{form}' at db"
    masked = redact(message, {"password": SECRET}, USER)
    assert form not in masked and "***" in masked
    remember_secrets([SECRET])
    assert form not in redact_text(message)


def test_configuration_errors_hide_url_passwords_and_secret_settings() -> None:
    """Start-up messages lose the password of any URL and the value of secret settings, in every form."""
    env = {
        "PREVISIO_DATABASE_URL": "postgresql://u:s3cret+pw@db/x",
        "PREVISIO_BOOTSTRAP_TOKEN": "pvo_bootstrap1",
    }
    text = (
        "could not connect to postgresql://u:s3cret+pw@db/x (password s3cret%2Bpw); "
        "token pvo_bootstrap1; redis://:other-secret@cache:6379/0"
    )
    masked = redact_configuration(text, environ=env)
    for secret in ("s3cret+pw", "s3cret%2Bpw", "pvo_bootstrap1", "other-secret"):
        assert secret not in masked
    assert "postgresql://u:***@db/x" in masked


@pytest.mark.parametrize(
    ("kind", "host"),
    [
        ("http", "ftp://u:s3cret-pw@files.test/x"),
        ("http", "http://u:s3cret-pw@files.test:99999"),
        ("s3", "ftp://AK:s3cret-pw@s3.test"),
        ("s3", "http://AK:s3cret-pw@s3.test:0x10"),
        ("ftp", "http://u:s3cret-pw@files.test"),
        ("sftp", "sftp://u:s3cret-pw@files.test:notaport"),
        ("sftp", "u:s3cret-pw@files.test/path"),
        ("sql", "u:s3cret-pw@db.test"),
    ],
)
def test_a_host_holding_credentials_is_refused_without_echoing_them(kind: str, host: str) -> None:
    """A host or URL with user:password@ is refused before any message quotes it (whatever else is wrong)."""
    from previsio_sdk.server.errors import Invalid

    cls = driver_class(kind)
    with pytest.raises(Invalid) as info:
        cls.normalize_config(
            ConnectorConfig(type=kind, host=host, driver="postgresql" if kind == "sql" else None)
        )
    assert "s3cret" not in info.value.message and "s3cret" not in json.dumps(info.value.details)
    assert info.value.details == {"field": "host"}


def test_sql_protocol_detection_asks_the_guard_first(no_connection: list[Any]) -> None:
    """An SQL connector on an unusual port without driver= is detected by a handshake at the address the
    guard checked: a name pointing at a denied range is refused before any connection."""
    driver = _driver("sql", "evil.test", port=15432, username="u", secrets={"password": "pw-secret"})
    assert driver.config.driver is None  # left for settle_config: normalize_config makes no remote call
    with use_resolver(stub("10.0.0.5")), pytest.raises(AddressNotAllowed):
        driver.settle_config()
