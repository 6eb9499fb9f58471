"""Customer search and unified profiles.

- ``GET /api/customers?q=&sort=&page=&page_size=&segment=``: customers whose email, name, phone or id starts with
  ``q`` (every customer when empty), paginated; ``sort`` is a profile column, ``-`` for descending; ``segment``
  keeps only the members of that saved segment.
- ``GET /api/customers/insights``: health bands, opportunities in dollars, segment performance, discovered
  segments and the model cards (``functions.cdp.insights``); ``GET /api/customers/models``: the model cards.
- ``GET /api/customers/{id}``: the profile, the timeline across every source (newest first), the identities
  (source records) merged into the person, with the reasons for each merge, and the segments the person is in.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from core.cdp.health import HealthThresholds
from functions import cdp_store
from functions.cdp import insights as insights_service
from functions.cdp import membership, predictions, segment_defs
from functions.deps import get_store, get_workspace
from functions.storage import Store

router = APIRouter(tags=["customers"])


@router.get("/api/customers")
def customers(q: str = Query(default="", max_length=200), sort: str | None = Query(default=None),
              page: int = Query(default=1, ge=1), page_size: int = Query(default=25, ge=1, le=500),
              segment: str | None = Query(default=None, max_length=100),
              store: Store = Depends(get_store), workspace: str = Depends(get_workspace)) -> dict[str, Any]:
    """Search customers by email, name, phone or id, optionally within a segment."""
    members = None
    if segment:
        try:
            segment_defs.get_definition(store, workspace, segment)
        except KeyError as e:
            raise HTTPException(status_code=404, detail=f"no segment with id {segment!r}") from e
        members = membership.read_members(store, workspace, segment)
    try:
        out = cdp_store.search_customers(store, workspace, q=q, sort=sort, page=page, page_size=page_size,
                                         members=members)
        out["segment"] = segment
        return out
    except LookupError as e:
        raise HTTPException(status_code=404, detail=str(e)) from e


@router.get("/api/customers/insights")
def customer_insights(request: Request, warning: float = Query(default=0.30, gt=0, lt=1),
                      critical: float = Query(default=0.60, gt=0, lt=1), store: Store = Depends(get_store),
                      workspace: str = Depends(get_workspace)) -> dict[str, Any]:
    """Customer health, opportunities in dollars (assumptions as ``<opportunity>.<assumption>=value``),
    segment performance, discovered segments and the model cards."""
    overrides = {k: v for k, v in request.query_params.items() if "." in k}
    try:
        thresholds = HealthThresholds(warning=warning, critical=critical)
    except ValueError as e:
        raise HTTPException(status_code=400, detail=str(e)) from e
    try:
        return insights_service.insights(store, workspace, overrides, thresholds)
    except LookupError as e:
        raise HTTPException(status_code=404, detail=str(e)) from e
    except ValueError as e:
        raise HTTPException(status_code=400, detail=str(e)) from e


@router.get("/api/customers/models")
def customer_models(store: Store = Depends(get_store), workspace: str = Depends(get_workspace)) -> dict[str, Any]:
    """The churn model cards (features, out-of-time evaluation, base rate, training date), the lifetime models
    with their holdout check and subscription retention; a message for each model there was too little data for."""
    try:
        return predictions.models_json(store, workspace)
    except LookupError as e:
        raise HTTPException(status_code=404, detail=str(e)) from e


@router.get("/api/customers/{person_id}")
def customer(person_id: str, limit: int = Query(default=500, ge=1, le=5000), store: Store = Depends(get_store),
             workspace: str = Depends(get_workspace)) -> dict[str, Any]:
    """One unified customer profile with its timeline and identities."""
    try:
        out = cdp_store.customer_detail(store, workspace, person_id, limit=limit)
        out["segments"] = [{"id": d.id, "name": d.name, "system": d.system}
                           for d in membership.segments_of(store, workspace, person_id)]
        return out
    except KeyError as e:
        raise HTTPException(status_code=404, detail=f"no customer with id {person_id!r}") from e
    except LookupError as e:
        raise HTTPException(status_code=404, detail=str(e)) from e
