"""A compound's papers (一小区一档): approvals, minutes, receipts, site photos, kept by content.

The bytes live under the data directory by their SHA-256 —
<data_dir>/files/<sha[:2]>/<sha[2:4]>/<sha> — written once (the same bytes uploaded twice are
stored once) and moved into place atomically from <data_dir>/files/incoming/ (same file
system: `os.replace` is atomic). The rest is a compound_file row, inserted in the transaction
that places the bytes; should it fail, bytes it placed that no row names are removed again.
A transaction-scoped advisory lock per hash keeps two uploads of the same bytes from
removing what the other needs.

Who: editors who may edit the compound's ledger entry (geo.ledger.users.may_edit_entry) and
the office upload; a compound not on the ledger takes the office's files only. Admins delete
(softly: deleted_at / deleted_by; the row and the bytes stay for the audit). Reading is for
the county's own signed-in people (the router checks), whatever its map's publicity.

What the bytes are (PDF, image, Office document) is checked by geo.io.uploads, which makes the
`NewFile` this module stores.
"""

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from geoalchemy2 import WKTElement
from sqlalchemy import Connection, func, select, text
from sqlalchemy.orm import Session

from geo import TitlemapError
from geo.core.dates import BEIJING, now
from geo.core.model import SRID, Compound, Role, User
from geo.core.work import CompoundFile, FileKind, Task
from geo.ledger.users import counties_of, edit_refusal, is_office, may, may_edit_entry

MAX_TITLE_CHARS = 200
PHOTO_LIMIT = 5000  # photo points in one answer


class FileRefused(TitlemapError):
    """An upload that cannot be kept (422): what it is, its name, its task."""


class FileTooLarge(FileRefused):
    """Over the upload limit (413)."""


class DuplicateFile(FileRefused):
    """The same bytes already among the compound's (or the task's) papers (409)."""


class FileForbidden(TitlemapError):
    """Not this person's to upload or delete (403)."""


class FileNotFound(TitlemapError):
    """No such file, or deleted (404)."""


@dataclass(frozen=True)
class NewFile:
    """An upload checked (geo.io.uploads.checked_upload), its bytes at `path` in the store's
    incoming folder."""

    path: Path
    sha256: str
    size: int
    name: str
    media_type: str
    kind: str
    taken_at: datetime | None = None
    point: tuple[float, float] | None = None  # lon, lat (EXIF GPS, kept as EPSG:4490)


# -- where the bytes are --------------------------------------------------------------------------


def store_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "files"


def incoming_dir(data_dir: Path) -> Path:
    return store_dir(data_dir) / "incoming"


def blob_path(data_dir: Path, sha256: str) -> Path:
    return store_dir(data_dir) / sha256[:2] / sha256[2:4] / sha256


_LOCK = text("SELECT pg_advisory_xact_lock(hashtext('compound_file'), hashtext(:sha))")


# -- who may --------------------------------------------------------------------------------------


def may_upload(user: User | None, compound: Compound) -> bool:
    """Editors who may edit the compound's ledger entry, and the office; a compound not on
    the ledger: the office only."""
    if user is None or not user.active or compound.county_code not in counties_of(user):
        return False
    entry = compound.ledger
    if entry is not None:
        return may_edit_entry(user, entry)
    return may(user, Role.EDITOR) and is_office(user)


def upload_refusal(user: User, compound: Compound) -> str:
    if compound.county_code not in counties_of(user):
        return "只能为本县小区上传文件 / only your own county's compounds"
    if not may(user, Role.EDITOR):
        return f"{user.name}（{user.role}）只能查看，不能上传 / may only read"
    if compound.ledger is None:
        return "该小区不在台账上：只有领导小组办公室可上传 / not on the ledger: the office only"
    return edit_refusal(user, compound.ledger)


def find_compound(session: Session, county: str, code: str) -> Compound:
    compound = session.scalar(
        select(Compound).where(Compound.county_code == county, Compound.code == code)
    )
    if compound is None:
        raise FileNotFound(f"没有小区 {code} / no such compound")
    return compound


