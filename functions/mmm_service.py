"""The marketing mix model as a service: fitted once per data version, stored, read by every request.

A fit is a job (``functions.jobs`` kind ``mmm_fit``): ``POST /api/models`` and a successful import start one; the
artifact lands at ``result_key(ws, version, "mmm", "model.json")`` so warm and cold Lambdas alike read it instead of
refitting. The fit itself is :func:`core.mmm.fit.fit_mmm` on the dataset pivoted to one row per date.

Routes get the fitted model through the dependency :func:`get_model` (or :func:`get_model_if_fitted` where the model
is optional): the artifact and its fixed-cost channels, loaded once per process and data version.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import pandas as pd
from fastapi import Depends, HTTPException

from functions.datasets import Dataset, NoDataset, current_version, load_dataset, result_key
from functions.deps import get_store, get_workspace
from functions.jobs import JobNotFound, Progress, get_job, submit
from functions.storage import KeyNotFound, Store

log = logging.getLogger(__name__)


class NoModel(LookupError):
    """No fitted model for the current data version (yet)."""


def model_key(workspace: str, version: str) -> str:
    """Where the artifact of a data version lives."""
    return result_key(workspace, version, "mmm", "model.json")


def _job_marker(workspace: str, version: str) -> str:
    return result_key(workspace, version, "mmm", "job.json")


def _no_model_reason(store: Store, workspace: str) -> str:
    """Why there is no model for the current data: a fit in flight, a failed fit, or none started."""
    job = model_status(store, workspace).get("job")
    if job and job.get("status") in ("queued", "running"):
        return f"the model is being fitted (job {job['id']}, {job.get('message', '')}); try again shortly"
    if job and job.get("status") == "failed":
        return f"the last model fit failed: {job.get('error')}"
    return "no model fitted for the current data yet: POST /api/models to fit one"


def save_model(store: Store, workspace: str, version: str, artifact: dict[str, Any]) -> None:
    """Store the artifact of a data version and drop this process's cached copy (a refit replaces it)."""
    store.write_json(model_key(workspace, version), artifact)
    with _LOCK:
        _MODELS.pop((id(store), workspace, version), None)


# --------------------------------------------------------------------------------------------- the fitted model
@dataclass(frozen=True)
class LoadedModel:
    """The fitted model of the current data version, as routes use it."""

    artifact: dict[str, Any]  # shared by every request of this process: read it, never change it
    fixed: frozenset[str]  # fixed-cost channels: flagged in the artifact or paid as flat monthly fees in the data
    version: str  # the data version the model was fitted on


_MODELS: dict[tuple[int, str, str], tuple[Store, LoadedModel]] = {}
_LOCK = threading.Lock()


def cached_model(store: Store, workspace: str) -> LoadedModel | None:
    """The current data version's model, or None when it has not been fitted; :class:`NoDataset` without data.

    Cached per process by store, workspace and data version, so a request costs no store reads beyond the version
    pointer once the model is loaded. A missing model is not cached: a fit that lands is seen at once. The entry
    keeps its store, so the store's ``id`` cannot be reused by another store while the entry exists.
    """
    version = current_version(store, workspace)["version"]
    key = (id(store), workspace, version)
    with _LOCK:
        hit = _MODELS.get(key)
    if hit is not None and hit[0] is store:
        return hit[1]
    try:
        artifact = store.read_json(model_key(workspace, version))
    except KeyNotFound:
        return None
    from core.mmm.curves import is_fixed_cost
    from core.mmm.health import health_of

    if not artifact.get("health"):  # fitted before health was computed: it loads as unavailable
        artifact["health"] = health_of(artifact).to_dict()
    # fixed fees are decided once, at fit time (fit_dataset passes the data's flat monthly fees to the fit)
    fixed = {n for n, ch in artifact["channels"].items() if is_fixed_cost(n, ch)}
    loaded = LoadedModel(artifact=artifact, fixed=frozenset(fixed), version=version)
    with _LOCK:
        if len(_MODELS) > 16:
            _MODELS.clear()
        _MODELS[key] = (store, loaded)
    return loaded


def loaded_model(store: Store, workspace: str) -> LoadedModel:
    """The current data version's model, or :class:`NoDataset` / :class:`NoModel` saying what to do."""
    loaded = cached_model(store, workspace)
    if loaded is None:
        raise NoModel(_no_model_reason(store, workspace))
    return loaded


def get_model(store: Store = Depends(get_store), workspace: str = Depends(get_workspace)) -> LoadedModel:
    """FastAPI dependency: the fitted model of the current data, or 404 saying why there is none (no data yet, a
    fit in flight or failed, no fit started)."""
    try:
        return loaded_model(store, workspace)
    except (NoDataset, NoModel) as e:
        raise HTTPException(status_code=404, detail=str(e)) from e


