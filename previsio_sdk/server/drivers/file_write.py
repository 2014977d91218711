"""Writing a stream of record batches as one file: the formats of file destinations and their names.

A file destination is written as Parquet (snappy) or as CSV/TSV with a header line, batch after batch, into a
file object the driver opens; this module never knows where the bytes go.
"""

from __future__ import annotations

import posixpath
from datetime import datetime
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..errors import Invalid

#: Formats a file destination may be written in.
WRITE_FORMATS = ("csv", "tsv", "parquet")
#: File name endings and the format they mean.
WRITE_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
#: How a timestamp is written into the name of a ``timestamp`` export (UTC).
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"


def write_format(path: str, fmt: Any = None) -> str:
    """The format of a file destination: ``fmt`` when given, else the extension of ``path``.

    Raises:
        Invalid: The format is unknown, or the name does not tell it.
    """
    if fmt is not None:
        if fmt not in WRITE_FORMATS:
            raise Invalid(
                f"Unknown export format {fmt!r}; known: {', '.join(WRITE_FORMATS)}.", {"field": "format"}
            )
        return str(fmt)
    ext = posixpath.splitext(path)[1].lower()
    if ext not in WRITE_EXTENSIONS:
        raise Invalid(
            f"Cannot tell the format to write {path!r} in from its name; end it with "
            f"{', '.join(WRITE_EXTENSIONS)} or pass format= one of {', '.join(WRITE_FORMATS)}.",
            {"field": "format"},
        )
    return WRITE_EXTENSIONS[ext]


def timestamped(path: str, when: datetime, attempt: int = 0) -> str:
    """``path`` with the UTC time inserted before its extension: ``a/orders_20240131T120000Z.csv``.

    ``attempt`` > 0 adds a counter (``..._20240131T120000Z-2.csv``) for a name already taken in that second.
    """
    directory, name = posixpath.split(path)
    stem, ext = posixpath.splitext(name)
    if not stem:  # ".csv": the whole name is the stem
        stem, ext = name, ""
    stamp = when.strftime(TIMESTAMP_FORMAT)
    suffix = f"-{attempt + 1}" if attempt else ""
    return posixpath.join(directory, f"{stem}_{stamp}{suffix}{ext}")


def encode_stream(reader: pa.RecordBatchReader, sink: IO[bytes], fmt: str) -> int:
    """Write every batch of ``reader`` into ``sink`` in ``fmt``; return the number of rows written.

    The sink is not closed (the caller commits or discards it).
    """
    rows = 0
    schema = reader.schema
    if fmt == "parquet":
        strings = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
        writer: Any = pq.ParquetWriter(sink, schema, compression="snappy", use_dictionary=strings or False)
    else:
        options = pacsv.WriteOptions(include_header=True, delimiter="\t" if fmt == "tsv" else ",")
        writer = pacsv.CSVWriter(sink, schema, write_options=options)
    try:
        for batch in reader:
            if batch.num_rows:
                writer.write_batch(batch)
                rows += batch.num_rows
    finally:
        writer.close()
    return rows


__all__ = ["TIMESTAMP_FORMAT", "WRITE_FORMATS", "encode_stream", "timestamped", "write_format"]
