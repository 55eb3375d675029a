"""/api/imports: an editor uploads a file of outlines (or complaint points) into one layer.

The upload is streamed to a temporary file and counted as it comes (413 past the limit,
before the rest is read); then `geo.io.importer.import_file` runs in a worker thread. The answer
is the import report: 200 when written, 422 (with the report) when features were refused and
nothing was written, 422 with `detail` when the file as a whole cannot be used.
"""

import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette import formparsers
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from api.auth import require
from api.errors import AUTH_RESPONSES, NUL_REFUSED, Message
from geo import TitlemapError
from geo.core.model import User
from geo.core.vocabulary import load_vocabulary
from geo.io.archive import Limits
from geo.io.importer import import_file
from geo.io.layers import IMPORT_LAYERS
from geo.ledger.users import NO_HOME_COUNTY, home_county

router = APIRouter(prefix="/api", tags=["imports"])

FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the small fields around the file
CHUNK = 1024 * 1024


def multipart_body(required: list[str], fields: dict[str, dict]) -> dict:
    """The OpenAPI of an upload's form (`openapi_extra`), for a route reading it itself."""
    schema = {"type": "object", "required": required, "properties": fields}
    content = {"multipart/form-data": {"schema": schema}}
    return {"requestBody": {"required": True, "content": content}}


UPLOAD_SCHEMA = multipart_body(
    ["file", "layer"],
    {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "GeoPackage, Shapefile zip, GeoJSON, DXF, CSV, "
            "界址点坐标交换文件 TXT / boundary coordinate TXT",
        },
        "layer": {"type": "string", "enum": list(IMPORT_LAYERS)},
        "partial": {
            "type": "boolean",
            "default": False,
            "description": "只写入无误的要素 / write the good features only",
        },
        "crs": {
            "type": "string",
            "description": "源坐标系，如 4544；缺省则读文件或按坐标推断 / "
            "source CRS; default: the file's own or inferred",
        },
        "trust": {
            "type": "string",
            "enum": ["header", "coordinates"],
            "description": "界址点文件头与坐标不符时以谁为准 / which wins when a "
            "coordinate file's header and coordinates disagree",
        },
        "gcj02": {
            "type": "boolean",
            "default": False,
            "description": "坐标描自高德/腾讯地图（GCJ-02），换算为 CGCS2000"
            "（约 1 米）/ traced on Gaode/Tencent maps: correct to CGCS2000 (≈1 m)",
        },
        "parameters": {
            "type": "string",
            "description": "西安80/北京54 → CGCS2000 七参数 dx,dy,dz,rx,ry,rz,k"
            "（米、秒、ppm）/ seven parameters for Xi'an 1980 / Beijing 1954",
        },
    },
)


# What an upload route may answer besides the errors every operation may (api.errors).
UPLOAD_RESPONSES: dict[int | str, dict] = AUTH_RESPONSES | {
    413: {"model": Message, "description": "上传过大 / upload too large"},
    415: {"model": Message, "description": "应为 multipart/form-data / not multipart"},
}


def limits_of(request: Request) -> Limits:
    """The app's upload limits (`app.state.import_limits`), else the defaults."""
    return getattr(request.app.state, "import_limits", None) or Limits()


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        413, f"上传文件过大，上限 {limit // (1024 * 1024)} MB / upload larger than the limit"
    )


async def _limited(request: Request, limit: int) -> AsyncIterator[bytes]:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise _too_large(limit)
        yield chunk


@asynccontextmanager
async def upload_form(
    request: Request, limit: int, max_files: int = 1, max_fields: int = 10
) -> AsyncIterator[FormData]:
    """The multipart form of an upload of one file (or `max_files`, /api/onboard's folder) of
    at most `limit` bytes in all, read by a route that takes only the request — so its
    dependencies (the token) are checked before a byte of the body is read. 413 at once for a
    Content-Length over the limit, else as soon as the stream passes it; 415 for anything but
    multipart; 422 for a NUL in a field or file name."""
    if formparsers.multipart is None:
        raise HTTPException(
            501, "服务器未安装 python-multipart，无法接收上传 / install python-multipart"
        )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
        raise _too_large(limit)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise HTTPException(415, "请以 multipart/form-data 上传 / send multipart/form-data")
    parser = MultiPartParser(
        request.headers, _limited(request, limit + FORM_OVERHEAD), max_files=max_files,
        max_fields=max_fields,
    )  # fmt: skip
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise HTTPException(400, f"上传格式有误 / malformed upload: {exc.message}") from None
    try:
        for value in form.values():
            text = (value.filename or "") if isinstance(value, UploadFile) else value
            if "\x00" in text:
                raise HTTPException(422, NUL_REFUSED)
        yield form
    finally:
        await form.close()


def _safe_suffix(filename: str | None) -> str:
    suffix = Path(filename or "").suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""


def _display_name(filename: str | None) -> str:
    # The client's path means nothing here: keep the last part, without control characters.
    name = re.split(r"[\\/]", filename or "")[-1]
    return re.sub(r"[\x00-\x1f\x7f]", "", name)[:200] or "upload"


def form_text(value) -> str | None:
    return str(value or "").strip() or None


def form_flag(value: str | None) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes", "on", "是")


@router.post(
    "/imports",
    summary="导入图层文件 / import a file into a layer (editors)",
    openapi_extra=UPLOAD_SCHEMA,
    responses=UPLOAD_RESPONSES
    | {422: {"description": "被拒绝：报告或原因 / refused: the report, or why"}},
)
async def create_import(
    request: Request, user: Annotated[User, Depends(require("editor"))]
) -> JSONResponse:
    if home_county(user) is None:  # a region's user given no county, or several
        raise HTTPException(403, NO_HOME_COUNTY)
    limits = limits_of(request)
    settings = request.app.state.settings  # the county's seven parameters and words, if any
    async with upload_form(request, limits.upload_bytes) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise HTTPException(422, "缺少文件字段 file / the form needs a file field")
        layer = str(form.get("layer") or "")
        if layer not in IMPORT_LAYERS:
            raise HTTPException(
                422,
                f"layer 应为 / layer must be one of: {', '.join(IMPORT_LAYERS)}（收到 {layer!r}）",
            )
        with tempfile.TemporaryDirectory(prefix="titlemap-upload-") as folder:
            path = Path(folder) / f"upload{_safe_suffix(upload.filename)}"
            size = await run_in_threadpool(_save, upload, path)
            if size > limits.upload_bytes:
                raise _too_large(limits.upload_bytes)
            try:
                report = await run_in_threadpool(
                    import_file,
                    request.app.state.engine,
                    path,
                    home_county(user),
                    layer,
                    partial=form_flag(form.get("partial")),
                    crs=str(form.get("crs") or "").strip() or None,
                    source=_display_name(upload.filename),
                    limits=limits,
                    trust=form_text(form.get("trust")),
                    gcj02=form_flag(form.get("gcj02")),
                    parameters=form_text(form.get("parameters")),
                    datum_parameters=settings.datum_parameters,
                    helmert_convention=settings.helmert_convention,
                    vocabulary=load_vocabulary(settings.vocabulary),
                )
            except TitlemapError as exc:
                raise HTTPException(422, str(exc)) from None
    status = 200 if report.committed or not report.refused else 422
    return JSONResponse(report.to_dict(), status_code=status)


def _save(upload: UploadFile, path: Path) -> int:
    upload.file.seek(0)
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out, CHUNK)
    return path.stat().st_size
