"""Which network addresses connectors may reach: the platform's guard against server-side request forgery.

A connector names a host; the platform connects to it from inside the operator's network. Left alone, an
editor could point a connector at the platform's own API, the cloud metadata service (169.254.169.254) or a
database on the private network, and read it as a dataset. ``previsio serve`` therefore refuses, by default,
every address of the ranges in :data:`DENIED_NETWORKS` (loopback, private, link-local, shared, multicast,
reserved...), and the IPv6 forms that carry such an IPv4 address (IPv4-mapped, IPv4-compatible, 6to4, Teredo,
NAT64). The operator allows networks of their own with ``PREVISIO_ALLOWED_NETWORKS``; the embedded local
platform (one user, who is the operator) allows everything.

The check runs after DNS resolution, on every address a name resolves to (one denied address refuses the
name), and the drivers connect to the address that was checked rather than resolving the name again, so
that a name cannot resolve to a public address for the check and to a private one for the connection.
:func:`checked_addresses` is what drivers call; :func:`resolver` is replaced in tests
(:func:`use_resolver`) so that no test needs a real private address.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .drivers.base import ConnectionFailed, DriverError

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The setting an operator changes to let connectors reach a denied network (named in refusals).
ALLOWED_NETWORKS_SETTING = "PREVISIO_ALLOWED_NETWORKS"

#: Ranges a connector of ``previsio serve`` may not reach unless the operator allows them, with what they are.
DENIED_NETWORKS: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(cidr), why)
    for cidr, why in (
        ("0.0.0.0/8", "unspecified / this network"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared address space (CGNAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (cloud metadata)"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard"),
        ("2001:db8::/32", "documentation"),
        ("fc00::/7", "unique local (private)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    )
)

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT, IPv4-translated
_COMPATIBLE = ipaddress.ip_network("::/96")


class AddressNotAllowed(DriverError):
    """The connector's host is, or resolves to, an address in a network the platform does not reach."""

    code_name = "address_not_allowed"


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, in the forms a stack may route to it; None otherwise.

    IPv4-mapped (``::ffff:a.b.c.d``), IPv4-translated (``::ffff:0:a.b.c.d``), IPv4-compatible
    (``::a.b.c.d``), NAT64 (``64:ff9b::a.b.c.d``), 6to4 (``2002:AABB:CCDD::``) and Teredo (the client).
    """
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or address in _TRANSLATED or (address in _COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def denied_reason(address: IPAddress | str) -> str | None:
    """Why ``address`` is in a denied range (``"loopback"``, ``"private"``...), or None when it is not.

    A pure function of the address: no resolution, no policy.
    """
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    candidates: list[IPAddress] = [ip]
    inner = embedded_ipv4(ip)
    if inner is not None:
        candidates.append(inner)
    for candidate in candidates:
        for network, why in DENIED_NETWORKS:
            if candidate.version == network.version and candidate in network:
                return why
    return None


@dataclass(frozen=True)
class NetworkPolicy:
    """Which addresses connectors may reach.

    Attributes:
        deny_private: Refuse the ranges of :data:`DENIED_NETWORKS`.
        allowed: Networks allowed even so (the operator's ``allowed_networks``).
        allowed_only: Refuse every address outside ``allowed``, public ones included (an egress allow-list).
    """

    deny_private: bool = True
    allowed: tuple[IPNetwork, ...] = ()
    allowed_only: bool = False

    @classmethod
    def from_settings(cls, settings: Any) -> NetworkPolicy:
        """The policy of the platform's settings; a driver built without settings (a script) has none."""
        allowed = tuple(parse_networks(getattr(settings, "allowed_networks", None) or ()))
        if getattr(settings, "allowed_networks_only", False):
            return cls(True, allowed, allowed_only=True)
        if settings is None or not getattr(settings, "deny_private_networks", False):
            return cls(deny_private=False)
        return cls(True, allowed)

    def refusal(self, address: IPAddress | str) -> str | None:
        """Why this policy refuses ``address``, or None when it allows it."""
        if not self.deny_private:
            return None
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        why = denied_reason(ip)
        if why is None and self.allowed_only:
            why = "outside the networks the operator allows"
        if why is None:
            return None
        inner = embedded_ipv4(ip)
        for network in self.allowed:
            for candidate in (ip, inner):
                if candidate is not None and candidate.version == network.version and candidate in network:
                    return None
        return why


def parse_networks(values: Iterable[str]) -> list[IPNetwork]:
    """Parse CIDR networks (``10.1.0.0/16``, ``fd00::/8``; a bare address is a /32 or /128).

    Raises:
        ValueError: A value is not a network (the message names it: no secret is configured here).
    """
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(str(value).strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not a network such as 10.1.0.0/16") from None
    return out


# -- resolution ----------------------------------------------------------------------------------------------
#: ``(host, port) -> [(family, address), ...]``: how names become addresses (``socket.getaddrinfo``).
Resolver = Callable[[str, int], Sequence[tuple[int, str]]]


def system_resolver(host: str, port: int) -> list[tuple[int, str]]:
    """Resolve with the system's resolver: every TCP address of ``host``, in its order, without repeats.

    Raises:
        socket.gaierror: The name does not resolve.
    """
    seen: list[tuple[int, str]] = []
    for family, _type, _proto, _canon, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        entry = (int(family), str(sockaddr[0]).split("%", 1)[0])
        if entry not in seen:
            seen.append(entry)
    return seen


_resolver: Resolver = system_resolver
_resolver_lock = threading.Lock()


def resolver() -> Resolver:
    """The resolver in use (the system's, unless a test replaced it)."""
    return _resolver


@contextmanager
def use_resolver(replacement: Resolver) -> Iterator[None]:
    """Resolve with ``replacement`` inside the block (tests: names that map to any address, no DNS)."""
    global _resolver
    with _resolver_lock:
        previous, _resolver = _resolver, replacement
    try:
        yield
    finally:
        with _resolver_lock:
            _resolver = previous


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def _refuse(host: str, address: str, why: str) -> AddressNotAllowed:
    # The operator's log gets the address; the caller's message does not (no mapping of the internal network).
    log.warning("refused a connection to %s (%s): %s network", host, address, why)
    return AddressNotAllowed(
        f"The host {host!r} is, or resolves to, a {why} address, which connectors of this platform may not "
        f"reach. An operator can allow its network with the {ALLOWED_NETWORKS_SETTING} setting.",
        {"field": "host", "setting": ALLOWED_NETWORKS_SETTING},
    )


def check_address(host: str, address: str, policy: NetworkPolicy) -> None:
    """Refuse ``address`` (one address ``host`` resolved to) when ``policy`` denies it.

    Raises:
        AddressNotAllowed: The address is in a denied network.
    """
    why = policy.refusal(address.split("%", 1)[0])
    if why is not None:
        raise _refuse(host, address, why)


def resolve_checked(host: str, port: int, policy: NetworkPolicy) -> list[tuple[int, str]]:
    """Resolve ``host`` and check every address it resolves to; return ``(family, address)`` pairs.

    A literal address is checked as it is. One denied address refuses the host, whichever the connection
    would use.

    Raises:
        AddressNotAllowed: An address is in a denied network.
        ConnectionFailed: The name does not resolve.
    """
    literal = _literal(host)
    if literal is not None:
        pairs = [(int(socket.AF_INET if literal.version == 4 else socket.AF_INET6), str(literal))]
    else:
        try:
            pairs = list(_resolver(host, port))
        except (OSError, UnicodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise ConnectionFailed(f"Unknown host {host!r} ({reason}).") from None
        if not pairs:
            raise ConnectionFailed(f"Unknown host {host!r} (no address).")
    for _family, address in pairs:
        check_address(host, address, policy)
    return pairs


def checked_addresses(host: str, port: int, settings: Any) -> list[str]:
    """The addresses of ``host`` that a connection may use, checked against the platform's policy.

    Connect to one of these rather than to ``host``: the name is then not resolved a second time.

    Args:
        host: A name or a literal address (IPv6 with or without brackets).
        port: The port to connect to (a resolver may use it).
        settings: The platform's settings (``deny_private_networks``, ``allowed_networks``); None applies
            no policy (a driver used outside a platform), but still resolves.

    Returns:
        The addresses, in the resolver's order.

    Raises:
        AddressNotAllowed: ``host`` is or resolves to a denied address (HTTP 422).
        ConnectionFailed: The name does not resolve.
    """
    policy = NetworkPolicy.from_settings(settings)
    return [address for _family, address in resolve_checked(host, port, policy)]


def connect_address(host: str, port: int, settings: Any) -> str:
    """The one address to connect to for ``host``: the first of :func:`checked_addresses`."""
    return checked_addresses(host, port, settings)[0]


def check_host_early(host: str | None, port: int | None, settings: Any) -> None:
    """The check at a connector's creation or update: a denied literal address, or a name resolving to one.

    A name that does not resolve (yet) is accepted here: the check when connecting is the one that counts.

    Raises:
        AddressNotAllowed: ``host`` is or resolves to a denied address.
    """
    if not host:
        return
    try:
        checked_addresses(host, port or 0, settings)
    except ConnectionFailed:
        pass


# -- aiohttp (HTTP connectors, S3 endpoints) ----------------------------------------------------------------
def aiohttp_connector_args(settings: Any) -> dict[str, Any]:
    """``resolver`` and ``socket_factory`` arguments of an aiohttp ``TCPConnector`` that apply the policy.

    The resolver checks every address of a name before aiohttp connects (each redirect target too, since
    every connection goes through it); the socket factory checks the address of each socket aiohttp opens,
    which also covers literal addresses (aiohttp does not resolve those).
    """
    policy = NetworkPolicy.from_settings(settings)
    return {"resolver": GuardedResolver(policy), "socket_factory": _socket_factory(policy)}


def _socket_factory(policy: NetworkPolicy) -> Callable[[Any], socket.socket]:
    def factory(addr_info: Any) -> socket.socket:
        family, type_, proto, _canon, sockaddr = addr_info
        check_address(str(sockaddr[0]), str(sockaddr[0]), policy)
        return socket.socket(family=family, type=type_, proto=proto)

    return factory


def _guarded_resolver_class() -> type:
    from aiohttp.abc import AbstractResolver

    class _GuardedResolver(AbstractResolver):
        """aiohttp resolver that resolves through :func:`resolve_checked` (in a thread) with a policy."""

        def __init__(self, policy: NetworkPolicy) -> None:
            self.policy = policy

        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[dict[str, Any]]:
            import asyncio

            pairs = await asyncio.get_running_loop().run_in_executor(
                None, resolve_checked, host, port, self.policy
            )
            wanted = [p for p in pairs if family in (socket.AF_UNSPEC, 0) or p[0] == family] or pairs
            return [
                {
                    "hostname": host,
                    "host": address,
                    "port": port,
                    "family": fam,
                    "proto": 0,
                    "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                }
                for fam, address in wanted
            ]

        async def close(self) -> None:
            return None

    return _GuardedResolver


def GuardedResolver(policy: NetworkPolicy) -> Any:  # noqa: N802 - stands for the class, imported lazily
    """An aiohttp resolver checking every resolved address against ``policy``."""
    return _guarded_resolver_class()(policy)
