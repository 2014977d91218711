"""Connectors: creation with the driver's checks, updates that never carry a secret to a new place, deletion
with what uses the connector, and the public view that names secrets without showing them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..drivers import ConnectorConfig, driver_class
from ..errors import Conflict
from ..models import Connector, DataSource, Export, Exporter
from ..schemas import ConnectorPublic
from .common import ensure_unique_name

#: Stands for a secret a restored connector lacks while its driver checks the settings; never stored.
PLACEHOLDER = "\x00previsio-missing-secret"
#: Secrets a driver parses (a private key): they cannot be stood for, a placeholder password stands instead.
_PARSED_SECRETS = frozenset({"private_key", "passphrase"})
#: The settings of a connector besides its name, type and secrets.
SETTINGS = ("driver", "host", "port", "username", "database", "options")


def public(vault: Any, row: Connector) -> ConnectorPublic:
    """The public view of a connector: which secrets are set, never their values."""
    secret_names = sorted(vault.decrypt(row.secret_enc)) if row.secret_enc else []
    return ConnectorPublic(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        type=row.type,
        driver=row.driver,
        host=row.host,
        port=row.port,
        username=row.username,
        database=row.database,
        options=row.options or {},
        has_password="password" in secret_names,
        secret_fields=secret_names,
        needs_credentials=bool(row.needs_credentials),
        created_at=row.created_at,
    )


def with_placeholders(secrets: dict[str, Any], missing: list[str]) -> dict[str, Any]:
    """``secrets`` plus a placeholder for each missing one, so the driver's checks pass without them."""
    out = dict(secrets)
    for name in missing:
        if name in out:
            continue
        if name in _PARSED_SECRETS:
            out.setdefault("password", PLACEHOLDER)
        else:
            out[name] = PLACEHOLDER
    return out


def _real(secrets: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in secrets.items() if v != PLACEHOLDER}


def _checked(cls: Any, config: ConnectorConfig, settings: Any) -> ConnectorConfig:
    """The driver's checks of a connector about to be stored; its settings completed (see settle_config)."""
    driver = cls(config, settings=settings)
    driver.check_config()
    driver.check_network()
    # An SQL server on an unusual port: which protocol it speaks (a handshake, a few seconds at most).
    return driver.settle_config()


def create(
    session: Session,
    vault: Any,
    settings: Any,
    project_id: str,
    name: str,
    type: str,
    fields: dict[str, Any],
    secrets: dict[str, Any],
    missing_secrets: list[str],
) -> Connector:
    """Create a connector whose driver accepted its settings (nothing of the remote system is read).

    Args:
        session: The metadata session (the caller commits).
        vault: Encrypts the secrets.
        settings: The platform's settings (the driver's policy).
        project_id: The project.
        name: Unique in the project.
        type: The connector type (a registered driver).
        fields: The settings of :data:`SETTINGS` given.
        secrets: The secrets given.
        missing_secrets: Secrets its source had and this copy lacks (a restored connector).

    Raises:
        Invalid: The driver refused a setting.
        Conflict: The name is taken.
    """
    cls = driver_class(type)
    config = cls.normalize_config(
        ConnectorConfig(type=type, secrets=with_placeholders(secrets, missing_secrets), **fields)
    )
    config = _checked(cls, config, settings)
    ensure_unique_name(session, Connector, project_id, name, "connector")
    stored = _real(config.secrets)
    row = Connector(
        project_id=project_id,
        name=name,
        type=config.type,
        secret_enc=vault.encrypt(stored),
        needs_credentials=stored != config.secrets,
        **{key: getattr(config, key) for key in SETTINGS},
    )
    session.add(row)
    session.flush()
    return row


def update(
    session: Session,
    vault: Any,
    settings: Any,
    row: Connector,
    name: str | None,
    changes: dict[str, Any],
    given: dict[str, Any],
) -> Connector:
    """Change a connector's settings or credentials; datasources using it keep working.

    Moving the connector (another host, port, or anything else its driver's ``destination`` names)
    without giving its secrets again clears the stored ones and marks it ``needs_credentials``: an editor
    cannot send a colleague's password to a server of their choice.

    Args:
        session: The metadata session (the caller commits).
        vault: Decrypts and encrypts the secrets.
        settings: The platform's settings.
        row: The connector.
        name: Its new name, or None.
        changes: The settings of :data:`SETTINGS` changed.
        given: The secrets given (they replace the stored ones of the same name).

    Raises:
        Invalid: The driver refused a setting.
        Conflict: The new name is taken.
    """
    stored = vault.decrypt(row.secret_enc)
    secrets = {**stored, **given}
    sets_credentials = bool(given)
    if row.needs_credentials and not sets_credentials:
        # A rename of a connector still waiting for its secrets: its driver checks the rest without them.
        secrets = with_placeholders(secrets, ["password"])
    current = {k: getattr(row, k) for k in SETTINGS}
    merged = {**current, **changes}
    if "host" in changes and "port" not in changes and merged["driver"] != "sqlite":
        merged["port"] = None if "://" in (changes["host"] or "") else merged["port"]
    cls = driver_class(row.type)
    config = cls.normalize_config(
        ConnectorConfig(
            type=row.type, secrets=secrets, **{**merged, "options": dict(merged["options"] or {})}
        )
    )
    config = _checked(cls, config, settings)
    before = ConnectorConfig(type=row.type, **{**current, "options": dict(current["options"] or {})})
    moved = cls.destination(before) != cls.destination(config)
    if moved and not sets_credentials and any(v != PLACEHOLDER for v in stored.values()):
        config = config.evolve(secrets={})
        row.needs_credentials = True
    elif moved:
        config = config.evolve(secrets=given)  # only what this request gave: nothing carried to the new place
    if name is not None:
        ensure_unique_name(session, Connector, row.project_id, name, "connector", exclude_id=row.id)
        row.name = name
    for key in SETTINGS:
        setattr(row, key, getattr(config, key))
    row.secret_enc = vault.encrypt(_real(config.secrets))
    if sets_credentials:
        row.needs_credentials = False
    return row


def delete(session: Session, row: Connector, force: bool) -> None:
    """Delete a connector; refused while datasources or exporters use it, unless ``force`` (they go too).

    Raises:
        Conflict: It is used and ``force`` is False (the message and details name the users).
    """
    users = list(session.scalars(select(DataSource).where(DataSource.connector_id == row.id)))
    exporters = list(session.scalars(select(Exporter).where(Exporter.connector_id == row.id)))
    if (users or exporters) and not force:
        used_by = []
        if users:
            used_by.append(f"datasources {', '.join(repr(d.name) for d in users)}")
        if exporters:
            used_by.append(f"exporters {', '.join(repr(e.name) for e in exporters)}")
        raise Conflict(
            f"Connector {row.name!r} is used by {' and '.join(used_by)}; delete them first or pass "
            "force=true.",
            {
                "datasources": [{"id": d.id, "name": d.name} for d in users],
                "exporters": [{"id": e.id, "name": e.name} for e in exporters],
            },
        )
    for ds in users:
        session.delete(ds)
    for exporter in exporters:
        delete_exporter(session, exporter)
    session.flush()  # the users go first: the database would otherwise cascade them away under the ORM
    session.delete(row)


def delete_exporter(session: Session, exporter: Exporter) -> None:
    """Delete an exporter and the record of its exports (what they wrote stays where it is)."""
    for export in session.scalars(select(Export).where(Export.exporter_id == exporter.id)):
        session.delete(export)
    session.flush()
    session.delete(exporter)
