"""Ledger spreadsheets in and out, and the map layers as files.

- `POST /api/ledger/import` (editors): the county's own xlsx or CSV into the user's county's
  ledger, its headers and words read as the county writes them (`columns` names headers the
  way --columns does, remembered for the county; TITLEMAP_VOCABULARY adds the county's words);
  200 with the report when applied (or checked, with `dry_run`), 422 with the report when rows
  were refused and nothing changed, 422 with a message when the file is unreadable.
- `GET /api/exports/ledger.xlsx`, `ledger.csv` (`?encoding=gbk` for GBK), and
  `/api/exports/{compounds|parcels}.{gpkg|geojson}` (`?names=en` for English field names),
  `/api/exports/{compounds|parcels}.txt` (the boundary coordinate TXT; `codes`, `township`).
"""

import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile

from api.auth import require
from api.dependencies import county_of, user_errors
from api.pages import XLSX_TYPE
from api.routers.imports import (
    UPLOAD_RESPONSES,
    form_flag,
    form_text,
    multipart_body,
    upload_form,
)
from geo.core.dates import today
from geo.core.model import Role, User
from geo.core.vocabulary import load_vocabulary
from geo.io.exports import BOUNDARY_TXT, MEDIA_TYPES, export_layer
from geo.io.ledger_sheet import county_name, export_ledger, import_ledger, parse_columns
from geo.ledger.users import NO_HOME_COUNTY, home_county

router = APIRouter(tags=["ledger files"])

MAX_UPLOAD = 100 * 1024 * 1024
SUFFIXES = (".xlsx", ".xlsm", ".csv", ".txt")
LAYER_NAMES = {"compounds": "小区", "parcels": "宗地"}


def _workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="titlemap-"))


def _save_upload(upload: UploadFile, folder: Path) -> tuple[Path, str]:
    """The upload on disk under a safe name with its own suffix; (path, the name it came with)."""
    name = Path(upload.filename or "upload").name or "upload"
    suffix = Path(name).suffix.lower()
    target = folder / f"upload{suffix if suffix in SUFFIXES else ''}"
    size = 0
    with target.open("wb") as out:
        while chunk := upload.file.read(1 << 20):
            size += len(chunk)
            if size > MAX_UPLOAD:
                raise HTTPException(
                    413, f"文件超过 {MAX_UPLOAD >> 20} MB / the file is larger than the limit"
                )
            out.write(chunk)
    return target, name


COLUMNS_HELP = (
    '本县表头对应的字段，如 "已交证套数=units_transferred,备注=-"，导入后记住 / the county\'s '
    "headers → fields (as --columns), remembered for its next imports"
)
SHEET_UPLOAD = multipart_body(
    ["file"],
    {
        "file": {"type": "string", "format": "binary",
                 "description": "台账文件 / the ledger file (.xlsx, .csv)"},
        "partial": {"type": "boolean", "default": False,
                    "description": "只导入无误的行 / apply the good rows"},
        "dry_run": {"type": "boolean", "default": False,
                    "description": "只核对不写入 / check only"},
        "columns": {"type": "string", "description": COLUMNS_HELP},
    },
)  # fmt: skip


@router.post(
    "/api/ledger/import",
    summary="导入化解台账 xlsx/CSV（编辑员）/ import the ledger spreadsheet (editor)",
    description=(
        "导入本县的化解台账（xlsx 或 UTF-8/GBK CSV）。表头、卡点和状态按本县的说法读取，原文保留；"
        "有任何一行不成立（无编号和名称、套数非整数或为负、登记套数超过任务）则整表不导入，除非 "
        "partial=true。未变化的行不产生事件。/ Imports the user's county's ledger, its headers and "
        "words as the county writes them; any impossible row and nothing changes unless "
        "partial=true; unchanged rows append no event."
    ),
    openapi_extra=SHEET_UPLOAD,
    responses=UPLOAD_RESPONSES
    | {422: {"description": "有行被拒绝或文件无法读取 / rows refused or unreadable"}},
)
async def import_sheet(
    request: Request, user: Annotated[User, Depends(require(Role.EDITOR))]
) -> Any:
    if home_county(user) is None:  # a region's user given no county, or several
        raise HTTPException(403, NO_HOME_COUNTY)
    # The token is checked (the dependency) before a byte of the file is read (upload_form).
    async with upload_form(request, MAX_UPLOAD) as form:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise HTTPException(422, "缺少文件字段 file / the form needs a file field")
        return await run_in_threadpool(
            _import_sheet, request, file, user, form_flag(form.get("partial")),
            form_flag(form.get("dry_run")), form_text(form.get("columns")),
        )  # fmt: skip


