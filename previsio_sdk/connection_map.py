"""Connection maps: a project's connectors by name, loaded from configuration and checked.

A configuration maps connector names to their settings, as a dict or a YAML or JSON file::

    warehouse:
      driver: postgresql
      host: db.example.com
      port: 5432
      username: analyst
      password: ${WAREHOUSE_PASSWORD}
      database: sales
    local:
      driver: sqlite
      database: data/local.db

:func:`parse_connector_config` checks every entry before anything is created, and reports every problem at
once; :meth:`Project.add_connectors <previsio_sdk.Project.add_connectors>` creates (or replaces) the
connectors; :class:`ConnectorMap` is what :attr:`Project.connectors <previsio_sdk.Project.connectors>`
returns.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs

from .connectors import Connector
from .errors import ConfigurationError, ConflictError, ConnectorNotFoundError, PrevisioError

if TYPE_CHECKING:
    from .client import Client
    from .project import Project

#: Settings :meth:`Connector.update` sends to the platform.
UPDATABLE_KEYS = frozenset(
    {"name", "driver", "host", "port", "username", "password", "database", "options", "secrets"}
)

_ENV_VAR = re.compile(r"\$\{([^}]*)\}")
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@attrs.define(frozen=True)
class _Key:
    """Where a configuration key goes in the platform's connector description, and its Python type."""

    kind: type | tuple[type, ...]
    to: str  # "field", "option" or "secret"
    name: str


def _keys(**spec: tuple[type | tuple[type, ...], str, str]) -> dict[str, _Key]:
    return {key: _Key(*value) for key, value in spec.items()}


_STR, _INT, _BOOL = str, int, bool
_COMMON = {"type": _Key(str, "meta", "type")}

#: The keys each connector type accepts, with their type and where they go.
CONFIG_KEYS: dict[str, dict[str, _Key]] = {
    "sql": _keys(
        driver=(_STR, "field", "driver"),
        host=(_STR, "field", "host"),
        port=(_INT, "field", "port"),
        username=(_STR, "field", "username"),
        password=(_STR, "field", "password"),
        database=(_STR, "field", "database"),
    ),
    "ftp": _keys(
        host=(_STR, "field", "host"),
        port=(_INT, "field", "port"),
        username=(_STR, "field", "username"),
        password=(_STR, "field", "password"),
        root=(_STR, "option", "root"),
        tls=(_BOOL, "option", "tls"),
    ),
    "sftp": _keys(
        host=(_STR, "field", "host"),
        port=(_INT, "field", "port"),
        username=(_STR, "field", "username"),
        password=(_STR, "field", "password"),
        private_key=(_STR, "secret", "private_key"),
        passphrase=(_STR, "secret", "passphrase"),
        host_key=(_STR, "option", "host_key"),
        root=(_STR, "option", "root"),
    ),
    "s3": _keys(
        username=(_STR, "field", "username"),
        access_key=(_STR, "field", "username"),
        password=(_STR, "field", "password"),
        secret_key=(_STR, "field", "password"),
        host=(_STR, "field", "host"),
        endpoint_url=(_STR, "field", "host"),
        port=(_INT, "field", "port"),
        region=(_STR, "option", "region"),
        bucket=(_STR, "option", "bucket"),
        root=(_STR, "option", "root"),
        addressing_style=(_STR, "option", "addressing_style"),
    ),
    "gcs": _keys(
        credentials=(_STR, "secret", "credentials"),
        host=(_STR, "field", "host"),
        endpoint_url=(_STR, "field", "host"),
        project=(_STR, "option", "project"),
        bucket=(_STR, "option", "bucket"),
        root=(_STR, "option", "root"),
    ),
    "local": _keys(root=(_STR, "option", "root")),
    "http": _keys(
        host=(_STR, "field", "host"),
        url=(_STR, "field", "host"),
        port=(_INT, "field", "port"),
        username=(_STR, "field", "username"),
        password=(_STR, "field", "password"),
        token=(_STR, "secret", "token"),
    ),
}

