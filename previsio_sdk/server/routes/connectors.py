"""Connectors: address and credentials of a remote system."""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from ..core import Platform
from ..deps import (
    Caller,
    CurrentUser,
    PageDep,
    PlatformDep,
    SessionDep,
    SessionRoute,
    paginate,
    project_for,
    resource_for,
)
from ..drivers import ConnectorConfig
from ..jobs import connector_config
from ..models import Connector, User
from ..remote import RemoteTimeout, call_remote
from ..schemas import (
    NO_NUL,
    ConnectorCreate,
    ConnectorPublic,
    ConnectorTest,
    ConnectorUpdate,
    FileEntry,
    NameList,
    Page,
    SecretsExport,
    SecretsExportRequest,
)
from ..secret_export import encrypt_secrets
from ..services import connectors

router = APIRouter(tags=["connectors"], route_class=SessionRoute)


def connector_public(platform: Any, row: Connector) -> ConnectorPublic:
    """The public view of a connector: which secrets are set, never their values."""
    return connectors.public(platform.vault, row)


def _secrets(password: Any, secrets: dict[str, Any] | None) -> dict[str, Any]:
    out = {k: v.get_secret_value() for k, v in (secrets or {}).items()}
    if password is not None:
        out["password"] = password.get_secret_value()
    return out


@router.post("/projects/{project_id}/connectors", status_code=201, response_model=ConnectorPublic)
def create_connector(
    project_id: str, body: ConnectorCreate, session: SessionDep, user: CurrentUser, platform: PlatformDep
) -> ConnectorPublic:
    """Create a connector; its settings are checked by its driver (only an SQL server on an unusual port is
    asked which protocol it speaks)."""
    project = project_for(session, user, project_id)
    fields = {key: getattr(body, key) for key in connectors.SETTINGS}
    fields["options"] = dict(body.options)
    row = connectors.create(
        session,
        platform.vault,
        platform.settings,
        project.id,
        body.name,
        body.type,
        fields,
        _secrets(body.password, body.secrets),
        body.missing_secrets,
    )
    return connector_public(platform, row)


@router.get("/projects/{project_id}/connectors", response_model=Page[ConnectorPublic])
def list_connectors(
    project_id: str, session: SessionDep, user: CurrentUser, platform: PlatformDep, params: PageDep
) -> dict:
    """The connectors of a project, oldest first."""
    project = project_for(session, user, project_id, min_role="viewer")
    stmt = (
        select(Connector)
        .where(Connector.project_id == project.id)
        .order_by(Connector.created_at, Connector.id)
    )
    rows, total = paginate(session, stmt, params)
    items = [connector_public(platform, r) for r in rows]
    return params.envelope(items, total)


@router.get("/connectors/{connector_id}", response_model=ConnectorPublic)
def get_connector(
    connector_id: str, session: SessionDep, user: CurrentUser, platform: PlatformDep
) -> ConnectorPublic:
    """One connector."""
    row = resource_for(session, user, Connector, connector_id, "connector", min_role="viewer")
    return connector_public(platform, row)


@router.patch("/connectors/{connector_id}", response_model=ConnectorPublic)
def update_connector(
    connector_id: str, body: ConnectorUpdate, session: SessionDep, user: CurrentUser, platform: PlatformDep
) -> ConnectorPublic:
    """Change a connector's settings or credentials; datasources using it keep working.

    Moving the connector (another host, port, or anything else its driver's :meth:`~Driver.destination`
    names) without giving its secrets again clears the stored ones and marks it ``needs_credentials``: an
    editor cannot send a colleague's password to a server of their choice.
    """
    row = resource_for(session, user, Connector, connector_id, "connector")
    changes = {k: getattr(body, k) for k in connectors.SETTINGS if k in body.model_fields_set}
    given = _secrets(body.password, body.secrets)
    connectors.update(session, platform.vault, platform.settings, row, body.name, changes, given)
    return connector_public(platform, row)


