"""/api/ledger: entries and history, edits with roles and versions, the ledger as of a date."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from api.auth import editor_session, session
from api.dependencies import Day, county_of, user_errors
from api.errors import StaleEdit
from geo import TitlemapError
from geo.core.dates import today
from geo.core.model import User
from geo.db.audit import record
from geo.ledger.rules import (
    LedgerConflict,
    LedgerNotFound,
    describe,
    find_entry,
    following_figures,
    update_entry,
)
from geo.ledger.stats import ledger_as_of
from geo.ledger.users import edit_refusal, home_county, may_edit_entry

router = APIRouter(prefix="/api/ledger", tags=["ledger"])


class Edit(BaseModel):
    version: int = Field(description="编辑时读到的版本；已变则 409 / the version you read")
    changes: dict[str, Any] = Field(description="字段及新值 / fields and their new values")
    note: str | None = Field(default=None, description="说明 / why")
    status_by_figures: bool = Field(
        default=False,
        description="改了套数而未给状态时，按套数推定化解状态（已销号的不动）/ when the unit "
        "counts change and no status is given, set the status the counts say "
        "(geo.ledger.rules.status_from_figures; a closed entry keeps its status)",
    )


class Close(BaseModel):
    version: int
    reason: str | None = Field(
        default=None, description="尚有未转移套数时必填 / required while units remain"
    )
    note: str | None = None


def _entry(db: Session, county: str, code: str):
    try:
        return find_entry(db, county, code)
    except LedgerNotFound as exc:
        raise HTTPException(404, str(exc)) from None


def _save(db: Session, entry, changes: dict, user: User, note: str | None, version: int) -> dict:
    if not may_edit_entry(user, entry):
        raise HTTPException(403, edit_refusal(user, entry))
    try:
        event = update_entry(db, entry, changes, user.name, note, expected_version=version,
                             progress=True)  # fmt: skip
        if event is not None and event.action == "progress":  # no row changed: say it here
            record(db, entry.county_code, "ledger_entry", "progress", str(entry.id),
                   after={"note": note})  # fmt: skip
    except LedgerConflict as exc:
        db.rollback()
        current = describe(find_entry(db, entry.county_code, entry.compound.code))
        raise StaleEdit(str(exc), current) from None
    except TitlemapError as exc:
        raise HTTPException(422, str(exc)) from None
    db.commit()
    db.refresh(entry)
    return describe(entry)


@router.get("", summary="台账（可回看历史日期）/ the ledger, now or as of a date")
def list_entries(
    request: Request,
    db: Annotated[Session, Depends(session)],
    as_of: Annotated[Day | None, Query(description="截至日期 / as of (YYYY-MM-DD)")] = None,
    county: str | None = None,
) -> dict:
    county = county_of(request, county)
    as_of = as_of or today()  # Beijing's day, whatever the server's zone
    with user_errors():
        entries = ledger_as_of(db.connection(), county, as_of)
    return {"county": county, "as_of": as_of.isoformat(), "entries": entries}


@router.get("/{compound_code}", summary="一个小区的台账及历史 / one entry and its history")
def get_entry(
    request: Request,
    compound_code: str,
    db: Annotated[Session, Depends(session)],
    county: str | None = None,
) -> dict:
    return describe(_entry(db, county_of(request, county), compound_code))


@router.patch("/{compound_code}", summary="修改台账（编辑员）/ edit an entry (editor)")
def edit_entry(
    request: Request,
    compound_code: str,
    edit: Edit,
    editing: Annotated[tuple[Session, User], Depends(editor_session())],
    county: str | None = None,
) -> dict:
    db, user = editing
    entry = _entry(db, county or home_county(user), compound_code)
    changes = following_figures(entry, edit.changes) if edit.status_by_figures else edit.changes
    return _save(db, entry, changes, user, edit.note, edit.version)


@router.post("/{compound_code}/close", summary="销号（编辑员）/ close an entry (editor)")
def close_entry(
    request: Request,
    compound_code: str,
    close: Annotated[Close, Body()],
    editing: Annotated[tuple[Session, User], Depends(editor_session())],
    county: str | None = None,
) -> dict:
    db, user = editing
    entry = _entry(db, county or home_county(user), compound_code)
    changes: dict[str, Any] = {"status": "closed"}
    if close.reason:
        changes["close_reason"] = close.reason
    return _save(db, entry, changes, user, close.note, close.version)
