"""File formats: one or many files read as a single stream of Arrow record batches.

Every format is read as a stream, never as a whole file: CSV and JSON lines block by block (types are inferred
from the first block, ``block_size`` bytes), Parquet row group by row group, gzip and zip decompressed on the
fly. Several files (a glob, the members of a zip archive) are read one after the other and must agree with the
first one: same column names (in any order), values that convert to the first file's types.

The driver gives this module a way to open a file as a binary file object; this module never knows where the
bytes come from. A file object that cannot seek (an HTTP stream) is copied to a temporary file first when the
format needs random access (Parquet, zip).
"""

from __future__ import annotations

import codecs
import csv
import fnmatch
import gzip
import io
import posixpath
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from ..errors import Invalid
from .base import InvalidSource, ReadFailed
from .limits import CountingReader, InflateGuard, JsonDepthGuard, ReadLimits, check_columns

#: Formats a datasource may name with ``format=``.
FORMATS = ("csv", "tsv", "parquet", "jsonl", "csv.gz", "tsv.gz", "jsonl.gz", "zip")

#: File name endings and the (format, compression) they mean, longest first.
EXTENSIONS: tuple[tuple[str, tuple[str, str | None]], ...] = (
    (".csv.gz", ("csv", "gzip")),
    (".tsv.gz", ("tsv", "gzip")),
    (".txt.gz", ("csv", "gzip")),
    (".jsonl.gz", ("jsonl", "gzip")),
    (".ndjson.gz", ("jsonl", "gzip")),
    (".json.gz", ("jsonl", "gzip")),
    (".csv.zip", ("csv", "zip")),
    (".csv", ("csv", None)),
    (".tsv", ("tsv", None)),
    (".tab", ("tsv", None)),
    (".txt", ("csv", None)),
    (".parquet", ("parquet", None)),
    (".pq", ("parquet", None)),
    (".jsonl", ("jsonl", None)),
    (".ndjson", ("jsonl", None)),
    (".json", ("jsonl", None)),
    (".gz", (None, "gzip")),  # type: ignore[dict-item]
    (".zip", (None, "zip")),  # type: ignore[dict-item]
)

#: Bytes read from the start of a CSV file to detect its encoding, delimiter, header and decimal mark.
SNIFF_BYTES = 64 * 1024
#: Bytes per block of a CSV or JSON-lines read; types are inferred from the first block.
DEFAULT_BLOCK_SIZE = 16 << 20
#: Block size used when a datasource is only checked (its schema read, not its rows).
CHECK_BLOCK_SIZE = 1 << 20
DELIMITERS = (",", ";", "\t", "|")

#: Options a file datasource accepts, with the Python types of their values.
OPTION_TYPES: dict[str, tuple[type, ...]] = {
    "format": (str,),
    "compression": (str,),
    "delimiter": (str,),
    "encoding": (str,),
    "header": (bool,),
    "decimal": (str,),
    "quotechar": (str,),
    "null_values": (list,),
    "column_names": (list,),
    "column_types": (dict,),
    "skip_rows": (int,),
    "block_size": (int,),
    "member": (str,),
}

#: Types a ``column_types`` option may name.
TYPE_NAMES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "str": pa.string(),
    "text": pa.string(),
    "int": pa.int64(),
    "int64": pa.int64(),
    "integer": pa.int64(),
    "int32": pa.int32(),
    "float": pa.float64(),
    "double": pa.float64(),
    "float64": pa.float64(),
    "float32": pa.float32(),
    "bool": pa.bool_(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "datetime": pa.timestamp("us"),
}

Opener = Callable[[str], AbstractContextManager[IO[bytes]]]


