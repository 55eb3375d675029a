"""Configuration from the environment (and a .env file), one place for every knob."""

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    # root's home is closed to the postgres user that runs the private cluster.
    if os.geteuid() == 0:
        return Path("/var/lib/titlemap")
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "titlemap"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TITLEMAP_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        validation_alias="DATABASE_URL",
        description="PostgreSQL+PostGIS URL; unset = the private local cluster",
    )
    app_database_url: str | None = Field(
        default=None,
        description="the role the web app connects as (no DDL; SELECT and INSERT only on the "
        "audit log); unset = titlemap_app of the private cluster, or DATABASE_URL",
    )
    data_dir: Path = Field(default_factory=default_data_dir)
    pg_port: int = 54329
    pg_bin: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(default=1, description="uvicorn worker processes (titlemap serve)")
    access_log: bool = Field(default=False, description="log every request (costs ~10 %)")
    tile_cache_mb: int = Field(
        default=64, ge=0, description="built tiles kept in memory, per worker (0: build every tile)"
    )
    rollup_refresh_s: float = Field(
        default=300,
        ge=0,
        description="while serving, refresh the counties' overview roll-ups "
        "this often, in seconds (0: only when an overview asks)",
    )
    county: str = "629901"
    basemap: str = Field(
        default="none", description="none (the county's own layers) | tianditu | an XYZ URL"
    )
    tianditu_key: str | None = None
    basemap_attribution: str | None = None
    datum_parameters: str | None = Field(
        default=None,
        description="Xi'an 1980 / Beijing 1954 → CGCS2000 seven parameters dx,dy,dz (m),rx,ry,rz "
        "(arc-seconds),k (ppm); or per datum: xian80=…;beijing54=…",
    )
    helmert_convention: str = Field(
        default="position_vector", description="position_vector | coordinate_frame"
    )
    session_hours: float = Field(default=12, gt=0, description="a sign-in lasts this long")
    upload_mb: int = Field(default=50, gt=0, description="largest file a compound may be given")
    vocabulary: Path | None = Field(
        default=None,
        description="the county's own words file (same shape as geo/core/vocabulary.toml), "
        "added on top of the shipped one",
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