#: Keys of a type the SDK does not know (a driver plug-in's): sent as they are, checked by the platform.
_GENERIC_KEYS = _keys(
    driver=(_STR, "field", "driver"),
    host=(_STR, "field", "host"),
    port=(_INT, "field", "port"),
    username=(_STR, "field", "username"),
    password=(_STR, "field", "password"),
    database=(_STR, "field", "database"),
    options=(dict, "options", "options"),
    secrets=(dict, "secrets", "secrets"),
)

_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", dict: "a mapping"}


def load_config(config: Mapping[str, Any] | str | os.PathLike[str]) -> tuple[dict[str, Any], Path]:
    """Read a connection configuration: a mapping, or the path of a YAML (``.yaml``/``.yml``) or JSON file.

    Returns:
        The configuration and the directory relative paths in it are resolved against (the file's, or the
        current directory for a mapping).

    Raises:
        ConfigurationError: The file cannot be read or parsed, or does not hold a mapping.
    """
    if isinstance(config, Mapping):
        return dict(config), Path.cwd()
    path = Path(config).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"Cannot read the connection configuration {str(path)!r}: {exc}") from None
    is_yaml = path.suffix.lower() in (".yaml", ".yml")
    try:
        if is_yaml:
            try:
                import yaml
            except ImportError:  # pragma: no cover - pyyaml is an optional dependency
                raise ConfigurationError("Reading YAML needs pyyaml: pip install pyyaml") from None
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except ConfigurationError:
        raise
    except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError (which is no ValueError)
        kind = "YAML" if is_yaml else "JSON"
        raise ConfigurationError(f"{str(path)!r} is not valid {kind}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{str(path)!r} must hold a mapping of connector names to their settings.")
    return data, path.resolve().parent


def _expand(value: Any, where: str, problems: list[str], environ: Mapping[str, str]) -> Any:
    """``value`` with each ``${VAR}`` replaced by the variable's value; a missing variable is a problem."""
    if isinstance(value, dict):
        return {k: _expand(v, f"{where}.{k}", problems, environ) for k, v in value.items()}
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if not _VAR_NAME.match(name):
            problems.append(f"{where}: ${{{name}}} is not a valid environment variable reference")
            return ""
        if name not in environ:
            problems.append(f"{where}: environment variable {name} is not set")
            return ""
        return environ[name]

    return _ENV_VAR.sub(substitute, value)


def _conform(value: Any, kind: type | tuple[type, ...]) -> tuple[bool, Any]:
    """Whether ``value`` fits ``kind`` (an integer may be written as digits, as an expanded variable is)."""
    if kind is int:
        if isinstance(value, bool):
            return False, value
        if isinstance(value, int):
            return True, value
        if isinstance(value, str) and value.strip().isdigit():
            return True, int(value)
        return False, value
    if kind is bool and isinstance(value, str) and value.lower() in ("true", "false"):
        return True, value.lower() == "true"
    return isinstance(value, kind), value


@attrs.define
class ConnectorSpec:
    """One checked entry of a connection configuration, ready to send to the platform.

    Attributes:
        name: Connector name.
        type: Connector type (``sql``, ``s3``...).
        body: The platform's connector description (secrets included; never printed).
    """

    name: str
    type: str
    body: dict[str, Any] = attrs.field(repr=False)


def parse_connector_config(
    config: Mapping[str, Any],
    base_dir: Path | None = None,
    on_this_machine: bool = True,
    environ: Mapping[str, str] | None = None,
) -> list[ConnectorSpec]:
    """Check a connection configuration and turn it into connector descriptions.

    Every entry is checked before anything is reported, and every problem is reported, as
    ``name.key: problem``: a missing ``driver``/``type``, a missing address (host, SQLite database file,
    local root), an unknown key, a value of the wrong type, an unset environment variable.

    Args:
        config: Connector names mapped to their settings.
        base_dir: Directory relative SQLite files and local roots are resolved against.
        on_this_machine: Whether the platform runs on this machine (relative paths are resolved only then).
        environ: Where ``${VAR}`` values come from; ``os.environ`` when None.

    Returns:
        One spec per connector, in the configuration's order.

    Raises:
        ConfigurationError: The configuration has problems; ``details`` lists them all.
    """
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    specs: list[ConnectorSpec] = []
    if not config:
        raise ConfigurationError("The connection configuration is empty.", details=["(config): empty"])
    for name, settings in config.items():
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{name!r}: a connector name must be a non-empty string")
            continue
        if not isinstance(settings, Mapping):
            problems.append(f"{name}: settings must be a mapping of keys to values, not {settings!r}")
            continue
        spec = _parse_one(name, dict(settings), base_dir or Path.cwd(), on_this_machine, environ, problems)
        if spec is not None:
            specs.append(spec)
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ConfigurationError(
            f"The connection configuration has {len(problems)} problem(s):\n{listing}", details=problems
        )
    return specs