def get_model_if_fitted(
    store: Store = Depends(get_store), workspace: str = Depends(get_workspace)
) -> LoadedModel | None:
    """FastAPI dependency for routes that also answer without a model: the fitted model, or None."""
    try:
        return cached_model(store, workspace)
    except NoDataset:
        return None


def model_status(store: Store, workspace: str) -> dict[str, Any]:
    """Whether a model exists for the current data version, and the latest fit job if any."""
    version = current_version(store, workspace)["version"]
    exists = store.exists(model_key(workspace, version))
    job = None
    try:
        job_id = store.read_json(_job_marker(workspace, version))["job_id"]
        job = get_job(store, workspace, job_id)
    except (KeyNotFound, JobNotFound):
        pass
    return {"version": version, "fitted": exists, "job": job}


def start_fit(store: Store, workspace: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Submit a fit job for the current data version and remember it; returns the job document."""
    version = current_version(store, workspace)["version"]
    job = submit(store, workspace, "mmm_fit", {"version": version, **(params or {})})
    store.write_json(_job_marker(workspace, version), {"job_id": job["id"]})
    return job


def ensure_model(store: Store, workspace: str) -> dict[str, Any] | None:
    """Start a fit unless the current version has a model or a fit in flight; returns the job started or running."""
    status = model_status(store, workspace)
    if status["fitted"]:
        return None
    job = status["job"]
    if job and job["status"] in ("queued", "running"):
        return job
    return start_fit(store, workspace)


def wide_from_dataset(ds: Dataset) -> tuple[pd.DataFrame, list[str], list[str], pd.DataFrame | None]:
    """One row per date: KPI, one spend column per channel, controls; plus the external factors table."""
    from core.mmm.design import to_wide

    controls = ds.table("controls") if ds.has("controls") else None
    kpis = ds.table("kpis") if ds.has("kpis") else None
    marketing = ds.table("marketing")
    wide = to_wide(marketing, kpis, controls)
    channels = [str(c) for c in pd.unique(marketing["channel"])]
    control_cols = [c for c in (controls.columns if controls is not None else []) if c != "date"]
    factors = ds.table("external_factors") if ds.has("external_factors") else None
    return wide, channels, control_cols, factors


def fit_dataset(ds: Dataset, progress: Progress | None = None, **options: Any) -> dict[str, Any]:
    """Fit the model on a dataset and return the artifact (with the data version recorded)."""
    from core.mmm.curves import detect_fixed_costs
    from core.mmm.fit import fit_mmm

    wide, channels, control_cols, factors = wide_from_dataset(ds)
    marketing = ds.table("marketing")
    lift_tests = ds.table("lift_tests") if ds.has("lift_tests") else None
    artifact = fit_mmm(
        wide,
        date_col="date",
        kpi_col="revenue",
        spend_cols=channels,
        control_cols=control_cols or None,
        external_factors=factors,
        progress=progress,
        platform_revenue=_platform_revenue(marketing),
        fixed_cost_cols=sorted(detect_fixed_costs(marketing)) or None,
        lift_tests=lift_tests,
        **options,
    )
    artifact["data_version"] = ds.version
    return artifact


def _platform_revenue(marketing: pd.DataFrame) -> dict[str, float]:
    """Platform-reported revenue per channel over the whole data (what the ad tools claim), when reported."""
    if "revenue" not in marketing.columns or marketing["revenue"].isna().all():
        return {}
    g = marketing.groupby("channel", observed=True)["revenue"].sum()
    return {str(k): float(v) for k, v in g.items() if pd.notna(v) and v > 0}


def fit_current(store: Store, workspace: str, progress: Progress | None = None, **options: Any) -> dict[str, Any]:
    """Fit the current dataset and store the artifact under its version (idempotent: same data, same result)."""
    ds = load_dataset(store, workspace)
    artifact = fit_dataset(ds, progress=progress, **options)
    save_model(store, workspace, ds.version, artifact)
    return artifact


def fit_job(store: Store, workspace: str, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Job entry point (kind ``mmm_fit``): fit the dataset version named in ``params``."""
    ds = load_dataset(store, workspace)
    if params.get("version") and params["version"] != ds.version:
        raise ValueError(f"data version {params['version']} is no longer current ({ds.version}); fit again")
    options = {k: params[k] for k in ("seed", "n_boot", "target_roas", "country", "kpi_form") if k in params}
    progress(0.01, "preparing data")
    artifact = fit_dataset(ds, progress=progress, **options)
    save_model(store, workspace, ds.version, artifact)
    return {
        "version": ds.version,
        "channels": sorted(artifact["channels"]),
        "fit": artifact.get("fit", {}),
    }
