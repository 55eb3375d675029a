"""A compound's papers (一小区一档): upload, list, download, thumbnails, soft delete, photo points.

- `POST /api/compounds/{code}/files` — multipart: `file`, `title`, `task_id` (a task reply's
  file). Editors of the compound's entry and the office. The person and the compound are
  checked before a byte of the body is read; a cookie-signed upload carries its CSRF token in
  the X-CSRF-Token header (the form is not read to look for it). The body is counted as it
  comes (413 past the limit, api.routers.imports.upload_form); the bytes are then checked by
  content (geo.io.uploads) and kept (geo.ledger.files).
- `GET /api/compounds/{code}/files[?task_id=]` — the list, and whether the asker may upload.
- `GET /files/{id}` — the bytes, as an attachment, sandboxed; `GET /files/{id}/thumb` — a small
  upright JPEG of an image.
- `DELETE /api/files/{id}` — admins; the file is gone from lists and downloads (404).
- `GET /api/photos?bbox=` — the county's located photos as GeoJSON points.

Reading is for the county's signed-in people only, even when its map is public: these are
the county's papers.
"""

import json
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from api.auth import COOKIE, CSRF_HEADER, editor_session, reader, session
from api.dependencies import RowId, connection, county_of, etag_matches, user_errors
from api.errors import AUTH_RESPONSES, Message
from api.routers.imports import UPLOAD_RESPONSES, form_text, multipart_body, upload_form
from geo import TitlemapError
from geo.core.model import Role, User
from geo.core.work import FileKind
from geo.io.uploads import ACCEPTED_EXTENSIONS, ACCEPTED_WORDS, checked_upload, thumbnail
from geo.ledger.files import (
    PHOTO_LIMIT,
    DuplicateFile,
    FileForbidden,
    FileNotFound,
    FileTooLarge,
    add_file,
    blob_path,
    delete_file,
    describe_file,
    find_compound,
    get_file,
    list_files,
    may_upload,
    photo_points,
    upload_refusal,
)
from geo.ledger.users import may_read
from geo.query.compounds import BBox

router = APIRouter(tags=["files"])

MB = 1024 * 1024
# A stored file is never run or rendered as a page of this app: downloaded, sandboxed.
FILE_POLICY = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"
UPLOAD_SCHEMA = multipart_body(
    ["file"],
    {
        "file": {"type": "string", "format": "binary", "description": ACCEPTED_WORDS},
        "title": {"type": "string", "description": "标题：批复、会议纪要、现场照片… / title"},
        "task_id": {"type": "integer", "description": "所答复的任务 / the task it answers"},
    },
)
Editing = Annotated[tuple[Session, User], Depends(editor_session())]


def _status(exc: TitlemapError) -> int:
    for kind, status in ((FileNotFound, 404), (FileForbidden, 403), (FileTooLarge, 413),
                         (DuplicateFile, 409)):  # fmt: skip
        if isinstance(exc, kind):
            return status
    return 422


async def _in_thread(function, *args):
    """Run `function` in a worker thread; a TitlemapError answers with its status."""
    try:
        return await run_in_threadpool(function, *args)
    except TitlemapError as exc:
        raise HTTPException(_status(exc), str(exc)) from None


def _sync(function, *args):
    try:
        return function(*args)
    except TitlemapError as exc:
        raise HTTPException(_status(exc), str(exc)) from None


def csrf_in_header(request: Request) -> None:
    """A cookie-signed upload names its CSRF token in the header, so that it is refused
    before the body is read (api.auth would otherwise read the whole form to find it)."""
    bearer = request.headers.get("authorization", "").lower().startswith("bearer ")
    if not bearer and request.cookies.get(COOKIE) and not request.headers.get(CSRF_HEADER):
        raise HTTPException(
            403, "上传须在请求头带 X-CSRF-Token，请刷新页面后重试 / send the CSRF token as a header"
        )


def data_dir(request: Request) -> Path:
    return request.app.state.settings.data_dir


def county_reader(request: Request, county: str) -> User:
    """The signed-in user of `county` (401 for nobody, 403 for another county's)."""
    user = reader(request)
    if user is None:
        raise HTTPException(401, "档案资料须登录查看 / sign in to see a compound's papers")
    if not may_read(user, county, public=False):
        raise HTTPException(403, f"{user.name} 无权查看该县的档案资料 / not given this county")
    return user


def _upload_target(db: Session, county: str, code: str, user: User) -> int:
    compound = _sync(find_compound, db, county, code)
    if not may_upload(user, compound):
        raise HTTPException(403, upload_refusal(user, compound))
    compound_id = compound.id
    db.rollback()  # no connection held while the body comes
    return compound_id


def _task_id(value) -> int | None:
    text_ = form_text(value)
    if text_ is None:
        return None
    if not text_.isdigit() or len(text_) > 9:
        raise HTTPException(422, f"task_id 应为任务编号 / task_id must be a task number: {text_!r}")
    return int(text_)


