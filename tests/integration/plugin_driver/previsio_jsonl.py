"""previsio_jsonl: a connector type for directories of JSON-lines files, added to previsio by a package.

The worked example of ``docs/guides/drivers.rst``, tested by ``tests/integration/test_exporters_plugin.py``.
The package declares the driver in the ``previsio_sdk.drivers`` entry-point group; the platform imports it
when it first looks a connector type up. A connector's ``database`` is a directory of the platform's machine;
a datasource, or an exporter, names a ``path`` in it.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.json as pajson

from previsio_sdk.server.drivers.base import (
    ConnectorConfig,
    DestinationExists,
    DestinationSpec,
    Driver,
    SourceNotFound,
    SourceSpec,
    TestOutcome,
    WriteMode,
    WriteResult,
)
from previsio_sdk.server.drivers.files import safe_relative_path
from previsio_sdk.server.errors import Invalid


class JSONLinesDirectoryDriver(Driver):
    """JSON-lines files ``<database>/<path>``: read as datasets, written by exporters."""

    #: Files are written whole: ``safe`` (never overwrite) or ``replace``.
    write_modes: ClassVar[tuple[WriteMode, ...]] = (WriteMode.safe, WriteMode.replace)

    # -- settings ------------------------------------------------------------------------------------------
    @classmethod
    def normalize_config(cls, config: ConnectorConfig) -> ConnectorConfig:
        if not config.database or not os.path.isabs(config.database):
            raise Invalid("A jsonl connector needs database= an absolute directory.", {"field": "database"})
        return config.evolve(host=None, port=None, username=None)

    def check_config(self) -> None:
        # The platform's operator lists the directories that connectors may use (PREVISIO_LOCAL_ROOTS).
        allowed = [os.path.realpath(r) for r in getattr(self.settings, "local_roots", None) or []]
        if not any(_inside(self._root(), a) for a in allowed):
            raise Invalid(
                f"{self.config.database} is not below a directory this platform allows.",
                {"field": "database"},
                code="root_not_allowed",
            )

    def _root(self) -> str:
        return os.path.realpath(self.config.database or "")

    def _file(self, path: str | None) -> Path:
        """The file of ``path``, which must stay inside the directory (links included)."""
        full = os.path.realpath(os.path.join(self._root(), safe_relative_path(path, allow_empty=False)))
        if not _inside(full, self._root()):
            raise Invalid(f"{path!r} leads out of the directory.", {"field": "path"}, code="unsafe_path")
        return Path(full)

    def normalize_source(self, spec: SourceSpec) -> SourceSpec:
        if spec.table or spec.request or spec.bucket:
            raise Invalid("A jsonl datasource takes path= only.", {"field": "path"})
        return SourceSpec(path=safe_relative_path(spec.path, allow_empty=False))

    # -- reading -------------------------------------------------------------------------------------------
    def test(self) -> TestOutcome:
        if os.path.isdir(self._root()):
            return TestOutcome(True, None, f"{self.config.database} is a directory.")
        return TestOutcome(False, "source_not_found", f"{self.config.database} is not a directory.")

    def list_files(self, path: str = "", bucket: str | None = None) -> list[dict[str, Any]]:
        folder = Path(self._root()) / safe_relative_path(path)
        return [
            {
                "name": p.name,
                "path": str(p.relative_to(self._root())),
                "size": p.stat().st_size,
                "is_dir": False,
            }
            for p in sorted(folder.glob("*.jsonl"))
        ]

    @contextmanager
    def open_reader(self, spec: SourceSpec, batch_rows: int) -> Iterator[pa.RecordBatchReader]:
        file = self._file(spec.path)
        if not file.is_file():
            raise SourceNotFound(f"No file {spec.path!r} in the directory.")
        yield pajson.open_json(file)  # a stream of record batches: the file is never read whole

    # -- writing -------------------------------------------------------------------------------------------
    def normalize_destination(
        self, dest: DestinationSpec, mode: WriteMode, key: Sequence[str] | None
    ) -> DestinationSpec:
        dest = super().normalize_destination(dest, mode, key)  # the mode is one of write_modes; no key
        if dest.table or dest.bucket or dest.database:
            raise Invalid("A jsonl destination takes path= only.", {"field": "path"})
        return DestinationSpec(path=safe_relative_path(dest.path, allow_empty=False))

    def write(
        self,
        dest: DestinationSpec,
        reader: pa.RecordBatchReader,
        mode: WriteMode,
        key: Sequence[str] | None,
        *,
        job_id: str | None = None,
    ) -> WriteResult:
        target = self._file(dest.path)
        if mode is WriteMode.safe and target.exists():
            raise DestinationExists(f"{dest.path!r} already exists.")
        # Written under a temporary name, renamed at the end: a failure leaves the destination as it was.
        tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex}")
        rows = 0
        try:
            with open(tmp, "x", encoding="utf-8") as out:
                for batch in reader:
                    for row in batch.to_pylist():
                        out.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
                    rows += batch.num_rows
            if mode is WriteMode.replace:
                os.replace(tmp, target)
            else:
                os.link(tmp, target)  # fails if the file appeared meanwhile: never overwritten
                os.unlink(tmp)
        except FileExistsError:
            raise DestinationExists(f"{dest.path!r} already exists.") from None
        finally:
            tmp.unlink(missing_ok=True)
        return WriteResult(rows, dest.path or "")


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
