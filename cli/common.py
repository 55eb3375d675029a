"""What every command shares: its consoles, its settings' database and county."""

from rich.console import Console
from sqlalchemy import Engine

from geo.core.settings import get_settings

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def database() -> Engine:
    """The engine for this command's settings (environment and .env)."""
    from geo.db.engine import get_engine  # the engine module loads the driver: only when used

    return get_engine(get_settings())


def county_or_default(county: str | None) -> str:
    """The county a command works on: the one given, else TITLEMAP_COUNTY's."""
    return county or get_settings().county
