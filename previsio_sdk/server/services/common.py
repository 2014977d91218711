"""Rules every resource of a project shares."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import Conflict


def ensure_unique_name(
    session: Session, model: Any, project_id: str, name: str, kind: str, exclude_id: str | None = None
) -> None:
    """Raise a conflict naming the existing resource when ``name`` is taken in the project."""
    existing = session.scalar(select(model).where(model.project_id == project_id, model.name == name))
    if existing is not None and existing.id != exclude_id:
        raise Conflict(
            f"A {kind} named {name!r} already exists in this project (id {existing.id}).",
            {"existing_id": existing.id, "name": name},
        )
