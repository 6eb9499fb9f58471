"""Multi-touch attribution: every model side by side on the dataset's journeys or on an uploaded file.

Results are computed once per data version and parameter set and stored under
``result_key(ws, version, "attribution", <hash>.json)``; later requests (any process, warm or cold Lambda) read
them. When a marketing mix model exists for the data version, each channel's share of the model's incremental
revenue is returned beside the attribution credits (``mmm``), from the model the process holds for the current data
version (``Depends(get_model_if_fitted)``), and ``unified`` reconciles the causal journey model's shares with it
(:mod:`core.attribution.unified`): journey, MMM and reconciled share per channel, disagreements and confounding
warnings. Both are computed per request, since the model can be refitted without the journeys changing.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import date
from typing import Any, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, File, Form, HTTPException, Query, UploadFile

from core.attribution import (
    JourneyValidationError,
    aggregate_journeys,
    aggregate_paths,
    attribute,
    parse_models,
    read_journeys_csv,
    run_attribution,
    validate_journeys,
)
from core.attribution.unified import MmmShares, reconcile
from functions.datasets import Dataset, NoDataset, current_version, result_key
from functions.deps import get_dataset, get_store, get_workspace
from functions.mmm_service import LoadedModel, get_model_if_fitted
from functions.storage import KeyNotFound, Store

router = APIRouter(tags=["attribution"])

MAX_UPLOAD_BYTES = 512 * 2**20
NO_JOURNEYS = (
    "the current dataset has no journeys: import a journeys CSV (journey_id, timestamp, channel, converted, "
    "revenue) with the data, or upload one to POST /api/attribution"
)


def _params_hash(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:20]


def unified_view(result: dict[str, Any], mmm: MmmShares | None) -> dict[str, Any] | None:
    """Journey credit (causal model) reconciled with the fitted MMM's channel shares; None without the causal model."""
    causal = (result.get("diagnostics") or {}).get("causal")
    if not causal:
        return None
    rec = reconcile(causal, mmm)
    level = {c["channel"]: c["level"] for c in causal.get("confounding", [])}
    return {
        "channels": [
            {"channel": c, "journeys": rec.journey[c], "journeys_interval": causal["share_interval"].get(c),
             "mmm": rec.mmm.get(c), "reconciled": rec.shares[c], "reconciled_interval": [rec.low[c], rec.high[c]],
             "mmm_weight": rec.mmm_weight[c], "confounding": level.get(c),
             "intent_signal": c in causal.get("intent_channels", [])}
            for c in result["channels"]
        ],
        "calibrated": rec.calibrated,
        "disagreements": rec.disagreements,
        "warnings": [c["message"] for c in causal.get("confounding", []) if c.get("message")],
    }


def _with_views(result: dict[str, Any], model: LoadedModel | None) -> dict[str, Any]:
    """The MMM's channel shares (``mmm``) and the reconciled view (``unified``) beside the stored credits."""
    mmm = MmmShares.from_artifact(model.artifact) if model is not None else None
    result["mmm"] = mmm.share if mmm is not None else None
    result["unified"] = unified_view(result, mmm)
    return result


def _problems_422(e: JourneyValidationError, filename: str | None) -> HTTPException:
    problems = [
        {"file": filename, "row": p.get("row"), "column": p.get("column"), "problem": p["problem"]}
        for p in getattr(e, "problems", [])[:1000]
    ]
    return HTTPException(status_code=422, detail={"message": str(e).splitlines()[0], "problems": problems})


def _journeys_in_range(ds: Dataset, start: date | None, end: date | None) -> tuple[pd.DataFrame, dict]:
    """Validated journeys whose last touch falls in [start, end] (whole days), plus the data's full range."""
    df = validate_journeys(ds.table("journeys"))
    codes = df["journey_id"].cat.codes.to_numpy()
    ts = df["timestamp"].to_numpy(dtype="datetime64[ns]")
    last = np.full(len(df["journey_id"].cat.categories), np.datetime64("NaT", "ns"))
    order = np.lexsort((ts, codes))
    ends = np.flatnonzero(np.r_[codes[order][1:] != codes[order][:-1], True])
    last[codes[order][ends]] = ts[order][ends]
    end_day = last[codes].astype("datetime64[D]")
    data_range = {"start_date": str(end_day.min()), "end_date": str(end_day.max())}
    keep = np.ones(len(df), dtype=bool)
    if start is not None:
        keep &= end_day >= np.datetime64(start, "D")
    if end is not None:
        keep &= end_day <= np.datetime64(end, "D")
    if not keep.any():
        raise ValueError(f"no journeys end between {start or data_range['start_date']} and "
                         f"{end or data_range['end_date']} (journeys end from {data_range['start_date']} to "
                         f"{data_range['end_date']})")
    return (df if keep.all() else df[keep].reset_index(drop=True)), data_range


def _cached(store: Store, key: str) -> dict[str, Any] | None:
    try:
        result = store.read_json(key)
    except KeyNotFound:
        return None
    result["cached"] = True
    return result


def _paths_table(ds: Dataset) -> pd.DataFrame:
    t = ds.table("journey_paths").copy()
    t["path"] = [p if isinstance(p, str) else " > ".join(map(str, p)) for p in t["path"]]
    return t


