"""`titlemap bulletin …`: (being written)."""

import typer

bulletin_app = typer.Typer(help="督查通报 / supervision bulletins", no_args_is_help=True)
