"""CSV and zip files on the caller's machine: the file shapes previsionio scripts send and expect.

The platform stores datasets as Parquet and takes CSV or Parquet uploads. previsionio scripts also upload a
zip holding a CSV, download datasets as a zip of CSV, and export CSV files written with another separator,
decimal mark or encoding. These conversions happen here, streamed batch by batch where the format allows it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from .client import format_path
from .errors import ConfigurationError

if TYPE_CHECKING:
    import pyarrow.parquet as pq

    from .datasets import Dataset

#: Formats of the member of an uploaded zip archive, by extension.
_MEMBER_FORMATS = {".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}
_CSV_BATCH_ROWS = 64 * 1024


@contextlib.contextmanager
def unzipped_upload(path: Path) -> Iterator[tuple[Path, str, str]]:
    """Extract the one data file of a zip archive (as previsionio uploads) into a temporary directory.

    Yields:
        The extracted file, its format (``csv`` or ``parquet``) and its name in the archive.

    Raises:
        ConfigurationError: The archive holds no data file, or more than one.
    """
    with zipfile.ZipFile(path) as archive:
        members = [
            m
            for m in archive.infolist()
            if not m.is_dir() and not Path(m.filename).name.startswith(".") and "__MACOSX" not in m.filename
        ]
        if len(members) != 1:
            names = [m.filename for m in members]
            raise ConfigurationError(
                f"The zip archive {str(path)!r} must hold exactly one CSV or Parquet file; it holds {names}."
            )
        member = members[0]
        name = Path(member.filename).name
        fmt = _MEMBER_FORMATS.get(Path(name).suffix.lower(), "csv")
        with tempfile.TemporaryDirectory(prefix="previsio-") as tmp:
            target = Path(tmp) / f"data.{fmt}"
            with archive.open(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            yield target, fmt, name


def _write_csv(parquet: pq.ParquetFile, sink: IO[bytes]) -> None:
    """Write a Parquet file's rows as CSV (header first), one batch at a time."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        with pacsv.CSVWriter(sink, parquet.schema_arrow) as writer:
            for batch in parquet.iter_batches(batch_size=_CSV_BATCH_ROWS):
                writer.write_batch(batch)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid) as exc:
        raise ConfigurationError(
            f"This dataset cannot be written as CSV ({exc}); download it with extension='parquet'."
        ) from None


def write_dataset_file(dataset: Dataset, target: str, fmt: str) -> None:
    """Write a dataset to ``target`` as CSV (``fmt="csv"``) or as a zip holding ``<name>.csv`` (``"zip"``).

    The stored Parquet file is read in place when the platform shares it, else downloaded to a temporary
    file next to ``target``; ``target`` appears whole or not at all.
    """
    import pyarrow.parquet as pq

    directory = os.path.dirname(os.path.abspath(target))
    part = f"{target}.part"
    with tempfile.TemporaryDirectory(prefix=".previsio-", dir=directory) as tmp:
        source = dataset._local_file()
        if source is None:
            source = os.path.join(tmp, "dataset.parquet")
            dataset.client.download(format_path("/datasets/{}/download", dataset.id), source)
        try:
            parquet = pq.ParquetFile(source)
            if fmt == "csv":
                with open(part, "wb") as sink:
                    _write_csv(parquet, sink)
            else:
                member = dataset.name.replace("/", "_").replace("\\", "_") + ".csv"
                with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                    with archive.open(member, "w", force_zip64=True) as sink:
                        _write_csv(parquet, sink)
            os.replace(part, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(part)
            raise


def csv_to_parquet(
    path: Path,
    target: Path,
    *,
    encoding: str | None = None,
    separator: str | None = None,
    decimal: str | None = None,
    thousands: str | None = None,
) -> None:
    """Convert a CSV file read with previsionio's options into a Parquet file the platform can export.

    Without ``thousands`` the file is streamed (pyarrow reads it block by block); with it, pandas reads the
    whole file, pyarrow having no thousands separator.

    Raises:
        ConfigurationError: The file cannot be read with these options.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if thousands:
            import pandas as pd

            frame = pd.read_csv(
                path,
                sep=separator or ",",
                encoding=encoding or "utf-8",
                decimal=decimal or ".",
                thousands=thousands,
            )
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), target)
            return
        import pyarrow.csv as pacsv

        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(encoding=encoding or "utf8"),
            parse_options=pacsv.ParseOptions(delimiter=separator or ","),
            convert_options=pacsv.ConvertOptions(decimal_point=decimal or "."),
        )
        with pq.ParquetWriter(target, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
    except (pa.ArrowInvalid, ValueError, UnicodeDecodeError, LookupError) as exc:
        raise ConfigurationError(f"Cannot read {str(path)!r} with the options given: {exc}") from None