@router.post(
    "/api/compounds/{code}/files",
    status_code=201,
    summary="上传小区档案资料（编辑员、办公室）/ upload a compound's file",
    openapi_extra=UPLOAD_SCHEMA,
    responses=UPLOAD_RESPONSES
    | {409: {"model": Message, "description": "已上传过 / already uploaded"}},
)
async def upload(
    request: Request,
    code: str,
    _csrf: Annotated[None, Depends(csrf_in_header)],
    editing: Editing,
    county: str | None = None,
) -> dict:
    db, user = editing
    county = await run_in_threadpool(county_of, request, county)
    compound_id = await run_in_threadpool(_upload_target, db, county, code, user)
    folder, limit = data_dir(request), request.app.state.settings.upload_mb * MB
    async with upload_form(request, limit, max_fields=5) as form:
        sent = form.get("file")
        if sent is None or isinstance(sent, str):
            raise HTTPException(422, "缺少文件字段 file / the form needs a file field")
        title, task_id = form_text(form.get("title")), _task_id(form.get("task_id"))
        sent.file.seek(0)
        new = await _in_thread(checked_upload, sent.file, sent.filename, folder, limit)
        try:
            row = await _in_thread(add_file, db, folder, compound_id, user, new, title, task_id)
        finally:
            new.path.unlink(missing_ok=True)  # still there when it was not kept
    return describe_file(row, new.point)


@router.get(
    "/api/compounds/{code}/files",
    summary="小区档案资料列表 / a compound's files",
    responses=AUTH_RESPONSES,
)
def files_of(
    request: Request,
    code: str,
    db: Annotated[Session, Depends(session)],
    task_id: Annotated[RowId | None, Query(description="只列此任务的 / a task's only")] = None,
    county: str | None = None,
) -> dict:
    county = county_of(request, county)
    user = county_reader(request, county)
    compound = _sync(find_compound, db, county, code)
    return {
        "county": county,
        "compound": compound.code,
        "files": list_files(db, compound.id, task_id),
        "may_upload": may_upload(user, compound),
        "limit_mb": request.app.state.settings.upload_mb,
        "accept": ACCEPTED_EXTENSIONS,
    }


def _readable_file(request: Request, db: Session, file_id: int):
    user = reader(request)
    if user is None:
        raise HTTPException(401, "档案资料须登录查看 / sign in to see a compound's papers")
    row = _sync(get_file, db, file_id)
    if not may_read(user, row.county_code, public=False):  # another county's: not there
        raise HTTPException(404, f"没有文件 {file_id} / no such file")
    return row


def _headers(sha256: str, name: str | None = None) -> dict[str, str]:
    headers = {
        "ETag": f'"{sha256}"',
        "Cache-Control": "private, no-cache",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": FILE_POLICY,
    }
    if name is not None:
        fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                           for c in name)  # fmt: skip
        headers["Content-Disposition"] = (
            f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
        )
    return headers


@router.get(
    "/files/{file_id}",
    summary="下载文件 / download a file",
    response_class=Response,
    responses=AUTH_RESPONSES | {200: {"content": {"application/octet-stream": {}}}},
)
def download(request: Request, file_id: RowId, db: Annotated[Session, Depends(session)]):
    row = _readable_file(request, db, file_id)
    path = blob_path(data_dir(request), row.sha256)
    if not path.is_file():
        raise HTTPException(404, f"文件 {file_id} 的内容不在存储中 / the stored bytes are missing")
    headers = _headers(row.sha256, row.name)
    if etag_matches(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=row.media_type, headers=headers)


@router.get(
    "/files/{file_id}/thumb",
    summary="图片缩略图 / an image's thumbnail (JPEG)",
    response_class=Response,
    responses=AUTH_RESPONSES | {200: {"content": {"image/jpeg": {}}}},
)
def thumb(request: Request, file_id: RowId, db: Annotated[Session, Depends(session)]) -> Response:
    row = _readable_file(request, db, file_id)
    if row.kind != FileKind.IMAGE:
        raise HTTPException(404, f"文件 {file_id} 不是图片 / not an image")
    headers = _headers(row.sha256 + "-thumb")
    if etag_matches(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    try:
        body = thumbnail(data_dir(request), row.sha256)
    except (OSError, ValueError):
        missing = f"文件 {file_id} 的内容不在存储中或已损坏 / the stored bytes are missing"
        raise HTTPException(404, missing) from None
    return Response(body, media_type="image/jpeg", headers=headers)


@router.delete(
    "/api/files/{file_id}",
    summary="删除文件（管理员，保留记录）/ delete a file (admins; kept for the record)",
    responses=AUTH_RESPONSES,
)
def delete(
    file_id: RowId, editing: Annotated[tuple[Session, User], Depends(editor_session(Role.ADMIN))]
) -> dict:
    db, user = editing
    row = _sync(get_file, db, file_id)
    if not may_read(user, row.county_code, public=False):
        raise HTTPException(404, f"没有文件 {file_id} / no such file")
    _sync(delete_file, db, row, user)
    return {"deleted": file_id, "deleted_by": user.name}


@router.get(
    "/api/photos",
    summary="现场照片位置（GeoJSON）/ located site photos as GeoJSON points",
    response_class=Response,
    responses=AUTH_RESPONSES | {200: {"content": {"application/geo+json": {}}}},
)
def photos(
    request: Request,
    conn: Annotated[Connection, Depends(connection)],
    bbox: Annotated[str | None, Query(description="minx,miny,maxx,maxy (EPSG:4490)")] = None,
    limit: Annotated[int, Query(ge=1, le=PHOTO_LIMIT)] = PHOTO_LIMIT,
    county: str | None = None,
) -> Response:
    county = county_of(request, county)
    county_reader(request, county)
    with user_errors():
        box = BBox.parse(bbox).params() if bbox else None
    body = json.dumps(photo_points(conn, county, box, limit), ensure_ascii=False)
    return Response(body, media_type="application/geo+json", headers={"Cache-Control": "no-cache"})
