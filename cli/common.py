"""What every command shares: its consoles, its settings' database and county."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from sqlalchemy import Engine

from geo.core.settings import get_settings

if TYPE_CHECKING:
    from geo.core.vocabulary import Vocabulary

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def database() -> Engine:
    """The engine for this command's settings (environment and .env); what the command
    writes is traced in the audit log as the command line's user."""
    import getpass

    from geo.db import audit
    from geo.db.engine import get_engine  # the engine module loads the driver: only when used

    engine = get_engine(get_settings())
    audit.name_actors(engine)
    audit.act_for(audit.Actor(f"命令行 {getpass.getuser()}"))
    return engine


def county_or_default(county: str | None) -> str:
    """The county a command works on: the one given, else TITLEMAP_COUNTY's."""
    return county or get_settings().county


VocabularyFile = Annotated[
    Path | None,
    typer.Option(
        "--vocabulary",
        exists=True,
        dir_okay=False,
        help="本县词表（同 vocabulary.toml 格式），缺省取 TITLEMAP_VOCABULARY / the county's "
        "own words file; default TITLEMAP_VOCABULARY",
    ),
]


def vocabulary_of(path: Path | None) -> "Vocabulary":
    """The shipped words with the county's own file on top: the one given, else the setting's."""
    from geo.core.vocabulary import load_vocabulary

    return load_vocabulary(path or get_settings().vocabulary)
