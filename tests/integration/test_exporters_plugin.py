"""A connector type added by an installed package, used through the public SDK for a snapshot and an export.

``plugin_driver/previsio_jsonl.py`` is the worked example of the driver guide. The test installs it the way
pip would: the module on the path, and a ``previsio_jsonl-1.0.dist-info`` declaring it in the
``previsio_sdk.drivers`` entry-point group. A platform started with that path knows the ``jsonl`` type; the
suite's platform, without it, does not.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import RunningPlatform, start_platform, stop_platform

import previsio_sdk as pio

PLUGIN = Path(__file__).parent / "plugin_driver" / "previsio_jsonl.py"
ENTRY_POINTS = "[previsio_sdk.drivers]\njsonl = previsio_jsonl:JSONLinesDirectoryDriver\n"


def install_plugin(site: Path) -> Path:
    """Install the example package into ``site`` as pip would: its module and its dist-info."""
    site.mkdir(parents=True, exist_ok=True)
    shutil.copy(PLUGIN, site / PLUGIN.name)
    info = site / "previsio_jsonl-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: previsio-jsonl\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    (info / "RECORD").write_text("")
    return site


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory the jsonl connectors use, with one file of events."""
    root = tmp_path_factory.mktemp("jsonl-data")
    (root / "events.jsonl").write_text(
        "".join(json.dumps({"id": i, "kind": kind, "value": i * 1.5}) + "\n" for i, kind in enumerate("abc"))
    )
    return root


@pytest.fixture(scope="module")
def plugin_platform(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[RunningPlatform]:
    """A platform whose Python path holds the installed example package."""
    site = install_plugin(tmp_path_factory.mktemp("site-packages"))
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    running = start_platform(
        tmp_path_factory.mktemp("plugin-home"),
        env={"PYTHONPATH": path, "PREVISIO_LOCAL_ROOTS": json.dumps([str(data_dir)])},
    )
    yield running
    stop_platform(running)


@pytest.fixture
def plugin_project(plugin_platform: RunningPlatform) -> Iterator[pio.Project]:
    project = pio.Project.new("plugin", client=plugin_platform.client())
    yield project
    project.delete()


def test_a_platform_without_the_package_does_not_know_the_type(project: pio.Project, data_dir: Path) -> None:
    """The type comes from the installed package only: the suite's platform refuses it, listing its types."""
    with pytest.raises(pio.ValidationError) as info:
        project.create_connector("events", type="jsonl", database=str(data_dir))
    known = info.value.message.split("known types:")[1]
    assert "sql" in known and "jsonl" not in known


def test_the_installed_driver_snapshots_and_exports_through_the_sdk(
    plugin_project: pio.Project, data_dir: Path
) -> None:
    """A jsonl connector made with the public SDK tests, snapshots a file and exports a dataset to a new file;
    safe refuses to overwrite it, replace does, and a mode the driver lacks is refused at creation."""
    connector = plugin_project.create_connector("events", type="jsonl", database=str(data_dir))
    assert connector.type == "jsonl"
    assert connector.test()
    source = plugin_project.create_datasource(connector, "events", path="events.jsonl")
    dataset = plugin_project.create_dataset("events_v1", datasource=source, progress=False)
    assert dataset.num_rows == 3
    assert [(c.name, c.type) for c in dataset.schema] == [
        ("id", "int64"),
        ("kind", "string"),
        ("value", "double"),
    ]

    exporter = plugin_project.create_exporter(connector, "copy", path="copy.jsonl")
    export = exporter.export_dataset(dataset, progress=False, wait_for_export=True)
    assert (export.status, export.rows, export.destination) == ("succeeded", 3, "copy.jsonl")
    assert (data_dir / "copy.jsonl").read_text() == (data_dir / "events.jsonl").read_text()

    with pytest.raises(pio.JobFailedError) as info:
        exporter.export_dataset(dataset, progress=False, wait_for_export=True)
    assert info.value.code == "destination_exists"

    replacer = plugin_project.create_exporter(connector, "again", path="copy.jsonl", write_mode="replace")
    assert replacer.export_dataset(dataset, progress=False, wait_for_export=True).rows == 3

    with pytest.raises(pio.ValidationError) as refused:
        plugin_project.create_exporter(connector, "stamped", path="x.jsonl", write_mode="timestamp")
    assert "safe, replace" in refused.value.message
    with pytest.raises(pio.ValidationError) as unsafe:
        plugin_project.create_exporter(connector, "escape", path="../x.jsonl")
    assert unsafe.value.code == "unsafe_path"


def test_the_installed_driver_applies_the_platform_policy(
    plugin_project: pio.Project, tmp_path: Path
) -> None:
    """A jsonl connector outside PREVISIO_LOCAL_ROOTS is refused by the driver's check_config."""
    with pytest.raises(pio.ValidationError) as info:
        plugin_project.create_connector("elsewhere", type="jsonl", database=str(tmp_path))
    assert info.value.code == "root_not_allowed"