def _import_sheet(
    request: Request, file: UploadFile, user: User, partial: bool, dry_run: bool,
    columns: str | None,
) -> Any:  # fmt: skip
    folder = _workdir()
    try:
        with user_errors():  # a bad --columns or an unreadable file → 422 with its message
            given = parse_columns(columns)
            path, name = _save_upload(file, folder)
            report = import_ledger(
                request.app.state.engine,
                path,
                home_county(user),
                user.name,
                partial=partial,
                file_name=name,
                dry_run=dry_run,
                vocabulary=load_vocabulary(request.app.state.settings.vocabulary),
                columns=given,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    body = report.to_dict() | {"message": "\n".join(report.lines())}
    if report.applied or (dry_run and (partial or not report.refused)):
        return body
    detail = (
        f"{name}：{len(report.refused)} 行有误，台账未作任何修改 / {len(report.refused)} rows "
        "refused, nothing changed"
    )
    return JSONResponse(status_code=422, content={"detail": detail, "report": body})


def _file(path: Path, folder: Path, media_type: str, filename: str) -> FileResponse:
    return FileResponse(
        path,
        media_type=media_type,
        filename=filename,
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )


def _ledger_file(request: Request, county: str | None, fmt: str, gbk: bool = False):
    county = county_of(request, county)
    engine = request.app.state.engine
    folder = _workdir()
    try:
        with user_errors(404), engine.connect() as conn:
            name = county_name(conn, county)
        day = today()
        path = export_ledger(engine, county, folder / f"ledger.{fmt}", fmt, gbk=gbk, as_of=day)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    media = XLSX_TYPE if fmt == "xlsx" else f"text/csv; charset={'gb18030' if gbk else 'utf-8'}"
    return _file(path, folder, media, f"{name}化解台账_{_stamp(day)}.{fmt}")


def _stamp(day: date) -> str:
    return day.strftime("%Y%m%d")


@router.get(
    "/api/exports/ledger.xlsx",
    summary="导出化解台账 xlsx（本县格式）/ the ledger as xlsx in the county's layout",
    response_class=FileResponse,
    responses={200: {"content": {XLSX_TYPE: {}}}},
)
def ledger_xlsx(request: Request, county: str | None = None):
    return _ledger_file(request, county, "xlsx")


@router.get(
    "/api/exports/ledger.csv",
    summary="导出化解台账 CSV / the ledger as CSV (UTF-8 with BOM, or GBK)",
    response_class=FileResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def ledger_csv(
    request: Request,
    county: str | None = None,
    encoding: Literal["utf-8", "gbk"] = "utf-8",
):
    return _ledger_file(request, county, "csv", gbk=encoding == "gbk")


def _layer_file(
    request: Request, layer: str, fmt: str, county: str | None, names: str = "zh", **narrow
):
    county = county_of(request, county)
    engine = request.app.state.engine
    folder = _workdir()
    suffix = "txt" if fmt == BOUNDARY_TXT else fmt
    try:
        with user_errors(404), engine.connect() as conn:
            name = county_name(conn, county)
        with user_errors():
            path = export_layer(engine, county, layer, folder / f"{layer}.{suffix}", fmt,
                                names=names, **narrow)  # fmt: skip
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    stamp = _stamp(today())
    media = MEDIA_TYPES[fmt]
    if fmt == BOUNDARY_TXT:
        media += f"; charset={'utf-8' if narrow.get('utf8') else 'gb18030'}"
    return _file(path, folder, media, f"{name}{LAYER_NAMES[layer]}_{stamp}.{suffix}")


Layer = Literal["compounds", "parcels"]
Names = Literal["zh", "en"]


@router.get(
    "/api/exports/{layer}.gpkg",
    summary="小区或宗地 GeoPackage（含台账字段，EPSG:4490）/ compounds or parcels as GeoPackage",
    response_class=FileResponse,
    responses={200: {"content": {MEDIA_TYPES["gpkg"]: {}}}},
)
def layer_gpkg(request: Request, layer: Layer, county: str | None = None, names: Names = "zh"):
    return _layer_file(request, layer, "gpkg", county, names)


@router.get(
    "/api/exports/{layer}.geojson",
    summary="小区或宗地 GeoJSON（含台账字段，EPSG:4490）/ compounds or parcels as GeoJSON",
    response_class=FileResponse,
    responses={200: {"content": {MEDIA_TYPES["geojson"]: {}}}},
)
def layer_geojson(request: Request, layer: Layer, county: str | None = None, names: Names = "zh"):
    return _layer_file(request, layer, "geojson", county, names)


@router.get(
    "/api/exports/{layer}.txt",
    summary="界址点坐标交换文件（报备用，本县高斯投影带，GBK）/ the land office's boundary TXT",
    description=(
        "勘测定界界址点坐标交换格式：X 为北坐标，毫米，面积公顷。可按编号（codes，逗号分隔）或乡镇"
        "（township，代码或名称）选取；utf8=true 输出 UTF-8。/ The boundary coordinate TXT in the "
        "county's Gauss-Krüger zone (X = northing, mm, area in ha), GBK unless utf8=true; narrow "
        "with codes (comma-separated) or township (code or name)."
    ),
    response_class=FileResponse,
    responses={200: {"content": {"text/plain": {}}}},
)
def layer_txt(
    request: Request,
    layer: Layer,
    county: str | None = None,
    codes: str | None = None,
    township: str | None = None,
    utf8: bool = False,
):
    chosen = [c for c in (codes or "").split(",") if c.strip()] or None
    return _layer_file(request, layer, BOUNDARY_TXT, county, codes=chosen, township=township,
                       utf8=utf8)  # fmt: skip
