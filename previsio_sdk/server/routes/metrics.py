"""``GET /metrics`` (Prometheus, administrators) and ``GET /health/parts`` (which parts answer)."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from anyio import to_thread
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from ..deps import AdminUser, PlatformDep
from ..metrics import exposition

router = APIRouter(tags=["health"])

#: Seconds each part may take to answer a health check.
PART_TIMEOUT = 3.0

PartState = Literal["ok", "failing", "not_used"]


class HealthParts(BaseModel):
    status: Literal["ok", "degraded"]
    parts: dict[str, PartState]


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
def metrics(_admin: AdminUser) -> Response:
    """This process's metrics in Prometheus's text format (jobs, durations, rows and bytes, queues)."""
    return Response(exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get(
    "/health/parts",
    response_model=HealthParts,
    responses={503: {"model": HealthParts, "description": "A part does not answer."}},
)
async def health_parts(platform: PlatformDep) -> Any:
    """Whether the metadata store, the dataset store and the broker answer, each within a few seconds.

    ``200`` with ``status: ok`` when they all do; ``503`` with ``status: degraded`` and the failing parts
    otherwise, so that a load balancer takes the replica out. No detail of a failure is given (no token).
    """

    def metadata() -> None:
        with platform.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def broker() -> None:
        app = getattr(platform.jobs, "app", None)
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=PART_TIMEOUT)

    checks = {"metadata": metadata, "store": platform.store.check}
    if getattr(platform.jobs, "app", None) is not None:
        checks["broker"] = broker

    async def state(check: Any) -> PartState:
        try:
            await asyncio.wait_for(to_thread.run_sync(check, abandon_on_cancel=True), PART_TIMEOUT)
        except Exception:  # noqa: BLE001 - a part that fails in any way is failing
            return "failing"
        return "ok"

    names = list(checks)
    results = await asyncio.gather(*(state(checks[n]) for n in names))
    parts: dict[str, PartState] = dict(zip(names, results, strict=True))
    parts.setdefault("broker", "not_used")
    healthy = all(v != "failing" for v in parts.values())
    body = HealthParts(status="ok" if healthy else "degraded", parts=parts)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)