@router.get("/api/attribution")
def attribution(
    start_date: date | None = Query(None, description="first day (journeys ending on or after it)"),
    end_date: date | None = Query(None, description="last day (journeys ending on or before it)"),
    models: str | None = Query(None, description="comma-separated models (default: all)"),
    lookback_days: float = Query(30.0, ge=0, description="touches older than this before the conversion are ignored"
                                 " (0 = no limit)"),
    interactions: str | None = Query(None, description="comma-separated interaction types to count (default: all)"),
    half_life_days: float = Query(7.0, gt=0, description="time-decay half-life in days"),
    first_weight: float = Query(0.4, ge=0, le=1, description="position-based share of the first touch"),
    last_weight: float = Query(0.4, ge=0, le=1, description="position-based share of the last touch"),
    markov_order: int = Query(1, ge=1, le=4, description="Markov chain order"),
    ds: Dataset = Depends(get_dataset),
    store: Store = Depends(get_store),
    workspace: str = Depends(get_workspace),
    model: LoadedModel | None = Depends(get_model_if_fitted),
) -> dict[str, Any]:
    """Credits per channel under each model for the dataset's journeys (404 when the dataset has none)."""
    if start_date and end_date and start_date > end_date:
        raise HTTPException(status_code=400, detail=f"start_date {start_date} is after end_date {end_date}")
    names = parse_models(models)
    inter = [s.strip() for s in interactions.split(",") if s.strip()] if interactions else None
    lookback = lookback_days if lookback_days > 0 else None
    params = {"start_date": start_date, "end_date": end_date, "models": names, "lookback_days": lookback,
              "interactions": inter, "half_life_days": half_life_days, "position_weights": [first_weight, last_weight],
              "markov_order": markov_order}
    key = result_key(workspace, ds.version, "attribution", f"{_params_hash(params)}.json")
    result = _cached(store, key)
    if result is None:
        if ds.has("journeys"):
            df, data_range = _journeys_in_range(ds, start_date, end_date)
            ps = aggregate_journeys(df, lookback_days=lookback, interactions=inter, validated=True)
            fmt = "journeys"
        elif ds.has("journey_paths"):
            ps = aggregate_paths(_paths_table(ds))
            data_range, fmt, lookback = {"start_date": None, "end_date": None}, "paths", None
        else:
            raise HTTPException(status_code=404, detail=NO_JOURNEYS)
        result = run_attribution(ps, names, half_life_days=half_life_days, position_weights=(first_weight,
                                 last_weight), markov_order=markov_order, lookback_days=lookback)
        result.update(format=fmt, data_range=data_range,
                      start_date=str(start_date) if start_date else data_range["start_date"],
                      end_date=str(end_date) if end_date else data_range["end_date"])
        store.write_json(key, result)
        result["cached"] = False
    return _with_views(result, model)


@router.post("/api/attribution")
async def attribution_upload(
    file: UploadFile = File(..., description="journeys or paths CSV"),
    format: Literal["auto", "journeys", "paths"] = Form("auto", description="input format (default: detected)"),
    models: str | None = Form(None, description="comma-separated models (default: all)"),
    lookback_days: float = Form(30.0, ge=0, description="lookback window in days (0 = no limit)"),
    interactions: str | None = Form(None, description="comma-separated interaction types to count"),
    half_life_days: float = Form(7.0, gt=0, description="time-decay half-life in days"),
    first_weight: float = Form(0.4, ge=0, le=1),
    last_weight: float = Form(0.4, ge=0, le=1),
    markov_order: int = Form(1, ge=1, le=4),
    store: Store = Depends(get_store),
    workspace: str = Depends(get_workspace),
    model: LoadedModel | None = Depends(get_model_if_fitted),
) -> dict[str, Any]:
    """Attribute an uploaded journeys/paths CSV (nothing is added to the dataset); 422 lists every bad row."""
    data = await file.read()
    if len(data) > MAX_UPLOAD_BYTES:
        raise HTTPException(status_code=413, detail=f"upload larger than {MAX_UPLOAD_BYTES // 2**20} MB")
    if not data.strip():
        raise HTTPException(status_code=422, detail={"message": "the uploaded file is empty", "problems": []})
    names = parse_models(models)
    inter = [s.strip() for s in interactions.split(",") if s.strip()] if interactions else None
    lookback = lookback_days if lookback_days > 0 else None
    try:
        version = current_version(store, workspace)["version"]
    except NoDataset:
        version = None
    params = {"file": hashlib.sha256(data).hexdigest(), "format": format, "models": names, "lookback_days": lookback,
              "interactions": inter, "half_life_days": half_life_days, "position_weights": [first_weight, last_weight],
              "markov_order": markov_order}
    key = result_key(workspace, version or "uploads", "attribution", f"upload-{_params_hash(params)}.json")
    result = _cached(store, key)
    if result is None:
        try:
            df = read_journeys_csv(io.BytesIO(data), "paths" if format == "paths" else "journeys")
            result = attribute(df, format, names, lookback_days=lookback, interactions=inter,
                               half_life_days=half_life_days, position_weights=(first_weight, last_weight),
                               markov_order=markov_order)
        except JourneyValidationError as e:
            raise _problems_422(e, file.filename) from e
        except ValueError as e:
            raise HTTPException(status_code=422, detail={"message": str(e), "problems": []}) from e
        result["source"] = file.filename
        store.write_json(key, result)
        result["cached"] = False
    return _with_views(result, model)
