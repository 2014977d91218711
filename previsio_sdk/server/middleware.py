"""ASGI middleware guarding the API: request body limits and idempotent creation requests.

Both are plain ASGI middleware (no ``BaseHTTPMiddleware``), so uploads keep streaming and errors keep the
platform's JSON shape.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from anyio import to_thread
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .access import Role, project_for, resource_for
from .auth import user_for_token
from .errors import PlatformError
from .models import Connector, Dataset, DataSource, Export, Exporter, IdempotencyRecord, Job, User, utcnow

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .core import Platform

log = logging.getLogger(__name__)

#: Routes whose body is a file, streamed to disk and limited by ``max_upload_bytes`` instead of
#: ``max_request_bytes``.
UPLOAD_ROUTES: list[re.Pattern[str]] = [
    re.compile(r"^/api/v1/projects/[^/]+/datasets/upload/?$"),
    re.compile(r"^/api/v1/exporters/[^/]+/exports/upload/?$"),
    re.compile(r"^/api/v1/exporters/[^/]+/exports/upload/?$"),
]

#: Routes whose answers hold secrets (a new token, passphrase-encrypted connector secrets): never kept for a
#: replay, whatever their headers say, so that no copy lands in the metadata store.
NEVER_KEPT: list[re.Pattern[str]] = [
    re.compile(r"^/api/v1/users/[^/]+/tokens/?$"),
    re.compile(r"/secrets(/|$)"),
]

#: What a replayed answer refers to, checked again before it is replayed (IdempotencyMiddleware._access_now).
PROJECT_ROUTES = re.compile(r"^/api/v1/projects/([^/]+)(?:/(members)(?:/|$))?")
RESOURCE_ROUTES = re.compile(r"^/api/v1/(connectors|datasources|datasets|exporters|exports|jobs)/([^/]+)")
RESOURCE_MODELS: dict[str, Any] = {
    "connectors": Connector,
    "datasources": DataSource,
    "datasets": Dataset,
    "exporters": Exporter,
    "exports": Export,
    "jobs": Job,
}
ADMIN_ROUTES = re.compile(r"^/api/v1/(users|tokens)(/|$)")

IDEMPOTENCY_HEADER = "Idempotency-Key"
#: An idempotency key: 1 to 255 visible ASCII characters.
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
#: Answers larger than this are not kept for replays (creation answers are a few hundred bytes).
MAX_REPLAY_BYTES = 1024 * 1024


def _error(scope: Scope, status: int, code: str, message: str, details: Any = None) -> tuple[dict, bytes]:
    request_id = (scope.get("state") or {}).get("request_id")
    body = json.dumps(
        {"error": {"code": code, "message": message, "details": details, "request_id": request_id}}
    ).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    }
    return start, body


async def _send_error(scope: Scope, send: Send, status: int, code: str, message: str) -> None:
    start, body = _error(scope, status, code, message)
    await send(start)
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key == name:
            return value.decode("latin-1")
    return None


def is_upload(path: str) -> bool:
    """Whether ``path`` is a route whose body is an uploaded file."""
    return any(p.match(path) for p in UPLOAD_ROUTES)


class BodyLimitMiddleware:
    """Answers 413 ``payload_too_large`` to a request body over ``max_request_bytes``.

    The declared ``Content-Length`` is checked first; a body sent without one (chunked) is read up to the
    limit before the route runs, so the route never sees more. Upload routes are left to their own, larger
    limit.
    """

    def __init__(self, app: ASGIApp, platform: Platform) -> None:
        self.app = app
        self.platform = platform

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_upload(scope["path"]):
            await self.app(scope, receive, send)
            return
        limit = self.platform.settings.max_request_bytes
        message = f"The request body exceeds the limit of {limit} bytes."
        declared = _header(scope, b"content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await _send_error(scope, send, 413, "payload_too_large", message)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await receive()
            if event["type"] != "http.request":  # the client went away
                return
            chunk = event.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _send_error(scope, send, 413, "payload_too_large", message)
                return
            chunks.append(chunk)
            if not event.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class IdempotencyMiddleware:
    """Makes a ``POST`` sent with an ``Idempotency-Key`` header safe to send again.

    The first request with a key runs normally; its answer, when successful (2xx), is kept for
    ``idempotency_ttl_seconds`` under (caller, key), with a digest of the request. The same request sent again
    with the same key gets that answer back (header ``Idempotent-Replayed: true``) and creates nothing; the
    same key with another request is refused (422 ``idempotency_key_reused``); a request whose twin is still
    running is refused too (409 ``idempotency_key_in_use``, worth retrying a moment later). A caller who lost
    access to what the answer refers to gets what the route would answer now (404 ``not_found``, 403
    ``forbidden``) instead of the answer. Failed answers are not kept: the request may be sent again as it is.
    Answers marked ``Cache-Control: no-store`` (a new token's) are never kept.
    """

    def __init__(self, app: ASGIApp, platform: Platform) -> None:
        self.app = app
        self.platform = platform
        self._last_purge = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        key = _header(scope, b"idempotency-key")
        if key is None:
            await self.app(scope, receive, send)
            return
        if not _KEY.match(key):
            await _send_error(
                scope,
                send,
                400,
                "invalid_idempotency_key",
                f"The {IDEMPOTENCY_HEADER} header must hold 1 to 255 visible ASCII characters.",
            )
            return
        auth = _header(scope, b"authorization") or ""
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            await self.app(scope, receive, send)  # the route answers 401
            return
        user_id, claimed, stored = await to_thread.run_sync(self._claim, token.strip(), key)
        if user_id is None:
            await self.app(scope, receive, send)  # the route answers 401
            return
        digest = hashlib.sha256()
        digest.update(f"{scope['method']}\0{scope['path']}\0".encode())
        digest.update(scope.get("query_string", b"") + b"\0")
        if not claimed:
            if stored is None or not stored.fingerprint:
                await _send_error(
                    scope,
                    send,
                    409,
                    "idempotency_key_in_use",
                    "A request with this idempotency key is still being handled; try again in a moment.",
                )
                return
            await self._replay(scope, receive, send, digest, stored)
            return
        await self._first(scope, receive, send, digest, user_id, key)

    # -- the first request with a key ------------------------------------------------------------------------
    async def _first(
        self, scope: Scope, receive: Receive, send: Send, digest: Any, user_id: str, key: str
    ) -> None:
        body_done = False

        async def hashing_receive() -> Message:
            nonlocal body_done
            event = await receive()
            if event["type"] == "http.request":
                digest.update(event.get("body", b""))
                if not event.get("more_body", False):
                    body_done = True
            return event

        held: list[Message] = []
        stored_ok = False
        held_bytes = 0
        passthrough = False
        status = 0
        content_type = ""
        keep = not any(p.search(scope["path"]) for p in NEVER_KEPT)

        async def flush() -> None:
            for message in held:
                await send(message)
            held.clear()

        async def capturing_send(message: Message) -> None:
            nonlocal held_bytes, passthrough, status, content_type, keep, stored_ok
            if passthrough:
                await send(message)
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = {k.lower(): v for k, v in message.get("headers") or []}
                content_type = headers.get(b"content-type", b"").decode("latin-1")
                if b"no-store" in headers.get(b"cache-control", b"") or not 200 <= status < 300:
                    keep = False
            elif message["type"] == "http.response.body":
                held_bytes += len(message.get("body", b""))
                if held_bytes > MAX_REPLAY_BYTES:
                    keep = False
            held.append(message)
            if not keep:
                passthrough = True
                await flush()
                return
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                if body_done:
                    body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
                    # Stored before the caller sees the answer: an answer received is an answer replayable.
                    await to_thread.run_sync(
                        self._store, user_id, key, digest.hexdigest(), status, content_type, body
                    )
                    stored_ok = True
                await flush()

        try:
            await self.app(scope, hashing_receive, capturing_send)
        finally:
            if not stored_ok:
                await to_thread.run_sync(self._release, user_id, key)

    # -- a request sent again --------------------------------------------------------------------------------
    async def _replay(
        self, scope: Scope, receive: Receive, send: Send, digest: Any, stored: IdempotencyRecord
    ) -> None:
        while True:  # the body is part of the request's identity: read it whole
            event = await receive()
            if event["type"] != "http.request":
                return
            digest.update(event.get("body", b""))
            if not event.get("more_body", False):
                break
        if digest.hexdigest() != stored.fingerprint:
            start, body = _error(
                scope,
                422,
                "idempotency_key_reused",
                "This idempotency key was already used for another request; use a new key for a new request.",
            )
            await send(start)
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        refused = await to_thread.run_sync(self._access_now, stored.user_id, scope["path"], stored.body)
        if refused is not None:
            start, body = _error(scope, refused.status, refused.code, refused.message, refused.details)
            await send(start)
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        body = stored.body or b""
        headers = [
            (b"content-type", (stored.content_type or "application/json").encode("latin-1")),
            (b"content-length", str(len(body)).encode()),
            (b"idempotent-replayed", b"true"),
        ]
        await send({"type": "http.response.start", "status": stored.status_code or 200, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    # -- the store (called in a worker thread) ---------------------------------------------------------------
    def _claim(self, token: str, key: str) -> tuple[str | None, bool, IdempotencyRecord | None]:
        """Find the caller and claim (caller, key) for a new request, in one transaction.

        Returns:
            (user id, True, None) for a new request; (user id, False, the record or None while its twin
            runs) for a key already known; (None, False, None) for a token that is not valid.
        """
        self._purge()
        user_id = None
        try:
            with self.platform.db.session() as s:
                user = user_for_token(s, token)
                if user is None:
                    return None, False, None
                user_id = user.id
                existing = s.get(IdempotencyRecord, (user_id, key))
                if existing is not None:
                    if existing.created_at >= utcnow() - self._ttl():
                        return user_id, False, existing if existing.status_code is not None else None
                    s.delete(existing)
                    s.flush()
                s.add(IdempotencyRecord(user_id=user_id, key=key))
        except IntegrityError:  # a twin request claimed the key first
            return user_id, False, None
        return user_id, True, None

    def _access_now(self, user_id: str, path: str, body: bytes | None) -> PlatformError | None:
        """What the route would answer now to a caller who lost access to what a stored answer refers to.

        The project in the path (editor needed, owner for members), the resource in the path (editor of its
        project), the project the answer names (``project_id``, or ``id`` of a created project: any member)
        and, for the administrators' routes, the admin flag are checked again.

        Returns:
            The error to answer instead of the stored answer (404 ``not_found``, 403 ``forbidden``), or None.
        """
        try:
            answer = json.loads(body or b"null")
        except ValueError:
            answer = None
        answer = answer if isinstance(answer, dict) else {}
        with self.platform.db.session() as s:
            user = s.get(User, user_id)
            if user is None:
                return PlatformError(401, "invalid_token", "The token is unknown, expired or revoked.")
            try:
                if ADMIN_ROUTES.match(path) and not user.is_admin:
                    raise PlatformError(403, "forbidden", "Only an administrator may do this.")
                if path.rstrip("/") == "/api/v1/projects" and isinstance(answer.get("id"), str):
                    project_for(s, user, answer["id"], min_role="viewer")
                in_project = PROJECT_ROUTES.match(path)
                if in_project:
                    role: Role = "owner" if in_project.group(2) == "members" else "editor"
                    project_for(s, user, in_project.group(1), min_role=role)
                on_resource = RESOURCE_ROUTES.match(path)
                if on_resource:
                    kind = on_resource.group(1)
                    resource_for(s, user, RESOURCE_MODELS[kind], on_resource.group(2), kind[:-1])
                if isinstance(answer.get("project_id"), str):
                    project_for(s, user, answer["project_id"])
            except PlatformError as exc:
                return exc
        return None

    def _store(
        self, user_id: str, key: str, fingerprint: str, status: int, content_type: str, body: bytes
    ) -> None:
        with self.platform.db.session() as s:
            record = s.get(IdempotencyRecord, (user_id, key))
            if record is None:
                return
            record.fingerprint = fingerprint
            record.status_code = status
            record.content_type = content_type or None
            record.body = body

    def _release(self, user_id: str, key: str) -> None:
        with self.platform.db.session() as s:
            s.execute(
                delete(IdempotencyRecord).where(
                    IdempotencyRecord.user_id == user_id,
                    IdempotencyRecord.key == key,
                    IdempotencyRecord.status_code.is_(None),
                )
            )

    def _ttl(self) -> timedelta:
        return timedelta(seconds=self.platform.settings.idempotency_ttl_seconds)

    def _purge(self) -> None:
        now = time.monotonic()
        if now - self._last_purge < 60:
            return
        self._last_purge = now
        with self.platform.db.session() as s:
            s.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < utcnow() - self._ttl()))


def forget_pending_requests(platform: Platform) -> None:
    """At start-up: drop the claims of requests a previous process was handling when it stopped."""
    with platform.db.session() as s:
        s.execute(delete(IdempotencyRecord).where(IdempotencyRecord.status_code.is_(None)))


def _document_idempotency(schema: dict[str, Any]) -> dict[str, Any]:
    parameter = {
        "name": IDEMPOTENCY_HEADER,
        "in": "header",
        "required": False,
        "description": "Any unique string (a UUID): sending the same request again with the same key returns "
        "the first answer instead of creating a second resource.",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
    }
    for item in schema.get("paths", {}).values():
        operation = item.get("post")
        if operation is None:
            continue
        params = operation.setdefault("parameters", [])
        if not any(p.get("name") == IDEMPOTENCY_HEADER for p in params):
            params.append(parameter)
    return schema


def install_guards(app: FastAPI, platform: Platform) -> None:
    """Add the body limit and idempotency middleware to ``app`` and document the idempotency header."""
    app.add_middleware(IdempotencyMiddleware, platform=platform)
    app.add_middleware(BodyLimitMiddleware, platform=platform)
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document_idempotency(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
