"""`titlemap parcel …`: parcel records from the command line."""

from typing import Annotated

import typer

from cli.common import county_or_default, database, out

parcel_app = typer.Typer(help="宗地 / parcels", no_args_is_help=True)


@parcel_app.command("code")
def code(
    plot: Annotated[
        str, typer.Argument(help="勘测定界地块的编号，如 滨河安置小区-1 / survey plot")
    ],
    parcel_code: Annotated[str, typer.Argument(help="登记机构给定的 19 位宗地代码 / parcel code")],
    county: Annotated[str | None, typer.Option(help="县代码 / county code")] = None,
) -> None:
    """给勘测定界地块赋宗地代码 / give a survey plot its 宗地代码 (keeps its outline and links)."""
    from geo.ledger.parcels import assign_parcel_code

    with database().begin() as conn:
        done = assign_parcel_code(conn, county_or_default(county), plot, parcel_code)
    out.print(f"宗地 {done['old']} → {done['new']}")
