"""/api/onboard: a county's files uploaded together, recognised and imported in one transaction.

The same as `titlemap onboard` (`geo.io.onboard`), for the files of a folder sent in one
multipart upload (`files`, several; a browser's folder upload keeps their relative paths), with
the same limits as /api/imports (`geo.io.archive.Limits`: the whole upload, and each zip). An
editor onboards their own county, an admin any county — and only an admin creates one (`name`).
The answer is the plan with each file's report: 200 when written (or, with `dry_run`, when
nothing would be refused), 422 with the plan when something was refused and nothing written,
404 for an unknown county, 422 with `detail` when the upload cannot be used at all.
"""

import re
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from api.auth import require
from api.routers.imports import (
    CHUNK,
    UPLOAD_RESPONSES,
    form_flag,
    form_text,
    limits_of,
    upload_form,
)
from geo import TitlemapError
from geo.core.model import Role, User
from geo.core.vocabulary import load_vocabulary
from geo.io.load import county_exists
from geo.io.onboard import ORDER, onboard, parse_layers
from geo.ledger.counties import NoSuchCounty
from geo.ledger.users import may

router = APIRouter(prefix="/api", tags=["imports"])

FORM = {
    "type": "object",
    "required": ["files"],
    "properties": {
        "files": {
            "type": "array",
            "items": {"type": "string", "format": "binary"},
            "description": "各部门交来的文件（可带子文件夹路径；zip、GPKG、Shapefile 各部分、"
            "xlsx、CSV、界址点 TXT）/ the folder's files",
        },
        "county": {"type": "string", "description": "县代码，缺省为本人所在县 / default: yours"},
        "name": {
            "type": "string",
            "description": "县名：县不存在时新建（管理员）/ creates the county (admins)",
        },
        "dry_run": {"type": "boolean", "default": False},
        "partial": {"type": "boolean", "default": False},
        "layer": {
            "type": "array",
            "items": {"type": "string"},
            "description": "文件=图层 / FILE=layer, one of " + ", ".join(ORDER),
        },
    },
}
UPLOAD_SCHEMA = {"requestBody": {"required": True, "content": {"multipart/form-data": {
    "schema": FORM}}}}  # fmt: skip


def _relative(filename: str | None) -> PurePosixPath | None:
    """The upload's name as a safe relative path: no drive, no .., no control characters."""
    parts = [re.sub(r"[\x00-\x1f\x7f]", "", part) for part in re.split(r"[\\/]", filename or "")]
    parts = [part[:200] for part in parts if part not in ("", ".", "..") and ":" not in part]
    return PurePosixPath(*parts) if parts else None


def _save_all(uploads: list[UploadFile], folder: Path) -> None:
    """The uploads written under their relative names (the form's size is bounded already)."""
    for upload in uploads:
        relative = _relative(upload.filename)
        if relative is None:
            raise HTTPException(422, "上传的文件没有文件名 / an upload has no file name")
        target = folder.joinpath(*relative.parts)
        if target.exists():
            raise HTTPException(422, f"文件 {relative} 上传了两次 / uploaded twice")
        target.parent.mkdir(parents=True, exist_ok=True)
        upload.file.seek(0)
        with target.open("wb") as out:
            shutil.copyfileobj(upload.file, out, CHUNK)


def _county(request: Request, user: User, county: str, name: str | None) -> None:
    """Editors onboard their own county; admins any, and only they create one."""
    admin = may(user, Role.ADMIN)
    if county != user.county_code and not admin:
        raise HTTPException(
            403, f"只能接入本县（{user.county_code}），其他县需要管理员 / only your own county"
        )
    if name and not admin:
        with request.app.state.engine.connect() as conn:
            if not county_exists(conn, county):
                raise HTTPException(403, "新建县需要管理员 / creating a county needs an admin")


@router.post(
    "/onboard",
    summary="接入一个县：多个文件一次导入 / onboard a county from its files (editors)",
    openapi_extra=UPLOAD_SCHEMA,
    responses=UPLOAD_RESPONSES
    | {
        404: {"description": "没有这个县 / no such county"},
        422: {"description": "被拒绝：计划与原因 / refused: the plan, or why"},
    },
)
async def onboard_upload(
    request: Request, user: Annotated[User, Depends(require(Role.EDITOR))]
) -> JSONResponse:
    limits = limits_of(request)
    settings = request.app.state.settings
    form_of = upload_form(request, limits.upload_bytes, max_files=limits.zip_entries,
                          max_fields=100)  # fmt: skip
    async with form_of as form:
        uploads = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
        if not uploads:
            raise HTTPException(422, "缺少文件字段 files / the form needs files")
        county = form_text(form.get("county")) or user.county_code
        name = form_text(form.get("name"))
        _county(request, user, county, name)
        with tempfile.TemporaryDirectory(prefix="titlemap-onboard-upload-") as folder:
            await run_in_threadpool(_save_all, uploads, Path(folder))
            try:
                layers = parse_layers([str(v) for v in form.getlist("layer") if str(v).strip()])
                result = await run_in_threadpool(
                    onboard, request.app.state.engine, folder, county, name=name,
                    dry_run=form_flag(form.get("dry_run")), partial=form_flag(form.get("partial")),
                    layers=layers, vocabulary=load_vocabulary(settings.vocabulary),
                    limits=limits, user=user.name, datum_parameters=settings.datum_parameters,
                    helmert_convention=settings.helmert_convention,
                )  # fmt: skip
            except NoSuchCounty as exc:
                raise HTTPException(404, str(exc)) from None
            except TitlemapError as exc:
                raise HTTPException(422, str(exc)) from None
    done = result.written or (result.dry_run and not result.refusals())
    return JSONResponse(result.to_dict(), status_code=200 if done else 422)
