"""Jobs: snapshots and uploads running on the platform."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import CurrentUser, SessionDep, SessionRoute, resource_for
from ..jobs import cancel
from ..models import Job
from ..schemas import JobPublic

router = APIRouter(tags=["jobs"], route_class=SessionRoute)


@router.get("/jobs/{job_id}", response_model=JobPublic)
def get_job(job_id: str, session: SessionDep, user: CurrentUser) -> Job:
    """A job's status and progress (rows written so far)."""
    return resource_for(session, user, Job, job_id, "job", min_role="viewer")


@router.post("/jobs/{job_id}/cancel", status_code=202, response_model=JobPublic)
def cancel_job(job_id: str, session: SessionDep, user: CurrentUser) -> Job:
    """Cancel a job: a pending one at once, a running one within a second (``cancelling``, then ``cancelled``,
    its pending dataset and temporary files removed); 409 ``job_finished`` when it has already ended."""
    row = resource_for(session, user, Job, job_id, "job", min_role="editor")
    return cancel(session, row)