# -- storing --------------------------------------------------------------------------------------


def _checked_title(title: str | None) -> str | None:
    title = " ".join((title or "").split()) or None
    if title and len(title) > MAX_TITLE_CHARS:
        raise FileRefused(f"标题超过 {MAX_TITLE_CHARS} 个字符 / the title is too long")
    return title


def _checked_task(session: Session, compound: Compound, task_id: int | None) -> int | None:
    if task_id is None:
        return None
    task = session.get(Task, task_id)
    if task is None or task.compound_id != compound.id:
        raise FileRefused(
            f"任务 {task_id} 不是小区 {compound.code} 的任务 / task {task_id} is not this "
            "compound's"
        )
    return task.id


def _forget_unused(session: Session, data_dir: Path, sha256: str) -> None:
    """Remove stored bytes no row names (after a failed insert), under the hash's lock."""
    with session.begin():
        session.execute(_LOCK, {"sha": sha256})
        named = session.scalar(select(CompoundFile.id).where(CompoundFile.sha256 == sha256))
        if named is None:
            blob_path(data_dir, sha256).unlink(missing_ok=True)


def add_file(
    session: Session,
    data_dir: Path,
    compound_id: int,
    user: User,
    new: NewFile,
    title: str | None = None,
    task_id: int | None = None,
) -> CompoundFile:
    """Keep a checked upload among a compound's papers (committed); `session` is an audited
    one (the trigger names `user`). FileForbidden, FileRefused (a task of another compound,
    a long title), DuplicateFile; then nothing is stored."""
    compound = session.get(Compound, compound_id)
    if compound is None:
        raise FileNotFound(f"没有小区 {compound_id} / no such compound")
    if not may_upload(user, compound):
        raise FileForbidden(upload_refusal(user, compound))
    task_id = _checked_task(session, compound, task_id)
    title = _checked_title(title)
    session.execute(_LOCK, {"sha": new.sha256})
    same = session.scalar(
        select(CompoundFile).where(
            CompoundFile.compound_id == compound.id,
            CompoundFile.sha256 == new.sha256,
            CompoundFile.task_id.is_not_distinct_from(task_id),
            CompoundFile.deleted_at.is_(None),
        )
    )
    if same is not None:
        session.rollback()
        raise DuplicateFile(
            f"该文件已上传：{same.title or same.name}（{same.uploaded_by}）/ already uploaded"
        )
    target, placed = blob_path(data_dir, new.sha256), False
    try:
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(new.path, target)
            placed = True
        row = CompoundFile(
            county_code=compound.county_code,
            compound_id=compound.id,
            task_id=task_id,
            sha256=new.sha256,
            name=new.name,
            media_type=new.media_type,
            kind=FileKind(new.kind).value,
            size_bytes=new.size,
            title=title,
            uploaded_by=user.name,
            uploaded_at=now(),
            taken_at=new.taken_at,
            geom=WKTElement(f"POINT({new.point[0]} {new.point[1]})", srid=SRID)
            if new.point
            else None,
        )
        session.add(row)
        session.commit()
    except BaseException:
        session.rollback()
        if placed:
            _forget_unused(session, data_dir, new.sha256)
        raise
    return row


# -- reading --------------------------------------------------------------------------------------


def _moment(value: datetime | None) -> str | None:
    return value.astimezone(BEIJING).isoformat() if value else None


def describe_file(row: CompoundFile, point: tuple[float, float] | None = None) -> dict[str, Any]:
    """A file as the API and the card show it (times in Beijing)."""
    return {
        "id": row.id,
        "name": row.name,
        "title": row.title,
        "media_type": row.media_type,
        "kind": row.kind,
        "size_bytes": row.size_bytes,
        "task_id": row.task_id,
        "uploaded_by": row.uploaded_by,
        "uploaded_at": _moment(row.uploaded_at),
        "taken_at": _moment(row.taken_at),
        "point": list(point) if point else None,
        "url": f"/files/{row.id}",
        "thumb": f"/files/{row.id}/thumb" if row.kind == FileKind.IMAGE else None,
    }


