"""Limits on what a hostile file may make the parsers do, checked on the bytes before libarrow sees them.

A file served by a remote system, or uploaded, is untrusted: a JSON value nested 100,000 deep overflows
the stack of the JSON parser (a segfault), a header line of 100,000 columns makes the CSV reader allocate
gigabytes, a gzip bomb decompresses without end. The job runs in a child process that the platform kills
past its memory limit (:mod:`..sandbox`), but the cheap checks here fail the job first, with a clear
``limit_exceeded`` that names the limit and its setting:

- :class:`JsonDepthGuard` scans JSON-lines bytes as they are read (vectorised with numpy: ~4 ms per MB);
- :func:`check_columns` counts the columns of a header line or a schema;
- :class:`InflateGuard` counts the bytes a decompressing stream gives against the bytes it consumed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import LimitExceeded

#: A compressed stream is held to the ratio limit only once it has given this many bytes (small files
#: of repeated values legitimately compress very well).
RATIO_GRACE_BYTES = 64 << 20
#: Bytes of JSON lines scanned at a time for their depth.
SCAN_CHUNK = 1 << 20


@dataclass(frozen=True)
class ReadLimits:
    """The limits of one read, from the platform's settings (see :class:`~..settings.Settings`)."""

    max_json_depth: int = 64
    max_columns: int = 10_000
    max_decompressed_bytes: int = 20 * 1024**3
    max_compression_ratio: int = 200

    @classmethod
    def from_settings(cls, settings: Any) -> ReadLimits:
        """The limits a platform's settings give (the defaults for None or missing settings)."""
        if settings is None:
            return cls()
        default = cls()
        return cls(
            max_json_depth=getattr(settings, "max_json_depth", default.max_json_depth),
            max_columns=getattr(settings, "max_columns", default.max_columns),
            max_decompressed_bytes=getattr(
                settings, "max_decompressed_bytes", default.max_decompressed_bytes
            ),
            max_compression_ratio=getattr(settings, "max_compression_ratio", default.max_compression_ratio),
        )


def check_columns(count: int, limits: ReadLimits, name: str) -> None:
    """Refuse a file or stream of more than ``limits.max_columns`` columns.

    Raises:
        LimitExceeded: Too many columns.
    """
    if limits.max_columns and count > limits.max_columns:
        raise LimitExceeded(
            f"{name!r} has {count} columns or more; the platform reads at most {limits.max_columns} "
            "(setting PREVISIO_MAX_COLUMNS).",
            {"limit": "max_columns", "max": limits.max_columns},
        )


# ------------------------------------------------------------------------------------------------------------
# JSON nesting depth
# ------------------------------------------------------------------------------------------------------------
#: Every byte but those the depth scan looks at: ``{}[]"`` and the newline.
_NOT_STRUCTURAL = bytes(c for c in range(256) if c not in b'{}[]"\n')
_OPEN_BRACE, _OPEN_BRACKET, _CLOSE_BRACE, _CLOSE_BRACKET, _QUOTE, _NEWLINE = b'{[}]"\n'


def _scan_line(v: np.ndarray, depth: int, in_string: int) -> tuple[int, int, int]:
    """Deepest nesting in a piece of one line's structural bytes ``v`` starting in state (depth, in_string);
    return (deepest, depth at the end, in_string at the end)."""
    if v.size == 0:
        return depth, depth, in_string
    inside = (np.cumsum(v == _QUOTE, dtype=np.int64) + in_string) & 1
    delta = (
        (v == _OPEN_BRACE).astype(np.int64)
        + (v == _OPEN_BRACKET)
        - (v == _CLOSE_BRACE)
        - (v == _CLOSE_BRACKET)
    )
    delta[inside == 1] = 0
    depths = np.cumsum(delta) + depth
    return max(depth, int(depths.max())), int(depths[-1]), int(inside[-1])


