"""Data-subject requests (admin scope): ``POST /api/privacy/export`` ``{"person_id"}`` or ``{"email"}`` returns
everything held about the person as one JSON bundle (:mod:`functions.privacy`); the request is in the audit log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, Field, model_validator

from functions.auth import Principal, require_admin
from functions.deps import get_store
from functions.privacy import export_person, find_person
from functions.storage import Store

router = APIRouter(tags=["privacy"])


class Subject(BaseModel):
    """Who the request is about: a person id, or an email address the person used."""

    person_id: str | None = Field(default=None, max_length=100)
    email: str | None = Field(default=None, max_length=320)

    @model_validator(mode="after")
    def _one(self) -> Subject:
        if (self.person_id is None) == (self.email is None):
            raise ValueError("give exactly one of person_id or email")
        return self


@router.post("/api/privacy/export")
def export(subject: Subject, store: Store = Depends(get_store),
           admin: Principal = Depends(require_admin)) -> dict[str, Any]:
    """Everything the customer store holds about one person."""
    try:
        pid = subject.person_id or find_person(store, admin.workspace, subject.email or "")
        return export_person(store, admin.workspace, pid)
    except KeyError as e:
        raise HTTPException(status_code=404, detail=str(e.args[0]) if e.args else "no such customer") from e
