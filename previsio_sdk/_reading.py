"""Reading a dataset's Parquet file: row filters as pandas takes them, and HTTP range reads of a remote file.

:meth:`Dataset.to_arrow <previsio_sdk.Dataset.to_arrow>` hands both to ``pyarrow.parquet``, which then reads
only the columns and row groups it needs: from the file in place, or through :class:`RangeReader` from a
remote platform.
"""

from __future__ import annotations

import decimal
import io
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    import pyarrow.compute as pc

    from ._progress import Progress
    from .client import Client
    from .datasets import Column

#: Row filters as ``pandas.read_parquet`` takes them: DNF tuples, a list of such lists (OR), or an expression.
Filters = Union[list[tuple[str, str, Any]], list[list[tuple[str, str, Any]]], "pc.Expression", None]


def fit_filters(filters: Filters, schema: list[Column]) -> Filters:
    """``filters`` where integers compared to decimal columns are ``Decimal`` (Arrow refuses int64 there).

    ``("amount", ">", 100)`` on a ``decimal128(10, 2)`` column would fail in pyarrow ("Precision is not great
    enough"); ``Decimal(100)`` compares as meant. Expressions are returned as they are.
    """
    if not isinstance(filters, list) or not filters:
        return filters
    decimals = {c.name for c in schema if c.type.startswith("decimal")}
    if not decimals:
        return filters

    def fit(value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return decimal.Decimal(value)
        if isinstance(value, (list, tuple, set)):
            return [fit(v) for v in value]
        return value

    def one(term: Any) -> Any:
        name, op, value = term
        return (name, op, fit(value)) if name in decimals else term

    if isinstance(filters[0], list):
        return [[one(t) for t in conjunction] for conjunction in filters]  # type: ignore[union-attr]
    return [one(t) for t in filters]


class RangeReader(io.RawIOBase):
    """A remote dataset file read with HTTP range requests: Parquet readers fetch only what they need.

    Each read is one ``Range`` GET through the client (its token, timeouts and retries); the bytes received
    advance a :class:`~previsio_sdk._progress.Progress`.
    """

    def __init__(self, client: Client, path: str, size: int, bar: Progress) -> None:
        super().__init__()
        self._client, self._path, self._size, self._bar = client, path, size, bar
        self._pos = 0

    @classmethod
    def open(cls, client: Client, path: str, size: int, bar: Progress) -> RangeReader:
        """A reader of the file at ``path`` of ``size`` bytes (unbuffered: pyarrow asks for exact ranges and
        coalesces close ones itself)."""
        return cls(client, path, size, bar)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self._size - self._pos)
        if want <= 0:
            return 0
        resp = self._client.request(
            "GET",
            self._path,
            headers={"Range": f"bytes={self._pos}-{self._pos + want - 1}", "Accept": "*/*"},
        )
        data = resp.content
        if resp.status_code != 206:  # a server that ignores ranges sent the whole file
            data = data[self._pos : self._pos + want]
        n = len(data)
        buffer[:n] = data
        self._pos += n
        self._bar.advance(n)
        return n
