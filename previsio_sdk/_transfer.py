"""What backup, restore and migration share: a project's description, and its idempotent re-creation.

A :class:`ProjectPlan` describes a project by names only (connectors, datasources, exporters, datasets), so it
can be written to a backup manifest or applied to another platform. :func:`apply_plan` creates in a target
project whatever the plan holds that the target lacks, looked up by name: a second run after a failure
completes the first one and duplicates nothing. Dataset files move as Parquet files on disk, streamed, never
as DataFrames.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from .client import Client, format_path
from .errors import ConfigurationError, NotFoundError

if TYPE_CHECKING:
    from .project import Project

CONNECTOR_KEYS = ("name", "type", "driver", "host", "port", "username", "database", "options")
DATASOURCE_KEYS = ("name", "database", "table", "request", "path", "bucket", "options")
EXPORTER_KEYS = (
    "name",
    "description",
    "database",
    "table",
    "path",
    "bucket",
    "write_mode",
    "key",
    "options",
)
_CHUNK = 1 << 20


@attrs.define
class DatasetEntry:
    """A dataset of a plan.

    Attributes:
        name: Dataset name.
        datasource: Name of the datasource it was taken from, or None.
        num_rows: Number of rows.
        schema: Columns as the platform describes them.
        fetch: Writes the dataset's Parquet file to the path given (a download, or a copy out of an archive).
        extra: What the manifest records besides (file, checksum, size).
    """

    name: str
    datasource: str | None
    num_rows: int
    schema: list[dict[str, Any]]
    fetch: Callable[[Path], None] = attrs.field(repr=False)
    extra: dict[str, Any] = attrs.field(factory=dict)


@attrs.define
class ProjectPlan:
    """A project described by names: what a backup holds and what a migration copies.

    Attributes:
        project: ``name`` and ``description``.
        connectors: Connector settings (no secret), with ``secret_fields``: the secrets the source had.
        datasources: Datasource definitions, with ``connector``: the connector's name.
        exporters: Exporter definitions, with ``connector``: the connector's name.
        datasets: The datasets, with a way to fetch each one's file.
    """

    project: dict[str, Any]
    connectors: list[dict[str, Any]] = attrs.field(factory=list)
    datasources: list[dict[str, Any]] = attrs.field(factory=list)
    exporters: list[dict[str, Any]] = attrs.field(factory=list)
    datasets: list[DatasetEntry] = attrs.field(factory=list)


def _pick(data: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    return {k: data.get(k) for k in keys}


def _names(items: Iterable[Any]) -> list[str]:
    return [x if isinstance(x, str) else x.name for x in items]


def plan_from_project(
    project: Project, datasets: Iterable[Any] | None = None, with_exporters: bool | None = None
) -> ProjectPlan:
    """Describe a live project; ``datasets`` (names or objects) limits it to them and their lineage.

    With ``datasets`` given only their datasources and those datasources' connectors are included, and no
    exporter unless ``with_exporters``.

    Raises:
        ConfigurationError: A dataset named is not in the project.
    """
    client = project.client
    pid = project.id
    connectors = list(client.iter_pages(format_path("/projects/{}/connectors", pid)))
    sources = list(client.iter_pages(format_path("/projects/{}/datasources", pid)))
    all_datasets = list(client.iter_pages(format_path("/projects/{}/datasets", pid)))
    try:
        exporters = list(client.iter_pages(format_path("/projects/{}/exporters", pid)))
    except NotFoundError:  # a platform of a version without exporters
        exporters = []
    if datasets is not None:
        wanted = _names(datasets)
        by_name = {d["name"]: d for d in all_datasets}
        missing = [n for n in wanted if n not in by_name]
        if missing:
            raise ConfigurationError(
                f"Project {project.name!r} has no dataset(s) {', '.join(repr(n) for n in missing)}."
            )
        all_datasets = [by_name[n] for n in dict.fromkeys(wanted)]
        used_sources = {d["datasource_id"] for d in all_datasets if d.get("datasource_id")}
        sources = [s for s in sources if s["id"] in used_sources]
        used_connectors = {s["connector_id"] for s in sources}
        if with_exporters:
            used_connectors |= {e["connector_id"] for e in exporters}
        else:
            exporters = []
        connectors = [c for c in connectors if c["id"] in used_connectors]
    connector_names = {c["id"]: c["name"] for c in connectors}
    source_names = {s["id"]: s["name"] for s in sources}
    plan = ProjectPlan(project={"name": project.name, "description": project.description})
    for c in connectors:
        entry = _pick(c, CONNECTOR_KEYS)
        entry["secret_fields"] = list(
            c.get("secret_fields") or (["password"] if c.get("has_password") else [])
        )
        entry["_id"] = c["id"]
        plan.connectors.append(entry)
    for s in sources:
        entry = _pick(s, DATASOURCE_KEYS)
        entry["connector"] = connector_names[s["connector_id"]]
        plan.datasources.append(entry)
    for e in exporters:
        entry = _pick(e, EXPORTER_KEYS)
        entry["connector"] = connector_names[e["connector_id"]]
        plan.exporters.append(entry)
    for d in all_datasets:
        path = format_path("/datasets/{}/download", d["id"])

        def fetch(target: Path, path: str = path) -> None:
            client.download(path, target)

        plan.datasets.append(
            DatasetEntry(
                name=d["name"],
                datasource=source_names.get(d.get("datasource_id") or ""),
                num_rows=d["num_rows"],
                schema=d.get("schema") or [],
                fetch=fetch,
            )
        )
    return plan


def find_or_create_project(client: Client, name: str, description: str | None) -> Project:
    """The caller's project named ``name`` on ``client``'s platform, created when there is none."""
    from .project import Project

    for p in Project.list(client):
        if p.name == name:
            return p
    return Project.new(name, description=description, client=client)


def apply_plan(
    plan: ProjectPlan,
    target: Project,
    secrets: Mapping[str, Mapping[str, str]] | None = None,
    on_connector: Callable[[dict[str, Any]], dict[str, str]] | None = None,
) -> dict[str, int]:
    """Create in ``target`` what ``plan`` holds and ``target`` lacks (looked up by name): idempotent.

    Args:
        plan: What to create.
        target: Project to create it in.
        secrets: Secrets by connector name (``{"warehouse": {"password": "..."}}``).
        on_connector: Gives the secrets of a connector entry when ``secrets`` has none for it (decrypted
            from an archive).

    Returns:
        How many resources of each kind were created (``connectors``, ``datasources``, ``exporters``,
        ``datasets``); those already there are not counted.
    """
    client = target.client
    pid = target.id
    secrets = secrets or {}
    created = {"connectors": 0, "datasources": 0, "exporters": 0, "datasets": 0}

    connector_ids = {
        c["name"]: c["id"] for c in client.iter_pages(format_path("/projects/{}/connectors", pid))
    }
    for entry in plan.connectors:
        if entry["name"] in connector_ids:
            continue
        given = dict(secrets.get(entry["name"]) or (on_connector(entry) if on_connector else {}) or {})
        body = {k: entry.get(k) for k in CONNECTOR_KEYS}
        body["options"] = body.get("options") or {}
        body["password"] = given.pop("password", None)
        body["secrets"] = given
        provided = set(given) | ({"password"} if body["password"] else set())
        body["missing_secrets"] = [f for f in entry.get("secret_fields") or [] if f not in provided]
        data = client.post(format_path("/projects/{}/connectors", pid), body)
        connector_ids[entry["name"]] = data["id"]
        created["connectors"] += 1

    source_ids = {s["name"]: s["id"] for s in client.iter_pages(format_path("/projects/{}/datasources", pid))}
    for entry in plan.datasources:
        if entry["name"] in source_ids:
            continue
        body = {k: entry.get(k) for k in DATASOURCE_KEYS}
        body["options"] = body.get("options") or {}
        body["connector_id"] = connector_ids[entry["connector"]]
        body["check"] = False  # the source may need credentials not set yet; a snapshot checks it
        data = client.post(format_path("/projects/{}/datasources", pid), body)
        source_ids[entry["name"]] = data["id"]
        created["datasources"] += 1

    if plan.exporters:
        exporter_names = {e["name"] for e in client.iter_pages(format_path("/projects/{}/exporters", pid))}
        for entry in plan.exporters:
            if entry["name"] in exporter_names:
                continue
            body = {k: entry.get(k) for k in EXPORTER_KEYS}
            body["options"] = body.get("options") or {}
            body["connector_id"] = connector_ids[entry["connector"]]
            client.post(format_path("/projects/{}/exporters", pid), body)
            created["exporters"] += 1

    dataset_names = {d["name"] for d in client.iter_pages(format_path("/projects/{}/datasets", pid))}
    with tempfile.TemporaryDirectory(prefix="previsio-transfer-") as tmp:
        for entry in plan.datasets:
            if entry.name in dataset_names:
                continue
            path = Path(tmp) / "dataset.parquet"
            entry.fetch(path)
            try:
                source_id = source_ids.get(entry.datasource) if entry.datasource else None
                job = target._upload(entry.name, path, "parquet", f"{entry.name}.parquet", source_id)
                job.wait(progress=False)
            finally:
                path.unlink(missing_ok=True)
            created["datasets"] += 1
    return created


def sha256_of(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