def _parse_one(
    name: str,
    settings: dict[str, Any],
    base_dir: Path,
    on_this_machine: bool,
    environ: Mapping[str, str],
    problems: list[str],
) -> ConnectorSpec | None:
    before = len(problems)
    settings = _expand(settings, name, problems, environ)
    ctype = settings.get("type")
    if ctype is None:
        if "driver" not in settings:
            problems.append(f"{name}.driver: missing: give driver (an SQL database) or type (ftp, s3...)")
            return None
        ctype = "sql"
    if not isinstance(ctype, str) or not ctype:
        problems.append(f"{name}.type: must be a connector type name such as 'sql' or 's3'")
        return None
    known = CONFIG_KEYS.get(ctype, _GENERIC_KEYS)
    body: dict[str, Any] = {"name": name, "type": ctype, "options": {}, "secrets": {}}
    wrong: set[str] = set()  # settings already reported as of the wrong type: not "missing" as well
    for key, value in settings.items():
        if key == "type":
            continue
        spec = known.get(key)
        if spec is None:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(sorted(known))}"
            problems.append(f"{name}.{key}: unknown key for a {ctype} connector{hint}")
            continue
        if value is None:
            continue
        ok, value = _conform(value, spec.kind)
        if not ok:
            expected = _TYPE_NAMES.get(spec.kind, str(spec.kind))  # type: ignore[call-overload]
            problems.append(f"{name}.{key}: must be {expected}, not {type(value).__name__} {value!r}")
            wrong.add(spec.name)
            continue
        if spec.to == "field":
            body[spec.name] = value
        elif spec.to == "option":
            body["options"][spec.name] = value
        elif spec.to == "secret":
            body["secrets"][spec.name] = value
        else:
            body[spec.name] = {**body[spec.name], **value}
    if ctype == "sql":
        driver = body.get("driver")
        if not driver and "driver" not in wrong:
            problems.append(f"{name}.driver: missing: postgresql, mysql or sqlite")
        elif driver == "sqlite":
            if not body.get("database") and "database" not in wrong:
                problems.append(f"{name}.database: missing: the SQLite database file")
            elif body.get("database") and on_this_machine and not os.path.isabs(body["database"]):
                body["database"] = str((base_dir / body["database"]).resolve())
        elif not body.get("host") and "host" not in wrong and driver:
            problems.append(f"{name}.host: missing: the address of the {driver} server")
    elif ctype in ("ftp", "sftp", "http") and not body.get("host") and "host" not in wrong:
        problems.append(f"{name}.host: missing: the address of the {ctype} server")
    elif ctype == "local":
        root = body["options"].get("root")
        if not root and "root" not in wrong:
            problems.append(f"{name}.root: missing: the directory on the platform's machine")
        elif root and on_this_machine and not os.path.isabs(root):
            body["options"]["root"] = str((base_dir / root).resolve())
    if len(problems) > before:
        return None
    return ConnectorSpec(name=name, type=ctype, body=body)


def on_this_machine(client: Client) -> bool:
    """Whether the platform of ``client`` runs on this machine (the embedded one, or a loopback URL)."""
    host = urlsplit(client.url).hostname or ""
    return client.is_local or host in ("127.0.0.1", "localhost", "::1")


