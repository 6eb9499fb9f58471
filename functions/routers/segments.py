"""Customer segments: the field catalogue, live previews, saved and system segments, members and their changes.

- ``GET /api/segments/fields``: the fields, events and operators a rule may use (drives the builder).
- ``POST /api/segments/preview`` ``{"rules": ...}``: count, share, average value, revenue of the last 12 months
  and 20 customers; an invalid rule gets 400 naming its path (``rules.all[2].value: expected a number``).
- ``GET /api/segments``, ``POST /api/segments`` ``{"name", "description", "rules"}``, ``GET|PUT|DELETE
  /api/segments/{id}`` (system segments cannot be deleted or renamed: 409).
- ``GET /api/segments/{id}/members?page=&page_size=`` (``&format=csv`` for every member as CSV) and
  ``GET /api/segments/{id}/changes?limit=&change=entered|exited``.

Saving a segment validates it (nothing is stored when invalid) and computes its membership under the workspace's
writer lock; every refresh recomputes the segments whose inputs changed.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, Field

from core.cdp.fields import OPERATOR_LABELS, event_catalogue
from functions.cdp import membership, segment_defs, segment_service
from functions.cdp.query import load_profiles, search_customers
from functions.cdp.segment_engine import engine_for
from functions.deps import get_store, get_workspace
from functions.storage import Store

router = APIRouter(tags=["segments"])

CSV_COLUMNS = ("person_id", "first_name", "last_name", "email", "phone", "city", "lifetime_value", "total_orders",
               "avg_order_value", "last_order_date", "subscription_status", "subscription_mrr",
               "email_engagement_score")


class PreviewBody(BaseModel):
    """A rule to preview."""

    rules: Any = Field(description="the rule tree: {all|any: [...]} or {not: ...}")


class SegmentBody(BaseModel):
    """A segment to save."""

    name: str = Field(max_length=segment_defs.MAX_NAME)
    description: str = Field(default="", max_length=segment_defs.MAX_DESCRIPTION)
    rules: Any


class SegmentPatch(BaseModel):
    """Changes to a segment (absent fields stay as they are)."""

    name: str | None = Field(default=None, max_length=segment_defs.MAX_NAME)
    description: str | None = Field(default=None, max_length=segment_defs.MAX_DESCRIPTION)
    rules: Any = None


def _no_data(e: LookupError) -> HTTPException:
    return HTTPException(status_code=404, detail=str(e))


def _get(store: Store, ws: str, sid: str) -> segment_defs.SegmentDef:
    try:
        return segment_defs.get_definition(store, ws, sid)
    except KeyError as e:
        raise HTTPException(status_code=404, detail=f"no segment with id {sid!r}") from e


@router.get("/api/segments/fields")
def fields(store: Store = Depends(get_store), workspace: str = Depends(get_workspace)) -> dict[str, Any]:
    """Fields (with known values), events (with their properties) and operator labels for the builder."""
    eng = engine_for(store, workspace)
    try:
        state = eng.sync()
    except LookupError as e:
        raise _no_data(e) from e
    return {"as_of": state.get("as_of"), "fields": eng.fields(), "events": event_catalogue(eng.known_values()),
            "operators": dict(OPERATOR_LABELS)}


@router.post("/api/segments/preview")
def preview(body: PreviewBody, store: Store = Depends(get_store),
            workspace: str = Depends(get_workspace)) -> dict[str, Any]:
    """What the rule selects now (400 naming the rule path when it is invalid)."""
    try:
        return segment_service.preview(store, workspace, body.rules)
    except LookupError as e:
        raise _no_data(e) from e
    except ValueError as e:
        raise HTTPException(status_code=400, detail=str(e)) from e


@router.get("/api/segments")
def list_segments(store: Store = Depends(get_store), workspace: str = Depends(get_workspace)) -> dict[str, Any]:
    """Every segment, system segments first, with size and trend."""
    defs = segment_defs.list_definitions(store, workspace)
    return {"segments": [segment_service.segment_json(store, workspace, d) for d in defs.values()]}


def _save_response(store: Store, ws: str, d: segment_defs.SegmentDef) -> dict[str, Any]:
    out = segment_service.recompute(store, ws, only={d.id})
    doc = segment_service.segment_json(store, ws, d, history=True)
    doc["computation"] = "pending" if out.get("pending") else "done"
    if d.id in out.get("failed", {}):
        doc["computation"] = "failed: " + out["failed"][d.id]
    return doc


@router.post("/api/segments", status_code=201)
def create_segment(body: SegmentBody, store: Store = Depends(get_store),
                   workspace: str = Depends(get_workspace)) -> dict[str, Any]:
    """Save a new segment (400 naming the rule path when invalid, 409 for a duplicate name)."""
    try:
        d = segment_defs.create_definition(store, workspace, body.name, body.description, body.rules,
                                           segment_service.validator(store, workspace))
    except segment_defs.SegmentConflict as e:
        raise HTTPException(status_code=409, detail=str(e)) from e
    except ValueError as e:
        raise HTTPException(status_code=400, detail=str(e)) from e
    return _save_response(store, workspace, d)


@router.get("/api/segments/{segment_id}")
def get_segment(segment_id: str, store: Store = Depends(get_store),
                workspace: str = Depends(get_workspace)) -> dict[str, Any]:
    """One segment with its whole membership history."""
    return segment_service.segment_json(store, workspace, _get(store, workspace, segment_id), history=True)


@router.put("/api/segments/{segment_id}")
def update_segment(segment_id: str, body: SegmentPatch, store: Store = Depends(get_store),
                   workspace: str = Depends(get_workspace)) -> dict[str, Any]:
    """Change a segment's name, description or rule."""
    try:
        d = segment_defs.update_definition(store, workspace, segment_id, segment_service.validator(store, workspace),
                                           name=body.name, description=body.description, rules=body.rules)
    except KeyError as e:
        raise HTTPException(status_code=404, detail=f"no segment with id {segment_id!r}") from e
    except segment_defs.SegmentConflict as e:
        raise HTTPException(status_code=409, detail=str(e)) from e
    except ValueError as e:
        raise HTTPException(status_code=400, detail=str(e)) from e
    return _save_response(store, workspace, d)


