"""/api/parcels/{code}: a survey plot given its 宗地代码 (editor of its county)."""

from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from api.auth import require, session
from api.dependencies import user_errors
from geo.core.model import Role, User
from geo.ledger.parcels import assign_parcel_code
from geo.ledger.users import NO_HOME_COUNTY, home_county

router = APIRouter(prefix="/api/parcels", tags=["parcels 宗地"])


class NewCode(BaseModel):
    code: str = Field(min_length=19, max_length=19, description="19 位宗地代码 / parcel code")


@router.patch("/{plot}", summary="给勘测定界地块赋宗地代码（编辑员）/ give a plot its code")
def give_code(
    plot: str,
    new: Annotated[NewCode, Body()],
    db: Annotated[Session, Depends(session)],
    user: Annotated[User, Depends(require(Role.EDITOR))],
) -> dict:
    """The plot keeps its outline and its links to compounds; only its code changes."""
    if home_county(user) is None:  # a region's user given no county, or several
        raise HTTPException(403, NO_HOME_COUNTY)
    with user_errors(422):
        done = assign_parcel_code(db.connection(), home_county(user), plot, new.code)
    db.commit()
    return done
