"""Health check."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from pydantic import BaseModel

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    timestamp: datetime


@router.get("/api/health", response_model=Health)
def health() -> Health:
    """Liveness: answers without touching storage."""
    return Health(status="healthy", timestamp=datetime.now(UTC))
