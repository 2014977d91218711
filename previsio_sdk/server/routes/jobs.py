"""Jobs: snapshots and uploads running on the platform."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import CurrentUser, SessionDep, SessionRoute, resource_for
from ..models import Job
from ..schemas import JobPublic

router = APIRouter(tags=["jobs"], route_class=SessionRoute)


@router.get("/jobs/{job_id}", response_model=JobPublic)
def get_job(job_id: str, session: SessionDep, user: CurrentUser) -> Job:
    """A job's status and progress (rows written so far)."""
    return resource_for(session, user, Job, job_id, "job", min_role="viewer")
