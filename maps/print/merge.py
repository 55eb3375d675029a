"""PDFs drawn in separate processes merged into one: pypdf, else poppler's pdfunite."""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from functools import cache
from io import BytesIO

from maps.print.sheet import metadata


def _merge_pypdf(parts: list[bytes], title: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for part in parts:
        writer.append(PdfReader(BytesIO(part)))
    writer.add_metadata({"/" + k: v for k, v in metadata(title).items()})
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def _merge_pdfunite(parts: list[bytes], title: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="titlemap-print-") as folder:
        names = []
        for n, part in enumerate(parts):
            name = os.path.join(folder, f"part{n:03d}.pdf")
            with open(name, "wb") as handle:
                handle.write(part)
            names.append(name)
        target = os.path.join(folder, "pack.pdf")
        subprocess.run(["pdfunite", *names, target], check=True, capture_output=True)
        with open(target, "rb") as handle:
            return handle.read()


@cache
def merger() -> Callable[[list[bytes], str], bytes] | None:
    """pypdf when installed, else poppler's pdfunite, else None (then one process draws all)."""
    try:
        import pypdf  # noqa: F401

        return _merge_pypdf
    except ImportError:
        pass
    return _merge_pdfunite if shutil.which("pdfunite") else None