@router.delete("/api/segments/{segment_id}", status_code=204)
def delete_segment(segment_id: str, store: Store = Depends(get_store),
                   workspace: str = Depends(get_workspace)) -> Response:
    """Delete a user segment (its snapshot and changes go with the next computation)."""
    try:
        segment_defs.delete_definition(store, workspace, segment_id)
    except KeyError as e:
        raise HTTPException(status_code=404, detail=f"no segment with id {segment_id!r}") from e
    except segment_defs.SegmentConflict as e:
        raise HTTPException(status_code=409, detail=str(e)) from e
    segment_service.recompute(store, workspace, only=set())
    return Response(status_code=204)


@router.get("/api/segments/{segment_id}/members", response_model=None)
def members(segment_id: str, page: int = Query(default=1, ge=1), page_size: int = Query(default=25, ge=1, le=500),
            format: Literal["json", "csv"] = Query(default="json"), store: Store = Depends(get_store),
            workspace: str = Depends(get_workspace)) -> dict[str, Any] | Response:
    """The segment's members by lifetime value, a page at a time, or all of them as CSV."""
    d = _get(store, workspace, segment_id)
    ids = membership.read_members(store, workspace, segment_id)
    try:
        if format == "json":  # the customer search's own order (lifetime value, computed once per data version)
            out = search_customers(store, workspace, page=page, page_size=page_size, members=ids)
            return {"segment": {"id": d.id, "name": d.name}, **{k: out[k] for k in
                                                               ("items", "total", "page", "page_size", "pages")}}
        prof = load_profiles(store, workspace)
    except LookupError as e:
        raise _no_data(e) from e
    sub = prof.loc[prof.index.intersection(ids)]
    sub = sub.sort_values(["lifetime_value", "person_id"], ascending=[False, True], kind="stable")
    return Response(sub[list(CSV_COLUMNS)].to_csv(index=False, date_format="%Y-%m-%d"), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="segment-{segment_id}.csv"'})


@router.get("/api/segments/{segment_id}/changes")
def changes(segment_id: str, limit: int = Query(default=100, ge=1, le=5000),
            change: Literal["entered", "exited"] | None = Query(default=None), store: Store = Depends(get_store),
            workspace: str = Depends(get_workspace)) -> dict[str, Any]:
    """Who entered or exited the segment, newest computation first."""
    _get(store, workspace, segment_id)
    return {"changes": membership.read_changes(store, workspace, segment_id, limit=limit, change=change)}