def add_connectors(
    project: Project, config: Mapping[str, Any] | str | os.PathLike[str], override_existing: bool = False
) -> list[Connector]:
    """Create (or with ``override_existing`` replace) the connectors of a configuration, all or nothing.

    See :meth:`Project.add_connectors <previsio_sdk.Project.add_connectors>`.
    """
    data, base_dir = load_config(config)
    specs = parse_connector_config(data, base_dir, on_this_machine(project.client))
    existing = {c.name: c for c in project.list_connectors()}
    clashes = [s.name for s in specs if s.name in existing]
    if clashes and not override_existing:
        raise ConflictError(
            f"The project already has connector(s) {', '.join(repr(n) for n in clashes)}; "
            "pass override_existing=True to replace their settings.",
            code="conflict",
            details={"names": clashes},
        )
    wrong_type = [s for s in specs if s.name in existing and existing[s.name].type != s.type]
    if wrong_type:
        problems = [
            f"{s.name}.type: the existing connector is of type {existing[s.name].type!r}, not {s.type!r}; "
            "delete it first to change its type"
            for s in wrong_type
        ]
        raise ConfigurationError("Cannot override: " + "; ".join(problems), details=problems)
    created: list[Connector] = []
    replaced: list[tuple[Connector, dict[str, Any]]] = []
    results: list[Connector] = []
    try:
        for spec in specs:
            if spec.name in existing:
                old = existing[spec.name]
                previous = {k: getattr(old, k) for k in ("driver", "host", "port", "username", "database")}
                previous["options"] = dict(old.options)
                changes = {k: spec.body.get(k) for k in ("driver", "host", "port", "username", "database")}
                changes["options"] = spec.body["options"]
                if spec.body.get("password") is not None:
                    changes["password"] = spec.body["password"]
                if spec.body["secrets"]:
                    changes["secrets"] = spec.body["secrets"]
                old.update(**changes)
                replaced.append((old, previous))
                results.append(old)
            else:
                connector = project._create_connector(spec.body)
                created.append(connector)
                results.append(connector)
    except PrevisioError:
        for connector in created:
            _quietly(connector.delete)
        for connector, previous in replaced:
            _quietly(lambda c=connector, p=previous: c.update(**p))
        raise
    return results


def _quietly(action: Any) -> None:
    try:
        action()
    except PrevisioError:
        pass


def connector_address(connector: Connector) -> str:
    """Where a connector points, for display: ``host:port/database``, a database file or a root; no secret."""
    options = connector.options or {}
    if connector.type == "sql" and connector.driver == "sqlite":
        return connector.database or ""
    if connector.type == "local":
        return str(options.get("root", ""))
    where = connector.host or ("AWS" if connector.type == "s3" else "")
    if connector.port and connector.host and "://" not in connector.host:
        where = f"{where}:{connector.port}"
    for extra in (connector.database, options.get("bucket"), options.get("root")):
        if extra:
            where = f"{where}/{str(extra).lstrip('/')}"
    return where


class ConnectorMap(Mapping[str, Connector]):
    """A project's connectors by name (a read-only mapping, fetched when built).

    ``connectors["warehouse"]`` returns the connector; an unknown name raises
    :class:`~previsio_sdk.errors.ConnectorNotFoundError` (a :class:`KeyError`) suggesting close names.
    The ``repr`` lists names, types and addresses, never a secret.
    """

    def __init__(self, project_name: str, connectors: list[Connector]) -> None:
        self.project_name = project_name
        self._by_name = {c.name: c for c in connectors}

    def __getitem__(self, name: str) -> Connector:
        try:
            return self._by_name[name]
        except KeyError:
            pass
        close = difflib.get_close_matches(str(name), list(self._by_name), n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        known = f" Known: {', '.join(repr(n) for n in self._by_name)}." if self._by_name else " It has none."
        raise ConnectorNotFoundError(
            f"Project {self.project_name!r} has no connector named {name!r}.{hint}{known}",
            code="not_found",
            details={"name": name, "suggestions": close},
        )

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def __repr__(self) -> str:
        if not self._by_name:
            return f"<ConnectorMap of {self.project_name!r}: no connectors>"
        rows = []
        for c in self._by_name.values():
            kind = f"{c.type}/{c.driver}" if c.driver else c.type
            flag = "  [needs credentials]" if c.needs_credentials else ""
            rows.append((c.name, kind, connector_address(c) + flag))
        widths = [max(len(r[i]) for r in rows) for i in range(2)]
        lines = [f"  {n:<{widths[0]}}  {k:<{widths[1]}}  {a}".rstrip() for n, k, a in rows]
        return f"<ConnectorMap of {self.project_name!r}: {len(rows)} connector(s)>\n" + "\n".join(lines)