class JsonDepthScanner:
    """Deepest nesting of the JSON-lines text fed to it, chunk after chunk (state carried across chunks).

    Each line is one JSON value (a raw newline cannot be inside a JSON string): depth and string state
    start again at each line. Escapes are removed first (escaped backslashes, then escaped quotes), so that
    the quotes
    left toggle strings; brackets inside strings do not count. Only the structural bytes are looked at
    (``bytes.translate`` drops the others), and a line is scanned exactly only when its count of opening
    brackets - a bound on its depth - passes the limit: typical lines cost a few vectorised passes.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        #: State of the line the last chunk ended in: its depth and whether it ended inside a string.
        self.depth = 0
        self.in_string = 0
        self._escape = False

    def feed(self, data: bytes) -> int:
        """Scan the next chunk; return a depth over the limit when a value in it nests deeper (else at most
        the limit)."""
        if self._escape and data:
            data = data[1:]  # the escaped character, whatever it is
            self._escape = False
        if b"\\" in data:
            data = data.replace(b"\\\\", b"")
            if data.endswith(b"\\"):  # an escape cut by the chunk boundary
                self._escape = True
                data = data[:-1]
            data = data.replace(b'\\"', b"")
        structural = data.translate(None, _NOT_STRUCTURAL)
        if not structural:
            return 0
        # A bound on each line's depth: its opening brackets (plus, for the first, the depth carried in).
        opens_and_ends = np.frombuffer(structural.translate(None, b'}]"'), dtype=np.uint8)
        line_ends = np.flatnonzero(opens_and_ends == _NEWLINE)
        bound = np.diff(line_ends, prepend=-1) - 1
        bound = np.append(bound, opens_and_ends.size - 1 - (line_ends[-1] if line_ends.size else -1))
        bound[0] += self.depth
        v = np.frombuffer(structural, dtype=np.uint8)
        ends = np.flatnonzero(v == _NEWLINE)
        starts = np.concatenate(([0], ends + 1))
        stops = np.concatenate((ends, [v.size]))
        deepest = 0
        last = len(starts) - 1
        for i in np.flatnonzero(bound > self.limit):
            depth, in_string = (self.depth, self.in_string) if i == 0 else (0, 0)
            found, _, _ = _scan_line(v[starts[i] : stops[i]], depth, in_string)
            deepest = max(deepest, found)
            if deepest > self.limit:
                return deepest
        # The state of the line the chunk ends in, carried to the next chunk.
        depth, in_string = (self.depth, self.in_string) if last == 0 else (0, 0)
        _, self.depth, self.in_string = _scan_line(v[starts[last] : stops[last]], depth, in_string)
        return deepest


class JsonDepthGuard(io.RawIOBase):
    """A read-only stream passing JSON-lines bytes through, failing once they nest deeper than allowed.

    Raises (from ``read``):
        LimitExceeded: A value nests deeper than ``max_depth``.
    """

    def __init__(self, stream: Any, max_depth: int, name: str) -> None:
        super().__init__()
        self._stream = stream
        self._max_depth = max_depth
        self._name = name
        self._scanner = JsonDepthScanner(max_depth)

    def readable(self) -> bool:
        return True

    def _check(self, data: bytes) -> None:
        if self._max_depth and data and self._scanner.feed(data) > self._max_depth:
            raise LimitExceeded(
                f"{self._name!r} holds a JSON value nested deeper than {self._max_depth} levels "
                "(setting PREVISIO_MAX_JSON_DEPTH).",
                {"limit": "max_json_depth", "max": self._max_depth},
            )

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size if size is not None else -1)
        for at in range(0, len(data), SCAN_CHUNK):  # small pieces: the scan's arrays stay in the CPU cache
            self._check(data[at : at + SCAN_CHUNK])
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)


# ------------------------------------------------------------------------------------------------------------
# Decompressed size
# ------------------------------------------------------------------------------------------------------------
class CountingReader(io.RawIOBase):
    """A read-only stream counting the bytes read through it (the compressed side of a decompressor)."""

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self._stream = stream
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size if size is not None else -1)
        self.count += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)

    def seekable(self) -> bool:
        return False


class InflateGuard(io.RawIOBase):
    """The decompressed side of a stream, failing past the size limit or the compression ratio.

    Args:
        stream: The decompressing stream (a ``GzipFile``, a zip member).
        compressed: How many compressed bytes were consumed so far: a callable (a :class:`CountingReader`'s
            count), read at each check.
        limits: The read's limits.
        name: The file, for the message.

    Raises (from ``read``):
        LimitExceeded: Too many bytes, or too high a ratio.
    """

    def __init__(self, stream: Any, compressed: Any, limits: ReadLimits, name: str) -> None:
        super().__init__()
        self._stream = stream
        self._compressed = compressed
        self._limits = limits
        self._name = name
        self.count = 0

    def readable(self) -> bool:
        return True

    def _check(self) -> None:
        limits = self._limits
        if limits.max_decompressed_bytes and self.count > limits.max_decompressed_bytes:
            raise LimitExceeded(
                f"{self._name!r} decompresses to more than {limits.max_decompressed_bytes} bytes "
                "(setting PREVISIO_MAX_DECOMPRESSED_BYTES).",
                {"limit": "max_decompressed_bytes", "max": limits.max_decompressed_bytes},
            )
        if limits.max_compression_ratio and self.count > RATIO_GRACE_BYTES:
            consumed = max(1, int(self._compressed()))
            if self.count > consumed * limits.max_compression_ratio:
                raise LimitExceeded(
                    f"{self._name!r} expands more than {limits.max_compression_ratio} times when "
                    "decompressed (a compression bomb?; setting PREVISIO_MAX_COMPRESSION_RATIO).",
                    {"limit": "max_compression_ratio", "max": limits.max_compression_ratio},
                )

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:  # read all: in chunks, so that a bomb is stopped before it fills memory
            return b"".join(iter(lambda: self.read(1 << 20), b""))
        data = self._stream.read(size)
        self.count += len(data)
        self._check()
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        return len(data)


__all__ = [
    "CountingReader",
    "InflateGuard",
    "JsonDepthGuard",
    "JsonDepthScanner",
    "ReadLimits",
    "check_columns",
]
