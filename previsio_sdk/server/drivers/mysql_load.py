"""``LOAD DATA LOCAL INFILE`` that can only send the rows being exported, never a file the server names.

In the MySQL protocol the *server* names the file a client sends: it answers a statement with a request
(``0xFB`` and a file name), and pymysql opens and sends whatever file that is. A rogue server (or a proxy in
front of a real one) can answer any statement, a ``SELECT`` or ``SHOW WARNINGS`` included, with a request for
the platform's key file or metadata database.

:class:`GuardedConnection` answers such a request only while :meth:`GuardedConnection.load_data_local` runs
one ``LOAD DATA LOCAL INFILE`` of ours, and only once: it sends the bytes of the chunk being exported, from
memory, whatever file name the server asked for. Any other request is answered with no data (an empty
reply) and fails the statement with :class:`UnexpectedFileRequest`. No file of the platform's disk is read.
The SQL driver's reading connections are of this class too (without ``local_infile``): a request there is
refused the same way, as a typed error rather than pymysql's ``RuntimeError``.
"""

from __future__ import annotations

from typing import Any

import pymysql
from pymysql.connections import Connection, MySQLResult
from pymysql.constants import COMMAND

#: Bytes per protocol packet of LOCAL INFILE data (pymysql's own file sender uses 16 KiB).
PACKET_BYTES = 1 << 16


class UnexpectedFileRequest(pymysql.err.OperationalError):
    """The server asked for a file outside a ``LOAD DATA LOCAL`` of the export: refused, nothing sent."""

    def __str__(self) -> str:
        return str(self.args[1]) if len(self.args) > 1 else super().__str__()


class _GuardedResult(MySQLResult):
    """A query result whose LOCAL INFILE requests get the export's chunk, or nothing."""

    def _read_load_local_packet(self, first_packet: Any) -> None:
        conn = self.connection
        assert isinstance(conn, GuardedConnection)
        payload = conn._take_payload()
        try:
            if payload is not None:
                size = max(1024, min(conn.max_allowed_packet - 1024, PACKET_BYTES))
                view = memoryview(payload)
                for start in range(0, len(view), size):
                    conn.write_packet(view[start : start + size])
        finally:
            conn.write_packet(b"")  # the end of the data (all of it, or none for a refused request)
            reply = conn._read_packet()  # the server's error, if any, is raised here
        if payload is None:
            raise UnexpectedFileRequest(
                0,
                "The database server asked for a local file (LOAD DATA LOCAL) the platform did not offer; "
                "no file was sent and the operation was stopped.",
            )
        if not reply.is_ok_packet():
            raise pymysql.err.OperationalError(2014, "Commands out of sync after LOAD DATA LOCAL.")
        self._read_ok_packet(reply)


class GuardedConnection(Connection):
    """A pymysql connection whose LOCAL INFILE answers are the export's own bytes only (see the module)."""

    _payload: bytes | None = None

    def _take_payload(self) -> bytes | None:
        payload, self._payload = self._payload, None
        return payload

    def load_data_local(self, cursor: Any, statement: str, payload: bytes) -> int:
        """Run one ``LOAD DATA LOCAL INFILE`` statement, answering its file request with ``payload``.

        Args:
            cursor: A cursor of this connection.
            statement: The ``LOAD DATA LOCAL INFILE '<any name>' ...`` statement; the name is not read.
            payload: The exact bytes to load.

        Returns:
            The rows the server loaded.

        Raises:
            UnexpectedFileRequest: The server did not ask for the data (a rogue server may ask later).
        """
        self._payload = payload
        try:
            rows = cursor.execute(statement)
            if self._payload is not None:
                raise UnexpectedFileRequest(
                    0, "The database server did not ask for the rows of LOAD DATA LOCAL; the export stopped."
                )
            return int(rows or 0)
        finally:
            self._payload = None

    def _read_query_result(self, unbuffered: bool = False) -> int:
        self._result = None
        result = _GuardedResult(self)
        if unbuffered:
            result.init_unbuffered_query()
        else:
            result.read()
        self._result = result
        if result.server_status is not None:
            self.server_status = result.server_status
        return result.affected_rows  # type: ignore[no-any-return]

    def show_warnings(self) -> Any:
        """``SHOW WARNINGS``, whose answer may not ask for a file either."""
        self._execute_command(COMMAND.COM_QUERY, "SHOW WARNINGS")
        result = _GuardedResult(self)
        result.read()
        return result.rows
