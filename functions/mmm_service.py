"""The marketing mix model as a service: fitted once per data version, stored, read by every request.

A fit is a job (``functions.jobs`` kind ``mmm_fit``): ``POST /api/models`` and a successful import start one; the
artifact lands at ``result_key(ws, version, "mmm", "model.json")`` so warm and cold Lambdas alike read it instead of
refitting. The fit itself is :func:`core.mmm.fit.fit_mmm` on the dataset pivoted to one row per date.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from functions.datasets import Dataset, NoDataset, current_version, load_dataset, result_key
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


def load_model(store: Store, workspace: str) -> dict[str, Any] | None:
    """The artifact of the current data version, or None when there is no dataset or no fit yet."""
    try:
        version = current_version(store, workspace)["version"]
    except NoDataset:
        return None
    try:
        return store.read_json(model_key(workspace, version))
    except KeyNotFound:
        return None


def require_model(store: Store, workspace: str) -> dict[str, Any]:
    """The current artifact or :class:`NoModel` with a message that says what to do."""
    model = load_model(store, workspace)
    if model is None:
        status = model_status(store, workspace)
        job = status.get("job")
        if job and job.get("status") in ("queued", "running"):
            raise NoModel(f"the model is being fitted (job {job['id']}, {job.get('message', '')}); try again shortly")
        if job and job.get("status") == "failed":
            raise NoModel(f"the last model fit failed: {job.get('error')}")
        raise NoModel("no model fitted for the current data yet: POST /api/models to fit one")
    return model


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
    from core.mmm.fit import fit_mmm
    from core.mmm.plan import detect_fixed_costs

    wide, channels, control_cols, factors = wide_from_dataset(ds)
    marketing = ds.table("marketing")
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
    store.write_json(model_key(workspace, ds.version), artifact)
    return artifact


def fit_job(store: Store, workspace: str, params: dict[str, Any], progress: Progress) -> dict[str, Any]:
    """Job entry point (kind ``mmm_fit``): fit the dataset version named in ``params``."""
    ds = load_dataset(store, workspace)
    if params.get("version") and params["version"] != ds.version:
        raise ValueError(f"data version {params['version']} is no longer current ({ds.version}); fit again")
    options = {k: params[k] for k in ("seed", "n_boot", "target_roas") if k in params}
    progress(0.01, "preparing data")
    artifact = fit_dataset(ds, progress=progress, **options)
    store.write_json(model_key(workspace, ds.version), artifact)
    return {
        "version": ds.version,
        "channels": sorted(artifact["channels"]),
        "fit": artifact.get("fit", {}),
    }