@router.delete("/connectors/{connector_id}", status_code=204)
def delete_connector(
    connector_id: str,
    session: SessionDep,
    user: CurrentUser,
    force: Annotated[
        bool, Query(description="Also delete the datasources and exporters that use it.")
    ] = False,
) -> Response:
    """Delete a connector; refused while datasources or exporters use it, unless ``force``."""
    row = resource_for(session, user, Connector, connector_id, "connector")
    connectors.delete(session, row, force)
    return Response(status_code=204)


def _remote_target(platform: Platform, user: User, connector_id: str) -> tuple[Connector, ConnectorConfig]:
    """In a short session of its own: the connector the caller may use (editor) and its driver's config.

    Routes that call the remote system run this in a worker thread, then call it with no session open.
    """
    with platform.db.session() as session:
        row = resource_for(session, user, Connector, connector_id, "connector")
        return row, connector_config(platform, row)


@router.post("/connectors/{connector_id}/test", response_model=ConnectorTest)
async def test_connector(connector_id: str, user: Caller, platform: PlatformDep) -> ConnectorTest:
    """Try to connect; a failure is reported in the body (``ok: false``), not as an error status.

    A system that does not answer within ``remote_call_timeout_seconds`` gives ``ok: false`` with the code
    ``timeout``.
    """
    row, config = await to_thread.run_sync(_remote_target, platform, user, connector_id)
    if row.needs_credentials:
        return ConnectorTest(
            ok=False,
            code="needs_credentials",
            message=(
                f"Connector {row.name!r} has no secrets: it was restored without them, or its address "
                "changed without them being given again. Set them with an update."
            ),
        )
    try:
        outcome = await call_remote(platform, config, "test")
    except RemoteTimeout as exc:
        return ConnectorTest(ok=False, code=exc.code, message=exc.message)
    return ConnectorTest(ok=outcome.ok, code=outcome.code, message=outcome.message)


@router.post("/connectors/{connector_id}/secrets/export", response_model=SecretsExport)
def export_secrets(
    connector_id: str,
    body: SecretsExportRequest,
    session: SessionDep,
    user: CurrentUser,
    platform: PlatformDep,
) -> SecretsExport:
    """The connector's secrets encrypted with a key derived from ``passphrase`` (owners only), for a backup.

    The platform keeps no copy of the passphrase; only the SDK holding it can decrypt the answer.
    """
    row = resource_for(session, user, Connector, connector_id, "connector", min_role="owner")
    secrets = platform.vault.decrypt(row.secret_enc) if row.secret_enc else {}
    return SecretsExport(**encrypt_secrets(secrets, body.passphrase.get_secret_value()))


@router.get("/connectors/{connector_id}/databases", response_model=NameList)
async def list_databases(connector_id: str, user: Caller, platform: PlatformDep) -> NameList:
    """The databases the connector's credentials can see."""
    _row, config = await to_thread.run_sync(_remote_target, platform, user, connector_id)
    return NameList(items=await call_remote(platform, config, "list_databases"))


@router.get("/connectors/{connector_id}/tables", response_model=NameList)
async def list_tables(
    connector_id: str,
    user: Caller,
    platform: PlatformDep,
    database: Annotated[str | None, Query(max_length=1000, pattern=NO_NUL)] = None,
) -> NameList:
    """The tables (and views) of a database; the connector's default database when none is given."""
    _row, config = await to_thread.run_sync(_remote_target, platform, user, connector_id)
    return NameList(items=await call_remote(platform, config, "list_tables", database))


@router.get("/connectors/{connector_id}/files", response_model=Page[FileEntry])
async def list_files(
    connector_id: str,
    user: Caller,
    platform: PlatformDep,
    params: PageDep,
    path: Annotated[str, Query(max_length=4000, pattern=NO_NUL)] = "",
    bucket: Annotated[str | None, Query(max_length=1000, pattern=NO_NUL)] = None,
) -> dict:
    """The files under ``path`` (file and object-store connectors)."""
    _row, config = await to_thread.run_sync(_remote_target, platform, user, connector_id)
    return params.window(await call_remote(platform, config, "list_files", path, bucket))
