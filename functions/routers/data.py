"""Data import and the current dataset: bring your own files, see what is loaded."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, UploadFile

from functions.deps import get_store, get_workspace
from functions.importing import ImportOptions, ImportRejected, describe_dataset, import_files
from functions.storage import Store

log = logging.getLogger(__name__)
router = APIRouter(tags=["data"])

def max_upload_bytes() -> int:
    """Largest import accepted (``GROWTHLENS_MAX_UPLOAD_BYTES``, default 200 MB; 10 MB behind API Gateway, where
    larger files go through a presigned S3 upload)."""
    return int(os.environ.get("GROWTHLENS_MAX_UPLOAD_BYTES", str(200 * 1024 * 1024)))


def _split(value: str | None) -> list[str] | None:
    if value is None or not value.strip():
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def start_model(store: Store, workspace: str) -> str | None:
    """Start the model fit for the new data when the model service is present; returns the job id or None."""
    if importlib.util.find_spec("functions.mmm_service") is None:
        return None
    service = importlib.import_module("functions.mmm_service")
    job = service.ensure_model(store, workspace)
    if isinstance(job, dict):
        return job.get("id")
    return job if isinstance(job, str) else None


@router.post("/api/data/import")
def import_data(
    files: list[UploadFile] = File(..., description="data files: CSV, TSV or Parquet (several at once)"),
    kpi_col: str | None = Form(None, description="wide format: the KPI column (default 'revenue')"),
    spend_cols: str | None = Form(None, description="wide format: comma-separated spend columns"),
    control_cols: str | None = Form(None, description="wide format: comma-separated control columns"),
    date_col: str | None = Form(None, description="the date column when it is not called 'date'"),
    format: Literal["long", "wide"] | None = Form(None, description="expected layout (default: recognised)"),
    dry_run: bool = Form(False, description="validate only, write nothing"),
    store: Store = Depends(get_store),
    workspace: str = Depends(get_workspace),
) -> dict[str, Any]:
    """Validate the files and make them the workspace's dataset (atomically), then start the model fit.

    200 → ``{version, tables: {name: rows}, warnings, ..., model_job}``; 422 → ``{"detail": {"message",
    "problems": [{"file", "row", "column", "problem"}]}}`` and nothing is written. A plain ``def``: parsing and
    validation run in the thread pool, never on the event loop.
    """
    payload: list[tuple[str, bytes]] = []
    total = 0
    limit = max_upload_bytes()
    for f in files:
        data = f.file.read()
        total += len(data)
        if total > limit:
            raise HTTPException(status_code=413, detail=f"upload larger than {limit // 2**20} MB")
        payload.append((f.filename or f"file{len(payload) + 1}.csv", data))
    try:
        options = ImportOptions(kpi_col=kpi_col or None, spend_cols=_split(spend_cols),
                                control_cols=_split(control_cols), date_col=date_col or None, format=format)
        result = import_files(store, workspace, payload, options, dry_run=dry_run)
    except ImportRejected as e:
        raise HTTPException(status_code=422, detail={
            "message": e.message.splitlines()[0], "problems": [p.as_dict() for p in e.problems]}) from e
    except ValueError as e:
        raise HTTPException(status_code=422, detail={"message": str(e), "problems": []}) from e
    result["model_job"] = None
    if not dry_run:
        try:
            result["model_job"] = start_model(store, workspace)
        except Exception as e:  # noqa: BLE001 - the import succeeded; the fit can be started again
            log.warning("could not start the model fit after import: %s", e)
            result["warnings"] = [*result["warnings"], f"the model fit could not be started: {e}"]
    return result


@router.get("/api/data")
def data_info(store: Store = Depends(get_store), workspace: str = Depends(get_workspace)) -> dict[str, Any]:
    """The current dataset: version, tables with row counts, date range, channels (404 when nothing imported)."""
    return describe_dataset(store, workspace)
