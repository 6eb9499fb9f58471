"""Job status: ``GET /api/jobs/{id}`` for progress of long work started elsewhere (e.g. ``POST /api/models``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel

from functions.deps import get_store, get_workspace
from functions.jobs import JobNotFound, get_job
from functions.storage import Store

router = APIRouter(tags=["jobs"])


class Job(BaseModel):
    id: str
    kind: str
    status: str
    progress: float
    message: str
    created_at: str
    updated_at: str
    result: dict[str, Any] | None = None
    error: str | None = None


@router.get("/api/jobs/{job_id}", response_model=Job)
def job_status(job_id: str, store: Store = Depends(get_store), workspace: str = Depends(get_workspace)) -> Job:
    """A job's status, progress and (when done) result summary."""
    try:
        return Job(**get_job(store, workspace, job_id))
    except JobNotFound as e:
        raise HTTPException(status_code=404, detail=str(e)) from e