# ------------------------------------------------------------------------------------------------------------
# Options
# ------------------------------------------------------------------------------------------------------------
def normalize_options(options: dict[str, Any]) -> dict[str, Any]:
    """Check the reading options of a file datasource; return them with ``None`` values dropped.

    Raises:
        Invalid: An option is unknown or has a wrong value.
    """
    out: dict[str, Any] = {}
    for key, value in (options or {}).items():
        if value is None:
            continue
        if key not in OPTION_TYPES:
            raise Invalid(
                f"Unknown file option {key!r}; known options: {', '.join(sorted(OPTION_TYPES))}.",
                {"field": "options", "option": key},
            )
        types = OPTION_TYPES[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise Invalid(
                f"File option {key!r} must be a {types[0].__name__}.", {"field": "options", "option": key}
            )
        out[key] = value
    fmt = out.get("format")
    if fmt is not None:
        fmt = out["format"] = fmt.lower().lstrip(".")
        fmt = {"ndjson": "jsonl", "json": "jsonl", "pq": "parquet", "csv.zip": "zip"}.get(fmt, fmt)
        out["format"] = fmt
        if fmt not in FORMATS:
            raise Invalid(
                f"Unknown format {fmt!r}; known formats: {', '.join(FORMATS)}.", {"field": "format"}
            )
    if out.get("compression") not in (None, "gzip", "zip", "none"):
        raise Invalid(
            "compression must be 'gzip', 'zip' or 'none'.", {"field": "options", "option": "compression"}
        )
    for key in ("delimiter", "quotechar"):
        if key in out:
            value = {"\\t": "\t", "tab": "\t"}.get(out[key], out[key])
            if len(value) != 1 or value in "\r\n":
                raise Invalid(f"{key} must be one character.", {"field": "options", "option": key})
            out[key] = value
    if "decimal" in out and out["decimal"] not in (".", ","):
        raise Invalid("decimal must be '.' or ','.", {"field": "options", "option": "decimal"})
    if "encoding" in out:
        try:
            out["encoding"] = codecs.lookup(out["encoding"]).name
        except LookupError:
            raise Invalid(
                f"Unknown encoding {out['encoding']!r}.", {"field": "options", "option": "encoding"}
            ) from None
    if "block_size" in out and not (64 * 1024 <= out["block_size"] <= 1 << 30):
        raise Invalid("block_size must be between 65536 and 1073741824 bytes.", {"field": "options"})
    if "skip_rows" in out and out["skip_rows"] < 0:
        raise Invalid("skip_rows must be 0 or more.", {"field": "options", "option": "skip_rows"})
    for key in ("null_values", "column_names"):
        if key in out and not all(isinstance(v, str) for v in out[key]):
            raise Invalid(f"{key} must be a list of strings.", {"field": "options", "option": key})
    for name, typ in out.get("column_types", {}).items():
        if not isinstance(typ, str) or typ.lower() not in TYPE_NAMES:
            raise Invalid(
                f"Unknown type {typ!r} for column {name!r}; known types: {', '.join(sorted(TYPE_NAMES))}.",
                {"field": "options", "option": "column_types"},
            )
    return out


def detect_format(name: str, options: dict[str, Any]) -> tuple[str | None, str | None]:
    """The (format, compression) of file ``name``: from ``options`` when given, else from its extension.

    The format is None when only the compression is known (``data.zip``: the members tell).
    """
    fmt = options.get("format")
    compression = options.get("compression")
    if compression == "none":
        compression = None
    if fmt is not None:
        if fmt == "zip":
            return None, "zip"
        if fmt.endswith(".gz"):
            return fmt[:-3], "gzip"
        if compression is None and "compression" not in options:
            compression = _extension_format(name)[1]
        return fmt, compression
    ext_fmt, ext_comp = _extension_format(name)
    return ext_fmt, compression if "compression" in options else ext_comp


def _extension_format(name: str) -> tuple[str | None, str | None]:
    lower = posixpath.basename(name).lower()
    for ext, found in EXTENSIONS:
        if lower.endswith(ext):
            return found
    return None, None


def _unknown_format(name: str) -> InvalidSource:
    return InvalidSource(
        f"Cannot tell the format of {name!r} from its name; pass format= one of {', '.join(FORMATS)}."
    )


# ------------------------------------------------------------------------------------------------------------
# CSV dialect detection
# ------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CsvDialect:
    """How a CSV file is written: given in the options or detected from its first bytes."""

    encoding: str = "utf-8"
    delimiter: str = ","
    quotechar: str = '"'
    header: bool = True
    decimal: str = "."


_INT = re.compile(r"^[+-]?\d+$")
_FLOAT_DOT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?$")
_FLOAT_COMMA = re.compile(r"^[+-]?\d+,\d+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
_BOOL = {"true", "false"}


def detect_encoding(sample: bytes) -> str:
    """Encoding of a file from its first bytes: a BOM, else UTF-8 if it decodes, else Windows-1252/Latin-1."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 3 and exc.reason == "unexpected end of data":
            return "utf-8"  # the sample cut a character in two
    try:
        sample.decode("cp1252")
        return "cp1252"
    except UnicodeDecodeError:
        return "latin-1"


def _is_typed(value: str, decimal: str) -> bool:
    value = value.strip()
    if not value:
        return False
    if _INT.match(value) or _DATE.match(value) or value.lower() in _BOOL:
        return True
    return bool((_FLOAT_COMMA if decimal == "," else _FLOAT_DOT).match(value))


def _rows(lines: list[str], delimiter: str, quotechar: str) -> list[list[str]]:
    return list(csv.reader(lines, delimiter=delimiter, quotechar=quotechar))


def _detect_delimiter(lines: list[str], quotechar: str) -> str:
    best, best_score = ",", (-1, 0)
    for delim in DELIMITERS:
        counts = [len(r) for r in _rows(lines, delim, quotechar) if r]
        if not counts:
            continue
        widths = max(set(counts), key=counts.count)
        consistent = counts.count(widths) / len(counts)
        # Prefer the delimiter splitting every line into the same number (>1) of fields, then the most fields.
        score = (int(consistent * 100) if widths > 1 else 0, widths)
        if score > best_score:
            best, best_score = delim, score
    return best


def _detect_decimal(rows: list[list[str]], delimiter: str) -> str:
    if delimiter == ",":
        return "."
    cells = [c.strip() for r in rows for c in r]
    if any(_FLOAT_COMMA.match(c) for c in cells) and not any(_FLOAT_DOT.match(c) for c in cells):
        return ","
    return "."


def _detect_header(rows: list[list[str]], decimal: str) -> bool:
    if not rows:
        return True
    first, rest = rows[0], rows[1:]
    if any(_is_typed(c, decimal) for c in first):
        return False
    if any(not c.strip() for c in first) and rest:
        return False
    return True


def sniff_csv(sample: bytes, options: dict[str, Any], complete: bool, fmt: str) -> CsvDialect:
    """Detect what ``options`` leaves unsaid about a CSV file from its first bytes.

    Args:
        sample: The first bytes of the (decompressed) file.
        options: The datasource's options; what they give is taken as is.
        complete: Whether ``sample`` is the whole file.
        fmt: ``csv`` or ``tsv`` (a TSV's delimiter is a tab unless told otherwise).
    """
    encoding = options.get("encoding") or detect_encoding(sample)
    text = sample.decode(encoding, errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.splitlines()
    if not complete and len(lines) > 1:
        lines = lines[:-1]  # the sample may end in the middle of a line
    lines = lines[int(options.get("skip_rows", 0)) :][:100]
    quotechar = options.get("quotechar", '"')
    delimiter = options.get("delimiter") or ("\t" if fmt == "tsv" else _detect_delimiter(lines, quotechar))
    rows = _rows(lines, delimiter, quotechar)
    header = options.get("header")
    decimal = options.get("decimal") or _detect_decimal(rows[1:] if header is not False else rows, delimiter)
    if header is None:
        header = False if options.get("column_names") else _detect_header(rows, decimal)
    return CsvDialect(
        encoding=encoding, delimiter=delimiter, quotechar=quotechar, header=header, decimal=decimal
    )


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for i, name in enumerate(names):
        name = name.strip() or f"column_{i + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 0
        out.append(name)
    return out


# ------------------------------------------------------------------------------------------------------------
# Streams
# ------------------------------------------------------------------------------------------------------------
class PrefixedStream(io.RawIOBase):
    """A read-only stream giving ``prefix`` and then the rest of ``stream`` (bytes already read to sniff)."""

    def __init__(self, prefix: bytes, stream: Any) -> None:
        super().__init__()
        self._prefix = memoryview(prefix)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._stream.read(len(view))
        n = len(data)
        view[:n] = data
        return n

    def read(self, size: int = -1) -> bytes:
        if self._prefix:
            if size is None or size < 0:
                data = bytes(self._prefix) + self._stream.read()
                self._prefix = memoryview(b"")
                return data
            n = min(size, len(self._prefix))
            data = bytes(self._prefix[:n])
            self._prefix = self._prefix[n:]
            return data
        return self._stream.read(size if size is not None else -1)


def read_exactly(stream: Any, size: int) -> bytes:
    """Read up to ``size`` bytes, looping over short reads; fewer only at the end of the stream."""
    chunks, got = [], 0
    while got < size:
        chunk = stream.read(size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def first_lines_sample(stream: Any, size: int, skip_rows: int, cap: int) -> tuple[bytes, bool]:
    """The first ``size`` bytes of ``stream``, extended to the end of its first data line (``cap`` at most).

    The column count is read from that line: a header of 100,000 columns is refused before the CSV reader
    allocates for them, however long the line.

    Returns:
        The bytes read, and whether they are the whole stream.
    """
    chunks = [read_exactly(stream, size)]
    got, newlines = len(chunks[0]), chunks[0].count(b"\n")
    exhausted = got < size
    while not exhausted and got < cap and newlines <= skip_rows:
        want = min(size, cap - got)
        more = read_exactly(stream, want)
        chunks.append(more)
        got += len(more)
        newlines += more.count(b"\n")
        exhausted = len(more) < want
    return b"".join(chunks), exhausted


def _seekable(fileobj: Any) -> bool:
    try:
        return bool(fileobj.seekable())
    except (AttributeError, ValueError, OSError):
        return False


# ------------------------------------------------------------------------------------------------------------
# Parts: one file, or one member of an archive, read as record batches
# ------------------------------------------------------------------------------------------------------------
@dataclass
class ReadContext:
    """What every part of one read shares."""

    options: dict[str, Any]
    batch_rows: int
    block_size: int
    spool_dir: Path | None
    #: Whether the opened files can seek cheaply; when not, Parquet and zip files are spooled first.
    random_access: bool = True
    #: The schema of the first part: later parts are read as (and converted to) it.
    schema: pa.Schema | None = None
    #: The CSV dialect of the first part: later parts are read the same way.
    dialect: CsvDialect | None = None
    #: What a hostile file may make the parsers do.
    limits: ReadLimits = field(default_factory=ReadLimits)
    stack: ExitStack = field(default_factory=ExitStack)

    def spool(self, fileobj: Any, name: str) -> Any:
        """A seekable copy of ``fileobj`` in a temporary file, removed when the read ends."""
        tmp = self.stack.enter_context(tempfile.TemporaryFile(dir=self.spool_dir, prefix="previsio-spool-"))
        shutil.copyfileobj(fileobj, tmp, 1 << 20)
        tmp.seek(0)
        return tmp


def _column_type(name: str) -> pa.DataType:
    return TYPE_NAMES[name.lower()]


def count_columns(first_line: list[str], dialect: CsvDialect) -> int:
    """Columns of a file's first line (a list of at most one line); a field too long for the csv module
    counts by its delimiters."""
    try:
        rows = _rows(first_line, dialect.delimiter, dialect.quotechar)
    except csv.Error:
        return first_line[0].count(dialect.delimiter) + 1 if first_line else 0
    return len(rows[0]) if rows else 0


def _open_csv(stream: Any, name: str, fmt: str, ctx: ReadContext) -> pa.RecordBatchReader:
    options = ctx.options
    skip = int(options.get("skip_rows", 0))
    sample, complete = first_lines_sample(stream, SNIFF_BYTES, skip, ctx.block_size)
    if not sample.strip():
        raise InvalidSource(f"{name!r} is empty.")
    # The dialect is told from the first 64 KB as always; the sample read on to the end of the first line
    # gives its number of columns.
    head_complete = complete and len(sample) <= SNIFF_BYTES
    dialect = ctx.dialect or sniff_csv(sample[:SNIFF_BYTES], options, complete=head_complete, fmt=fmt)
    encoding = dialect.encoding
    given_names = options.get("column_names")
    text = sample.decode(encoding, errors="replace").lstrip("\ufeff")
    first_line = text.splitlines()[skip : skip + 1]
    check_columns(count_columns(first_line, dialect), ctx.limits, name)
    check_columns(len(given_names or ()), ctx.limits, name)
    first_rows = _rows(first_line, dialect.delimiter, dialect.quotechar)
    first_row = first_rows[0] if first_rows else []
    if given_names:
        names = _unique_names(list(given_names))
    elif dialect.header:
        names = _unique_names(first_row)
    else:
        names = [f"column_{i + 1}" for i in range(len(first_row))]
    read_options = pacsv.ReadOptions(
        block_size=ctx.block_size,
        encoding=encoding if encoding not in ("utf-8", "utf-8-sig") else "utf8",
        skip_rows=skip + (1 if dialect.header else 0),
        column_names=names,
    )
    parse_options = pacsv.ParseOptions(
        delimiter=dialect.delimiter,
        quote_char=dialect.quotechar,
        newlines_in_values=True,
    )
    column_types: dict[str, pa.DataType] = {}
    if ctx.schema is not None:
        column_types = {f.name: f.type for f in ctx.schema if f.name in names}
    for col, typ in options.get("column_types", {}).items():
        column_types[col] = _column_type(typ)
    convert = {
        "column_types": column_types,
        "decimal_point": dialect.decimal,
        "strings_can_be_null": True,
    }
    if options.get("null_values") is not None:
        convert["null_values"] = options["null_values"]
    reader = pacsv.open_csv(
        PrefixedStream(sample, stream),
        read_options=read_options,
        parse_options=parse_options,
        convert_options=pacsv.ConvertOptions(**convert),
    )
    if ctx.dialect is None:
        ctx.dialect = dialect
    return reader


def _open_jsonl(stream: Any, name: str, ctx: ReadContext) -> pa.RecordBatchReader:
    parse = pajson.ParseOptions(newlines_in_values=False)
    if ctx.schema is not None:
        parse = pajson.ParseOptions(explicit_schema=ctx.schema, unexpected_field_behavior="error")
    read = pajson.ReadOptions(block_size=ctx.block_size)
    # The parser recurses once per nesting level: a value nested deep enough overflows its stack.
    guarded = JsonDepthGuard(stream, ctx.limits.max_json_depth, name)
    return pajson.open_json(guarded, read_options=read, parse_options=parse)


def _open_parquet(fileobj: Any, name: str, ctx: ReadContext) -> pa.RecordBatchReader:
    if not ctx.random_access or not _seekable(fileobj):
        fileobj = ctx.spool(fileobj, name)
    pf = pq.ParquetFile(fileobj)
    check_columns(pf.metadata.num_columns, ctx.limits, name)
    return pa.RecordBatchReader.from_batches(pf.schema_arrow, pf.iter_batches(batch_size=ctx.batch_rows))


@dataclass(frozen=True)
class Part:
    """One stream of rows: a file, or a member of a zip archive."""

    name: str
    open: Callable[[ReadContext], pa.RecordBatchReader]
    #: The format, for messages ("gzip-compressed CSV").
    label: str = "data"


def _format_errors(name: str, fmt: str, when: str) -> Any:
    """Turn a format-level failure into :class:`InvalidSource` (opening) or :class:`ReadFailed` (reading)."""

    @contextmanager
    def guard() -> Iterator[None]:
        try:
            yield
        except (
            pa.ArrowInvalid,
            pa.ArrowNotImplementedError,
            pa.ArrowTypeError,
            UnicodeDecodeError,
            gzip.BadGzipFile,
            zlib.error,
            EOFError,
            zipfile.BadZipFile,
            csv.Error,
        ) as exc:
            cls = InvalidSource if when == "open" else ReadFailed
            message = str(exc).strip().rstrip(".") or type(exc).__name__
            hint = ""
            if "conversion error" in message or "Could not convert" in message:
                hint = (
                    " The column types were inferred from the first block of the file; set options="
                    "{'column_types': {'<column>': 'string'}} (or a wider type) or a larger block_size."
                )
            raise cls(f"{name!r} cannot be read as {fmt}: {message}.{hint}") from None
        except OSError as exc:
            # Arrow reports a corrupt compressed stream as a plain OSError without errno; a network or disk
            # error keeps its own class (and errno) and goes to the driver.
            if type(exc) is OSError and exc.errno is None and "inflate" in str(exc):
                raise InvalidSource(f"{name!r} cannot be read as {fmt}: {exc}.") from None
            raise

    return guard()


def _file_parts(path: str, display: str, opener: Opener, options: dict[str, Any]) -> list[Part]:
    """The parts of one file: itself, or each data member of a zip archive."""
    fmt, compression = detect_format(path, options)
    if compression == "zip":
        return [Part(display, lambda ctx: _zip_reader(path, display, opener, fmt, ctx), "zip")]
    if fmt is None:
        raise _unknown_format(display)

    def open_part(ctx: ReadContext) -> pa.RecordBatchReader:
        fileobj = ctx.stack.enter_context(opener(path))
        with _format_errors(display, _label(fmt, compression), "open"):
            if compression == "gzip":
                raw = CountingReader(fileobj)
                inflating = ctx.stack.enter_context(gzip.GzipFile(fileobj=raw, mode="rb"))
                fileobj = InflateGuard(inflating, lambda: raw.count, ctx.limits, display)
            return _open_stream(fileobj, display, fmt, ctx)

    return [Part(display, open_part, _label(fmt, compression))]


def _label(fmt: str, compression: str | None) -> str:
    name = {"jsonl": "JSON lines", "parquet": "Parquet"}.get(fmt, fmt.upper())
    return f"gzip-compressed {name}" if compression == "gzip" else name


def _open_stream(fileobj: Any, display: str, fmt: str, ctx: ReadContext) -> pa.RecordBatchReader:
    if fmt in ("csv", "tsv"):
        return _open_csv(fileobj, display, fmt, ctx)
    if fmt == "jsonl":
        return _open_jsonl(fileobj, display, ctx)
    if fmt == "parquet":
        return _open_parquet(fileobj, display, ctx)
    raise _unknown_format(display)


def _zip_reader(
    path: str, display: str, opener: Opener, fmt: str | None, ctx: ReadContext
) -> pa.RecordBatchReader:
    """All data members of a zip archive (or those matching ``member``), read as one stream."""
    fileobj = ctx.stack.enter_context(opener(path))
    if not ctx.random_access or not _seekable(fileobj):
        fileobj = ctx.spool(fileobj, display)
    with _format_errors(display, "zip", "open"):
        archive = ctx.stack.enter_context(zipfile.ZipFile(fileobj))
        infos = [i for i in archive.infolist() if not i.is_dir() and not i.filename.startswith("__MACOSX/")]
    pattern = ctx.options.get("member")
    if pattern:
        infos = [i for i in infos if fnmatch.fnmatchcase(i.filename, pattern)]
    members = []
    for info in sorted(infos, key=lambda i: i.filename):
        member_fmt = fmt or _extension_format(info.filename)[0]
        if member_fmt is not None and _extension_format(info.filename)[1] is None:
            members.append((info, member_fmt))
    if not members:
        wanted = f" matching {pattern!r}" if pattern else ""
        raise InvalidSource(
            f"The zip archive {display!r} holds no CSV, JSON lines or Parquet member{wanted}."
        )
    kinds = {m[1] for m in members}
    if len(kinds) > 1:
        raise InvalidSource(
            f"The zip archive {display!r} mixes formats ({', '.join(sorted(kinds))}); choose with member=."
        )
    parts = []
    for info, member_fmt in members:
        name = f"{display}!{info.filename}"

        def open_member(
            c: ReadContext, info: zipfile.ZipInfo = info, name: str = name, member_fmt: str = member_fmt
        ) -> pa.RecordBatchReader:
            with _format_errors(name, _label(member_fmt, None), "open"):
                member = c.stack.enter_context(archive.open(info))
                stream = InflateGuard(member, lambda: info.compress_size, c.limits, name)
                return _open_stream(stream, name, member_fmt, c)

        parts.append(Part(name, open_member, _label(member_fmt, None)))
    return _chain(parts, ctx)


# ------------------------------------------------------------------------------------------------------------
# Several parts as one stream
# ------------------------------------------------------------------------------------------------------------
def _conform(batch: pa.RecordBatch, schema: pa.Schema, name: str, first: str) -> pa.RecordBatch:
    """``batch`` with the columns and types of ``schema`` (the first part's), or InvalidSource."""
    if batch.schema.equals(schema):
        return batch
    if set(batch.schema.names) != set(schema.names) or len(batch.schema.names) != len(schema.names):
        raise InvalidSource(
            f"{name!r} has columns {batch.schema.names}, but {first!r} has {schema.names}: the files of one "
            "datasource must have the same columns."
        )
    arrays = []
    for f in schema:
        column = batch.column(batch.schema.get_field_index(f.name))
        if not column.type.equals(f.type):
            try:
                column = column.cast(f.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InvalidSource(
                    f"Column {f.name!r} of {name!r} ({column.type}) does not convert to its type in "
                    f"{first!r} ({f.type}): {exc}"
                ) from None
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _dataset_schema(schema: pa.Schema) -> pa.Schema:
    """The schema a dataset gets from a file's inferred one: null columns as text, timestamps in microseconds.

    Microseconds are what the SQL drivers give and what Parquet keeps (a ``timestamp[s]`` would come back as
    milliseconds).
    """
    fields = []
    for f in schema:
        if pa.types.is_null(f.type):
            f = pa.field(f.name, pa.string())
        elif pa.types.is_timestamp(f.type) and f.type.unit in ("s", "ms"):
            f = pa.field(f.name, pa.timestamp("us", tz=f.type.tz), f.nullable, f.metadata)
        fields.append(f)
    return pa.schema(fields, metadata=schema.metadata)


def _chain(parts: list[Part], ctx: ReadContext) -> pa.RecordBatchReader:
    """Open the first part now (its schema is the stream's), the others one after the other while reading."""
    first = parts[0]
    reader = first.open(ctx)
    check_columns(len(reader.schema), ctx.limits, first.name)
    if ctx.schema is None:
        ctx.schema = _dataset_schema(reader.schema)
        if any(pa.types.is_null(f.type) for f in reader.schema):
            # A column empty all through the first block is typed null; read it as text so later values fit.
            reader = first.open(ctx)
    schema = ctx.schema

    def batches() -> Iterator[pa.RecordBatch]:
        current: pa.RecordBatchReader | None = reader
        for part in parts:
            with _format_errors(part.name, part.label, "read"):
                if current is None:
                    with _format_errors(part.name, part.label, "open"):
                        current = part.open(ctx)
                for batch in current:
                    if batch.num_rows:
                        yield _conform(batch, schema, part.name, first.name)
            current = None

    return pa.RecordBatchReader.from_batches(schema, batches())


@contextmanager
def open_files(
    paths: list[tuple[str, str]],
    opener: Opener,
    options: dict[str, Any],
    batch_rows: int,
    *,
    check: bool = False,
    spool_dir: Path | None = None,
    random_access: bool = True,
    limits: ReadLimits | None = None,
) -> Iterator[pa.RecordBatchReader]:
    """Read files as one stream of record batches.

    Args:
        paths: ``(path, display name)`` of each file, in reading order; the display name goes in messages.
        opener: Opens a path as a binary file object (a context manager).
        options: The datasource's reading options (see :data:`OPTION_TYPES`).
        batch_rows: Rows per batch for Parquet (CSV and JSON lines come in blocks of ``block_size`` bytes).
        check: Only the schema will be read: use a small first block.
        spool_dir: Directory of temporary copies of streams that need random access.
        random_access: Whether the opened files seek cheaply (False: HTTP streams).
        limits: Nesting depth, columns and decompressed size a file may have (the defaults when None).

    Raises:
        InvalidSource: A file cannot be read in its format, or does not match the first file.
        ReadFailed: A file became unreadable part way.
        LimitExceeded: A file passes one of ``limits``.
    """
    if not paths:
        raise InvalidSource("No file to read.")
    block_size = int(options.get("block_size", DEFAULT_BLOCK_SIZE))
    if check:
        block_size = min(block_size, CHECK_BLOCK_SIZE)
    ctx = ReadContext(
        options=options,
        batch_rows=batch_rows,
        block_size=block_size,
        spool_dir=spool_dir,
        random_access=random_access,
        limits=limits or ReadLimits(),
    )
    with ctx.stack:
        parts: list[Part] = []
        for path, display in paths:
            parts += _file_parts(path, display, opener, options)
        yield _chain(parts, ctx)


def file_format_label(path: str, options: dict[str, Any]) -> str:
    """A readable name of the format a path will be read as (for messages)."""
    fmt, compression = detect_format(path, options)
    if compression == "zip":
        return "zip"
    return _label(fmt, compression) if fmt else "unknown"


__all__ = [
    "CsvDialect",
    "FORMATS",
    "OPTION_TYPES",
    "PrefixedStream",
    "count_columns",
    "detect_encoding",
    "detect_format",
    "file_format_label",
    "normalize_options",
    "open_files",
    "sniff_csv",
]
