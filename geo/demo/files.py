"""The demo county's files: a GeoPackage of every layer and the ledger in the county's layout."""

from pathlib import Path

import pandas as pd
import pyogrio

from geo.demo.facts import AS_OF, COUNTY_NAME, GPKG_NAME, LAYERS, XLSX_NAME
from geo.demo.frames import DATE, DATE_OR_NONE, MOMENT, SCHEMA, SPATIAL, DemoCounty, _conform

# -- files -----------------------------------------------------------------------------------


def write(demo: DemoCounty, folder: Path) -> tuple[Path, Path]:
    """Save every layer to 示例县.gpkg and the ledger to 示例县化解台账.xlsx in `folder`.

    Each file is written under a temporary name and renamed at the end, so a reader never sees
    half a file (the CLI takes an existing GeoPackage as a finished demo).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gpkg, xlsx = folder / GPKG_NAME, folder / XLSX_NAME
    part = folder / f".{gpkg.stem}.part.gpkg"
    part.unlink(missing_ok=True)
    for layer in LAYERS:
        pyogrio.write_dataframe(_for_file(getattr(demo, layer), layer), part, layer=layer,
                                driver="GPKG")  # fmt: skip
    xlsx_part = folder / f".{xlsx.stem}.part.xlsx"
    write_ledger_xlsx(demo, xlsx_part)
    part.replace(gpkg)
    xlsx_part.replace(xlsx)
    return gpkg, xlsx


def _for_file(frame: pd.DataFrame, layer: str) -> pd.DataFrame:
    """Dates and moments as ISO text: a GeoPackage keeps them exactly, read() turns them back."""
    out = frame.copy()
    for column, kind in SCHEMA[layer].items():
        if kind in (DATE, DATE_OR_NONE):
            out[column] = pd.Series([d.isoformat() if d else None for d in frame[column]],
                                    dtype=object)  # fmt: skip
        elif kind == MOMENT:  # 2025-06-01T10:52:00+08:00, vectorised (isoformat per row is slow)
            text = frame[column].dt.strftime("%Y-%m-%dT%H:%M:%S%z")
            out[column] = (text.str[:-2] + ":" + text.str[-2:]).astype(object)
    return out


def read(folder: Path) -> DemoCounty:
    """The demo county saved by `write` in `folder`, with the frames and types generate() gives."""
    path = Path(folder) / GPKG_NAME
    if not path.exists():
        raise FileNotFoundError(f"没有示例县数据 / no demo county at {path}")
    frames = {
        layer: _conform(
            pyogrio.read_dataframe(path, layer=layer, read_geometry=layer in SPATIAL), layer
        )
        for layer in LAYERS
    }
    return DemoCounty(**frames)


def write_ledger_xlsx(demo: DemoCounty, path: Path) -> Path:
    """The demo ledger as a county keeps it, through the one layout writer (geo.io.ledger_sheet)."""
    from geo.io.ledger_sheet import write_ledger_xlsx as write_layout

    compounds = demo.compounds.set_index("code")
    township = dict(zip(demo.townships["code"], demo.townships["name"], strict=True))
    developer = dict(zip(demo.developers["credit_code"], demo.developers["name"], strict=True))
    frame = demo.ledger.drop(columns=["ledger_no", "blocker_note", "close_reason"]).assign(
        compound_name=lambda f: f.compound_code.map(compounds["name"]),
        township=lambda f: f.compound_code.map(compounds["township_code"]).map(township),
        developer=lambda f: f.compound_code.map(compounds["developer_credit_code"]).map(developer),
    )
    return write_layout(frame, path, COUNTY_NAME, AS_OF)
