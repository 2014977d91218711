"""``GET /health``: the only route that needs no token."""

from __future__ import annotations

from fastapi import APIRouter

from ... import __version__
from ..schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health() -> Health:
    """Say the platform is up; answered in the event loop (no thread, no database), so it never waits."""
    return Health(status="ok", version=__version__)
