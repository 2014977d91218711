"""Jobs: snapshots and uploads running on the platform."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import CurrentUser, SessionDep, resource_for
from ..jobs import CANCEL_REQUESTED
from ..models import Job
from ..schemas import JobPublic

router = APIRouter(tags=["jobs"])


@router.get("/jobs/{job_id}", response_model=JobPublic)
def get_job(job_id: str, session: SessionDep, user: CurrentUser) -> Job:
    """A job's status and progress (rows written so far)."""
    return resource_for(session, user, Job, job_id, "job", min_role="viewer")


@router.post("/jobs/{job_id}/cancel", response_model=JobPublic)
def cancel_job(job_id: str, session: SessionDep, user: CurrentUser) -> Job:
    """Ask a pending or running job to stop; it ends ``failed`` with code ``cancelled``, keeping no dataset.

    A job that has already ended is returned as it is.
    """
    job = resource_for(session, user, Job, job_id, "job", min_role="editor")
    if job.status in ("pending", "running"):
        job.error_code = CANCEL_REQUESTED
        session.commit()
    return job