def list_files(session: Session, compound_id: int, task_id: int | None = None) -> list[dict]:
    """A compound's files not deleted (a task's only, with `task_id`), newest first."""
    query = (
        select(CompoundFile, func.ST_X(CompoundFile.geom), func.ST_Y(CompoundFile.geom))
        .where(CompoundFile.compound_id == compound_id, CompoundFile.deleted_at.is_(None))
        .order_by(CompoundFile.uploaded_at.desc(), CompoundFile.id.desc())
    )
    if task_id is not None:
        query = query.where(CompoundFile.task_id == task_id)
    return [
        describe_file(row, (x, y) if x is not None else None)
        for row, x, y in session.execute(query)
    ]


def get_file(session: Session, file_id: int) -> CompoundFile:
    """A file not deleted; FileNotFound otherwise."""
    row = session.get(CompoundFile, file_id)
    if row is None or row.deleted_at is not None:
        raise FileNotFound(f"没有文件 {file_id}（或已删除）/ no such file, or deleted")
    return row


def delete_file(session: Session, row: CompoundFile, user: User) -> None:
    """Soft delete by an admin of its county (committed): gone from lists and downloads."""
    if not may(user, Role.ADMIN) or row.county_code not in counties_of(user):
        raise FileForbidden(f"{user.name} 无权删除文件：需要本县管理员 / admins only")
    row.deleted_at = now()
    row.deleted_by = user.name
    session.commit()


_PHOTOS = """
    SELECT f.id, c.code, c.name AS compound_name, f.title, f.name, f.taken_at, f.uploaded_at,
           ST_X(f.geom) AS x, ST_Y(f.geom) AS y
    FROM compound_file f JOIN compound c ON c.id = f.compound_id
    WHERE f.county_code = :county AND f.deleted_at IS NULL AND f.kind = 'image'
      AND f.geom IS NOT NULL AND {box}
    ORDER BY coalesce(f.taken_at, f.uploaded_at) DESC, f.id DESC
    LIMIT :limit
"""


def photo_points(
    conn: Connection, county: str, box: dict[str, float] | None = None, limit: int = PHOTO_LIMIT
) -> dict[str, Any]:
    """The county's located photos (in `box`: minx, miny, maxx, maxy) as GeoJSON points."""
    where = "f.geom && ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, 4490)" if box else "true"
    rows = conn.execute(
        text(_PHOTOS.format(box=where)), {"county": county, "limit": limit, **(box or {})}
    )
    features = [
        {
            "type": "Feature",
            "id": r.id,
            "geometry": {"type": "Point", "coordinates": [r.x, r.y]},
            "properties": {
                "id": r.id,
                "compound": r.code,
                "compound_name": r.compound_name,
                "title": r.title,
                "name": r.name,
                "taken_at": _moment(r.taken_at),
                "uploaded_at": _moment(r.uploaded_at),
                "thumb": f"/files/{r.id}/thumb",
                "url": f"/files/{r.id}",
            },
        }
        for r in rows
    ]
    return {"type": "FeatureCollection", "features": features, "numberReturned": len(features)}


def latest_photos(conn: Connection, compound_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Each compound's latest photo (by taken_at, else uploaded_at): compound id → sha256,
    when, title."""
    if not compound_ids:
        return {}
    rows = conn.execute(
        text(
            "SELECT DISTINCT ON (compound_id) compound_id, sha256, title, "
            "coalesce(taken_at, uploaded_at) AS at FROM compound_file "
            "WHERE compound_id = ANY(:ids) AND kind = 'image' AND deleted_at IS NULL "
            "ORDER BY compound_id, coalesce(taken_at, uploaded_at) DESC, id DESC"
        ),
        {"ids": list(compound_ids)},
    )
    return {r.compound_id: {"sha256": r.sha256, "at": r.at, "title": r.title} for r in rows}
