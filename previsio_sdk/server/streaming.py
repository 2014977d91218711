"""Overlapping the reading of a stream with its consumption, in bounded memory."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

#: Batches read ahead of the Parquet writer. Reading (ADBC, ConnectorX, the network) and encoding release the
#: GIL, so the two overlap on two cores; two batches in the queue keep memory bounded.
READ_AHEAD_BATCHES = 2
_DONE = object()


def read_ahead(
    reader: Iterable[T], depth: int = READ_AHEAD_BATCHES, name: str = "previsio-read-ahead"
) -> Iterator[T]:
    """Yield the items of ``reader`` (record batches, chunks), produced by a background thread up to ``depth``
    items ahead.

    An error of the reader is raised here, with its own type; when the consumer stops early (an error while
    writing), the reading thread stops too.
    """
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in reader:
                if not put(batch):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(exc)
            return
        put(_DONE)

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
