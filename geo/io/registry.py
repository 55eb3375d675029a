"""The reader registry: what a format's reader is given and returns, and which reader a file gets.

A reader (`Reader`) names a file kind, the suffixes it takes and, for a suffix shared by other
kinds (.txt), a sniff of the first bytes. `geo.io.readers` registers every format's reader, in
order; `reader_for` picks the first that accepts a file by its suffix, else the first whose
sniff recognises its content. A reader returns a `RawLayer`: headers and coordinates as in the
file. Which layer the file is for comes in the `ReadContext`, so readers need not know the
import layers themselves (`geo.io.layers`).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
from pyproj import CRS

from geo.io.archive import Limits


@dataclass
class RawLayer:
    """A file's features as read: headers as in the file, coordinates as in the file."""

    frame: gpd.GeoDataFrame
    crs: CRS | None
    notes: list[str] = field(default_factory=list)
    refs: list[str] | None = None  # how to point at each feature ("第 3 行"); default "要素 N"
    project: str | None = None  # the file's own project name (a TXT's 项目名称), if it says


@dataclass(frozen=True)
class ImportOptions:
    """What the caller says about a file's coordinates beyond its CRS."""

    trust: str | None = None  # "header" | "coordinates": which wins when they disagree
    gcj02: bool = False  # lon/lat traced on Gaode/Tencent maps: correct to CGCS2000
    parameters: str | None = None  # seven parameters for Xi'an 1980 / Beijing 1954
    county_parameters: str | None = None  # TITLEMAP_DATUM_PARAMETERS
    convention: str = "position_vector"  # TITLEMAP_HELMERT_CONVENTION
    county_lon: float | None = None  # the county's centre, for its zone
    county_bounds: tuple[float, float, float, float] | None = None  # lon/lat box


@dataclass
class ReadContext:
    """What a reader is told: the layer wanted (its key, words, names, whether points)."""

    layer: str
    limits: Limits
    source_layer: str | None = None  # a GeoPackage's layer named by the caller
    options: ImportOptions = field(default_factory=ImportOptions)
    label: str = ""  # the layer in Chinese, for messages: 小区
    names: tuple[str, ...] = ()  # names the layer goes by inside a GeoPackage or a zip
    points: bool = False  # a point layer (complaints): a DXF's points, not its outlines


@dataclass(frozen=True)
class Reader:
    kind: str
    label: str
    suffixes: tuple[str, ...]
    read: Callable[[Path, ReadContext], RawLayer]
    sniff: Callable[[bytes], bool] | None = None
    strict: bool = False  # the suffix alone is not enough (.txt): the content must sniff too


READERS: dict[str, Reader] = {}


def register(reader: Reader) -> Reader:
    """Add a reader by file kind (a later one for the same kind replaces it)."""
    READERS[reader.kind] = reader
    return reader


def _head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(4096)


def accepts(reader: Reader, path: Path) -> bool:
    """Whether `reader` takes `path` by its suffix (and, for a strict one, its content)."""
    if path.suffix.lower() not in reader.suffixes:
        return False
    return not reader.strict or bool(reader.sniff and reader.sniff(_head(path)))


def readable(path: Path) -> bool:
    """Whether some registered reader takes `path` by its suffix."""
    return any(accepts(reader, path) for reader in READERS.values())


def reader_for(path: Path) -> Reader | None:
    """The registered reader for `path`: by suffix first, else by a sniff of its content."""
    for reader in READERS.values():
        if accepts(reader, path):
            return reader
    head = _head(path)
    for reader in READERS.values():
        if reader.sniff and reader.sniff(head):
            return reader
    return None
