"""Which SQL server answers at an address: PostgreSQL or MySQL/MariaDB, told by the first protocol bytes.

Prevision.io's ``create_sql_connector(name, host, port, username, password)`` names no database kind. On
5432 and 3306 the port tells; on any other port the platform asks the server itself, before any credential
is sent:

- a MySQL or MariaDB server speaks first: right after the TCP handshake it sends a greeting packet (a 3-byte
  length, sequence number 0, then protocol version 10), or an error packet (``0xff``) when it refuses the
  client's host;
- a PostgreSQL server waits for the client: sent an ``SSLRequest`` (length 8, code 80877103), it answers one
  byte, ``S`` or ``N`` (``E`` from servers too old to know the request).

Both exchanges happen within one short deadline; nothing else is sent, and the connection is closed.
"""

from __future__ import annotations

import socket
import struct
import time

from ..errors import Invalid

#: Seconds the whole detection may take.
DETECT_TIMEOUT = 3.0
#: Seconds to wait for a MySQL greeting before asking the PostgreSQL question.
GREETING_WAIT = 0.5
#: PostgreSQL's SSLRequest: message length 8, request code 1234 << 16 | 5679.
SSL_REQUEST = struct.pack("!II", 8, 80877103)
_MYSQL_PROTOCOL_VERSION = 10
_MYSQL_ERROR_PACKET = 0xFF


def _looks_like_mysql(first: bytes) -> bool:
    """Whether the first bytes a server sent are a MySQL/MariaDB greeting or error packet."""
    if len(first) < 5:
        return False
    length = int.from_bytes(first[:3], "little")
    kind = first[4]
    return 0 < length < 1 << 16 and first[3] == 0 and kind in (_MYSQL_PROTOCOL_VERSION, _MYSQL_ERROR_PACKET)


def _not_detected(host: str, port: int, why: str) -> Invalid:
    return Invalid(
        f"Cannot tell which database answers at {host}:{port} ({why}); pass driver='postgresql' or "
        "driver='mysql'.",
        {"field": "driver"},
    )


def detect_dialect(host: str, port: int, timeout: float = DETECT_TIMEOUT, name: str | None = None) -> str:
    """Ask the server at ``host:port`` which SQL protocol it speaks.

    Args:
        host: Host name or address.
        port: TCP port.
        timeout: Seconds the whole detection may take.
        name: The host's name as the user gave it, for messages (``host`` may be its checked address).

    Returns:
        ``"mysql"`` (MySQL or MariaDB) or ``"postgresql"``.

    Raises:
        Invalid: Nothing answers there, or it speaks neither protocol (the message asks for ``driver=``).
    """
    if not host:
        raise _not_detected(str(host), port, "no host")
    deadline = time.monotonic() + timeout

    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("detection deadline")
        return remaining

    try:
        with socket.create_connection((host, port), timeout=left()) as sock:
            sock.settimeout(min(GREETING_WAIT, left()))
            try:
                first = sock.recv(64)
            except TimeoutError:
                first = None  # silent: not MySQL
            if first is not None:
                if _looks_like_mysql(first):
                    return "mysql"
                raise _not_detected(name or host, port, "it speaks neither PostgreSQL nor MySQL")
            sock.settimeout(left())
            sock.sendall(SSL_REQUEST)
            answer = sock.recv(64)
            if _looks_like_mysql(answer):  # a slow greeting (the server resolving the client's name)
                return "mysql"
            if answer in (b"S", b"N") or answer.startswith(b"E"):
                return "postgresql"
            raise _not_detected(name or host, port, "it speaks neither PostgreSQL nor MySQL")
    except socket.gaierror:
        raise _not_detected(name or host, port, "unknown host") from None
    except ConnectionRefusedError:
        raise _not_detected(name or host, port, "connection refused") from None
    except TimeoutError:
        raise _not_detected(name or host, port, f"no answer within {timeout:g} s") from None
    except OSError as exc:
        raise _not_detected(name or host, port, exc.strerror or type(exc).__name__) from None
