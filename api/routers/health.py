"""/health: is the database reachable, which PostgreSQL and PostGIS."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from geo import TitlemapError
from geo.db.engine import check_database

router = APIRouter(tags=["health"])


@router.get("/health", summary="服务与数据库状态 / service and database health")
def health(request: Request) -> JSONResponse:
    try:
        info = check_database(request.app.state.engine)
    except TitlemapError as exc:
        return JSONResponse({"status": "error", "detail": str(exc)}, status_code=503)
    return JSONResponse(
        {
            "status": "ok",
            "database": info.database,
            "postgres": info.postgres,
            "postgis": info.postgis,
        }
    )
