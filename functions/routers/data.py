"""Data import and the current dataset: bring your own files, see what is loaded.

Files up to ``GROWTHLENS_MAX_UPLOAD_BYTES`` ride in the import request (multipart); larger ones are uploaded first
(``POST /api/data/uploads``: a presigned S3 PUT deployed, ``PUT /api/data/uploads/{id}`` locally, see
:mod:`functions.uploads`) and imported with ``POST /api/data/import {"upload_id": ...}`` through the same importers.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from functions import uploads
from functions.deps import get_store, get_workspace
from functions.importing import ImportOptions, ImportRejected, describe_dataset, import_files
from functions.storage import LocalStore, Store

log = logging.getLogger(__name__)
router = APIRouter(tags=["data"])


class NewUpload(BaseModel):
    """``POST /api/data/uploads``: the file about to be uploaded."""

    model_config = ConfigDict(extra="forbid")
    filename: str = Field(..., min_length=1, max_length=200, description="e.g. marketing.csv (CSV, TSV, Parquet)")
    content_type: str | None = Field(None, max_length=200, description="sent with the PUT when given")


class UploadImport(BaseModel):
    """``POST /api/data/import`` as JSON: import files uploaded before, with the same options as the form."""

    model_config = ConfigDict(extra="forbid")
    upload_id: str | None = Field(None, pattern=uploads.UPLOAD_ID_PATTERN)
    upload_ids: list[str] | None = Field(None, max_length=50, description="several files at once")
    kpi_col: str | None = Field(None, max_length=200)
    spend_cols: list[str] | str | None = None
    control_cols: list[str] | str | None = None
    date_col: str | None = Field(None, max_length=200)
    format: Literal["long", "wide"] | None = None
    dry_run: bool = False


async def json_import(request: Request) -> UploadImport | None:
    """The JSON form of an import (``{"upload_id": ...}``), or None for a multipart one."""
    if "json" not in request.headers.get("content-type", "").lower():
        return None
    try:
        return UploadImport.model_validate_json(await request.body())
    except ValidationError as e:
        raise RequestValidationError([{**err, "loc": ("body", *err["loc"])}
                                      for err in e.errors(include_url=False, include_context=False)]) from e


def _split(value: str | list[str] | None) -> list[str] | None:
    if isinstance(value, list):
        return [v.strip() for v in value if v.strip()] or None
    if value is None or not value.strip():
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _upload_error(e: uploads.UploadError) -> HTTPException:
    return HTTPException(status_code=e.status, detail=str(e))


@router.post("/api/data/uploads", status_code=201)
def new_upload(req: NewUpload, request: Request, store: Store = Depends(get_store),
               workspace: str = Depends(get_workspace)) -> dict[str, Any]:
    """Start an upload of a file too large for one request: ``{upload_id, method: "PUT", url, headers,
    expires_at, max_bytes}``. PUT the file's bytes to ``url`` with ``headers`` (a presigned S3 URL when deployed,
    this API's ``PUT /api/data/uploads/{upload_id}`` with the local store), then import it with
    ``POST /api/data/import {"upload_id": ...}``."""
    try:
        out = uploads.create_upload(store, workspace, req.filename, req.content_type)
    except uploads.UploadError as e:
        raise _upload_error(e) from e
    if "url" not in out:
        url = request.url_for("put_upload", upload_id=out["upload_id"])
        out.update(url=str(url), path=url.path)
    out["then"] = {"method": "POST", "path": "/api/data/import", "json": {"upload_id": out["upload_id"]}}
    return out


@router.put("/api/data/uploads/{upload_id}", name="put_upload")
async def put_upload(request: Request, upload_id: str = Path(..., pattern=uploads.UPLOAD_ID_PATTERN),
                     store: Store = Depends(get_store), workspace: str = Depends(get_workspace)) -> dict[str, Any]:
    """Receive an upload's bytes (local store only; deployed, the file goes to the presigned S3 URL). The body is
    streamed to a temporary file and moved into place when complete; file work runs in the thread pool."""
    if not isinstance(store, LocalStore):
        raise HTTPException(status_code=409, detail="this store takes uploads at the presigned URL that "
                            "POST /api/data/uploads returned")
    try:
        await run_in_threadpool(uploads.upload_manifest, store, workspace, upload_id, for_writing=True)
    except uploads.UploadError as e:
        raise _upload_error(e) from e
    out = await run_in_threadpool(store.open_write, uploads.data_key(workspace, upload_id))
    try:
        async for chunk in request.stream():  # the middleware stops it past GROWTHLENS_MAX_STORED_UPLOAD_BYTES
            if chunk:
                await run_in_threadpool(out.write, chunk)
        await run_in_threadpool(out.commit)
    except BaseException:
        await run_in_threadpool(out.abort)
        raise
    return {"upload_id": upload_id, "bytes": out.size}


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
    files: list[UploadFile] | None = File(None, description="data files: CSV, TSV or Parquet (several at once)"),
    kpi_col: str | None = Form(None, description="wide format: the KPI column (default 'revenue')"),
    spend_cols: str | None = Form(None, description="wide format: comma-separated spend columns"),
    control_cols: str | None = Form(None, description="wide format: comma-separated control columns"),
    date_col: str | None = Form(None, description="the date column when it is not called 'date'"),
    format: Literal["long", "wide"] | None = Form(None, description="expected layout (default: recognised)"),
    dry_run: bool = Form(False, description="validate only, write nothing"),
    from_uploads: UploadImport | None = Depends(json_import),
    store: Store = Depends(get_store),
    workspace: str = Depends(get_workspace),
) -> dict[str, Any]:
    """Validate the files and make them the workspace's dataset (atomically), then start the model fit.

    The files come in the request (multipart ``files``) or, as JSON ``{"upload_id": ...}`` (or ``upload_ids``)
    with the same options, from uploads made with ``POST /api/data/uploads``; a publishing import deletes them.
    200 → ``{version, tables: {name: rows}, warnings, ..., model_job}``; 422 → ``{"detail": {"message",
    "problems": [{"file", "row", "column", "problem"}]}}`` and nothing is written. A plain ``def``: parsing and
    validation run in the thread pool, never on the event loop.
    """
    payload: list[tuple[str, bytes]] = []
    upload_ids: list[str] = []
    if from_uploads is not None:
        upload_ids = [*([from_uploads.upload_id] if from_uploads.upload_id else []), *(from_uploads.upload_ids or [])]
        if not upload_ids:
            raise HTTPException(status_code=422, detail='give "upload_id" (or "upload_ids") of a finished upload')
        try:
            payload = [uploads.read_upload(store, workspace, u)[:2] for u in dict.fromkeys(upload_ids)]
        except uploads.UploadError as e:
            raise _upload_error(e) from e
        o = from_uploads
        kpi_col, spend_cols, control_cols, date_col, format, dry_run = (
            o.kpi_col, o.spend_cols, o.control_cols, o.date_col, o.format, o.dry_run)
    elif not files:
        raise HTTPException(status_code=422, detail='send the files (multipart "files") or JSON {"upload_id": ...}')
    total = 0
    limit = uploads.max_upload_bytes()
    for f in files if from_uploads is None else []:
        data = f.file.read()
        total += len(data)
        if total > limit:
            raise HTTPException(status_code=413, detail=f"upload larger than {limit / 2**20:g} MB: "
                                f"{uploads.too_large_hint('/api/data/import')}")
        payload.append((f.filename or f"file{len(payload) + 1}.csv", data))
    names = [n for n, _ in payload]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise HTTPException(status_code=422, detail={"message": f"two files share the name {', '.join(dup)}; "
                                                                "rename one", "problems": []})
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
        for u in upload_ids:
            uploads.discard_upload(store, workspace, u)
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
