"""The ``previsio`` command: ``serve``, ``quickstart``, ``local``, and ``user``, ``token``, ``rotate-key``."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from importlib.resources import as_file, files
from pathlib import Path

SAMPLE_DB = "sample.db"


def _serve(args: argparse.Namespace) -> int:
    try:
        from .server.serve import serve
    except ImportError as exc:  # the SDK alone: the platform is the [platform] extra
        print(
            f"The platform is not installed ({exc.name} is missing): pip install 'previsio_sdk[platform]'.",
            file=sys.stderr,
        )
        return 1
    serve(args.host, args.port, args.home, log_level=args.log_level)
    return 0


def sample_database() -> Path:
    """Path of the sample SQLite database shipped with the package."""
    with as_file(files("previsio_sdk") / "data" / SAMPLE_DB) as path:
        return Path(path)


def quickstart(client: object | None = None, out: object = None) -> object:
    """Run the main job end to end on the sample database and print the resulting dataset.

    Creates (or reuses) the project ``quickstart``, an SQLite connector to the sample database and a
    datasource on its ``orders`` table, then takes a snapshot into a new, time-stamped dataset.

    Returns:
        The new :class:`~previsio_sdk.Dataset`.
    """
    import previsio_sdk as pio

    out = out or sys.stdout
    client = client or pio.Client()
    print(f"Platform: {client.url}", file=out)
    project = next((p for p in pio.Project.list(client) if p.name == "quickstart"), None)
    if project is None:
        project = pio.Project.new(
            "quickstart", description="Created by `previsio quickstart`.", client=client
        )
    connector = next((c for c in project.list_connectors() if c.name == "sample-sqlite"), None)
    if connector is None:
        connector = project.create_sql_connector(
            "sample-sqlite", driver="sqlite", database=str(sample_database())
        )
    datasource = next((d for d in project.list_datasource() if d.name == "orders"), None)
    if datasource is None:
        datasource = project.create_datasource(connector, "orders", table="orders")
    taken = {d.name for d in project.list_datasets()}
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    name = f"orders-{stamp}"
    n = 1
    while name in taken:
        n += 1
        name = f"orders-{stamp}-{n}"
    dataset = project.create_dataset(name, datasource=datasource)
    print(f"Dataset: {dataset.name} (id {dataset.id})", file=out)
    print(f"Rows: {dataset.num_rows}", file=out)
    print("Schema:", file=out)
    for col in dataset.schema:
        print(f"  {col.name}: {col.type}", file=out)
    print("First rows:", file=out)
    print(dataset.head(5).to_string(index=False), file=out)
    return dataset


def _quickstart(args: argparse.Namespace) -> int:
    import previsio_sdk as pio

    try:
        client = pio.Client(url=args.url, home=args.home)
        quickstart(client)
    except pio.PrevisioError as exc:
        print(f"quickstart failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _local(args: argparse.Namespace) -> int:
    from .config import home_dir
    from .local import status_message, stop_local_platform

    home = home_dir(args.home)
    if args.action == "stop":
        print("stopped" if stop_local_platform(home) else "no local platform is running")
        return 0
    print(status_message(home))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``previsio`` command."""
    parser = argparse.ArgumentParser(prog="previsio", description="previsio_sdk command line.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the platform for remote users")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000; 0: any free)")
    serve.add_argument(
        "--home", type=Path, default=None, help="platform home (default $PREVISIO_HOME or ~/.previsio)"
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.set_defaults(func=_serve)

    qs = sub.add_parser("quickstart", help="snapshot the sample database on the local platform and show it")
    qs.add_argument(
        "--url", default=None, help="platform URL (default: $PREVISIO_URL, else the local platform)"
    )
    qs.add_argument("--home", type=Path, default=None, help="home of the local platform")
    qs.set_defaults(func=_quickstart)

    local = sub.add_parser("local", help="status of, or stop, the embedded local platform")
    local.add_argument("action", nargs="?", default="status", choices=["status", "stop"])
    local.add_argument("--home", type=Path, default=None)
    local.set_defaults(func=_local)

    from .server.commands import add_commands  # argparse only: the platform is imported when one runs

    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``previsio`` command."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
