"""An upload's bytes checked before a compound keeps them (一小区一档): what they are is decided
by their content, never by the name, and the name's extension must agree.

Accepted: PDF (`%PDF-`), images (JPEG, PNG, WebP, GIF — opened and verified by Pillow), Office
documents: OOXML (.docx/.xlsx/.pptx: a zip whose central directory lists
`[Content_Types].xml` and word/, xl/ or ppt/ — read with `namelist`, nothing is extracted, so a
zip bomb costs nothing) and the older OLE2 files (.doc/.xls/.ppt, told apart by their
WordDocument / Workbook / PowerPoint Document stream). Refused, each with one line: an empty
file, one over the limit (read in chunks, never past limit + 1 bytes), any other zip, SVG (it
can carry script), HTML, executables, anything else; a name with a path or control characters.

A photo's EXIF gives its time (DateTimeOriginal, the phone's local time: Beijing unless
OffsetTimeOriginal says otherwise) and place (GPS). Thumbnails are small JPEGs turned upright
by the EXIF orientation, kept under <data_dir>/thumbs/ by content hash.
"""

import hashlib
import math
import os
import re
import tempfile
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from geo.core.dates import BEIJING
from geo.io.archive import size_words
from geo.ledger.files import FileRefused, FileTooLarge, NewFile, blob_path, incoming_dir

CHUNK = 1024 * 1024
MAX_NAME_CHARS = 200
THUMB_PX = 320  # the card's and the map's thumbnails
PRINT_PX = 640  # the visit pack's photo (≈ 40 mm at 400 dpi)


@dataclass(frozen=True)
class FileType:
    label: str  # as a clerk reads it
    english: str
    media_type: str
    kind: str  # geo.core.work.FileKind
    extensions: tuple[str, ...]  # the first is the one a name without any gets


TYPES = {
    "pdf": FileType("PDF 文档", "a PDF document", "application/pdf", "pdf", (".pdf",)),
    "jpeg": FileType("JPEG 图片", "a JPEG image", "image/jpeg", "image", (".jpg", ".jpeg")),
    "png": FileType("PNG 图片", "a PNG image", "image/png", "image", (".png",)),
    "webp": FileType("WebP 图片", "a WebP image", "image/webp", "image", (".webp",)),
    "gif": FileType("GIF 图片", "a GIF image", "image/gif", "image", (".gif",)),
    "docx": FileType(
        "Word 文档（docx）", "a Word document (docx)",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "office",
        (".docx",),
    ),
    "xlsx": FileType(
        "Excel 表格（xlsx）", "an Excel workbook (xlsx)",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "office", (".xlsx",),
    ),
    "pptx": FileType(
        "PowerPoint 演示文稿（pptx）", "a PowerPoint presentation (pptx)",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation", "office",
        (".pptx",),
    ),
    "doc": FileType("Word 文档（doc）", "a Word document (doc)", "application/msword", "office",
                    (".doc",)),
    "xls": FileType("Excel 表格（xls）", "an Excel workbook (xls)", "application/vnd.ms-excel",
                    "office", (".xls",)),
    "ppt": FileType("PowerPoint 演示文稿（ppt）", "a PowerPoint presentation (ppt)",
                    "application/vnd.ms-powerpoint", "office", (".ppt",)),
}  # fmt: skip
ACCEPTED_EXTENSIONS = [e for t in TYPES.values() for e in t.extensions]
ACCEPTED_WORDS = "PDF、图片（JPEG/PNG/WebP/GIF）、Word/Excel/PowerPoint 文档"

_IMAGES = (
    (b"\xff\xd8\xff", "jpeg", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "png", "PNG"),
    (b"GIF87a", "gif", "GIF"),
    (b"GIF89a", "gif", "GIF"),
)
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OOXML_PARTS = (("word/", "docx"), ("xl/", "xlsx"), ("ppt/", "pptx"))
# an OLE2 file's main stream tells which program wrote it
_OLE_STREAMS = (("WordDocument", "doc"), ("Workbook", "xls"), ("Book", "xls"),
                ("PowerPoint Document", "ppt"))  # fmt: skip
_EXECUTABLES = (
    b"MZ", b"\x7fELF", b"#!", b"\xca\xfe\xba\xbe", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe", b"\x00asm",
)  # fmt: skip
_MARKUP = re.compile(rb"^\s*(?:<\?xml|<!doctype|<html|<head|<body|<script|<svg|<!--)", re.I)
_BIDI = {"\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
         "\u2066", "\u2067", "\u2068", "\u2069"}  # fmt: skip


def refused(chinese: str, english: str) -> FileRefused:
    return FileRefused(f"{chinese} / {english}")


# -- the name -------------------------------------------------------------------------------------


def checked_name(filename: str | None) -> str:
    """The file's own name, as sent; refused when it holds a path or control characters."""
    name = (filename or "").strip()
    if not name:
        raise refused("没有选择文件", "no file chosen")
    if "/" in name or "\\" in name or ".." in name or re.match(r"^[A-Za-z]:", name):
        raise refused(f"文件名不能含路径（/ \\ .. 或盘符）：{name!r}",
                      "a file name without any path")  # fmt: skip
    if any(unicodedata.category(c) == "Cc" or c in _BIDI for c in name):
        raise refused("文件名含控制字符", "the file name holds control characters")
    if len(name) > MAX_NAME_CHARS:
        raise refused(f"文件名超过 {MAX_NAME_CHARS} 个字符", "the file name is too long")
    return name


def _agreeing_name(name: str, found: FileType) -> str:
    """`name` when its extension says what the content is; with the right one when it has
    none; refused when it says something else (a PNG called .pdf)."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or not re.fullmatch(r"[A-Za-z0-9]{1,8}", ext):
        return name + found.extensions[0]
    ext = "." + ext.lower()
    if ext not in found.extensions:
        raise refused(
            f"文件内容是 {found.label}，与扩展名 {ext} 不符",
            f"the content is {found.english}, not what {ext} says",
        )
    return name


# -- the bytes -----------------------------------------------------------------------------------


def receive(source: BinaryIO, folder: Path, limit: int) -> tuple[Path, str, int]:
    """Copy `source` in chunks into a new file in `folder`, never past `limit` + 1 bytes;
    returns (path, sha256, size). FileTooLarge, and nothing kept, past the limit."""
    folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix="incoming-", dir=folder)
    path, digest, size = Path(name), hashlib.sha256(), 0
    try:
        with os.fdopen(handle, "wb") as out:
            while chunk := source.read(min(CHUNK, limit + 1 - size)):
                size += len(chunk)
                if size > limit:
                    raise FileTooLarge(
                        f"文件超过上限 {size_words(limit)} / the file is larger than the limit"
                    )
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, digest.hexdigest(), size


def _ooxml(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()  # the central directory only: nothing is inflated
    except (zipfile.BadZipFile, OSError, ValueError):
        raise refused("压缩文件已损坏", "a damaged zip file") from None
    if "[Content_Types].xml" in names:
        for prefix, kind in _OOXML_PARTS:
            if any(n.startswith(prefix) for n in names):
                if any(n.lower().endswith("vbaproject.bin") for n in names):
                    raise refused("含宏的 Office 文档不接受", "Office documents with macros")
                return kind
    raise refused(f"不接受压缩包（zip）：只接受 {ACCEPTED_WORDS}",
                  "zip archives are not accepted")  # fmt: skip


def _ole2(path: Path) -> str:
    """Which Office program an OLE2 file is from, by its directory entries (128 bytes each,
    at 128-byte steps: a UTF-16 name, its length, the kind — 2 for a stream)."""
    wanted = {(n + "\0").encode("utf-16-le"): kind for n, kind in _OLE_STREAMS}
    with path.open("rb") as handle:
        offset = 0
        while block := handle.read(CHUNK):  # CHUNK is a multiple of 128
            for name, kind in wanted.items():
                at = block.find(name)
                while at != -1:
                    entry = block[at : at + 128]
                    if (
                        (offset + at) % 128 == 0
                        and len(entry) == 128
                        and int.from_bytes(entry[64:66], "little") == len(name)
                        and entry[66] == 2
                    ):
                        return kind
                    at = block.find(name, at + 1)
            offset += len(block)
    raise refused(f"不是 Word、Excel 或 PowerPoint 文档：只接受 {ACCEPTED_WORDS}",
                  "an OLE2 file that is no Office document (an installer?)")  # fmt: skip


def _image(path: Path, kind: str, pillow_format: str) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.format != pillow_format:
                    raise refused("图片内容与其格式不符", "the image is not what it claims")
                image.verify()
    except FileRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise refused("图片像素过多", "an image of too many pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise refused(f"{TYPES[kind].label}已损坏，无法打开",
                      f"{TYPES[kind].english} that cannot be opened") from None  # fmt: skip
    return kind


def identify(path: Path) -> FileType:
    """What the file is, by its content alone; FileRefused for all that is not accepted."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    if not head:
        raise refused("文件是空的", "the file is empty")
    if head.startswith(b"%PDF-"):
        return TYPES["pdf"]
    for magic, kind, pillow_format in _IMAGES:
        if head.startswith(magic):
            return TYPES[_image(path, kind, pillow_format)]
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return TYPES[_image(path, "webp", "WEBP")]
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return TYPES[_ooxml(path)]
    if head.startswith(_OLE2):
        return TYPES[_ole2(path)]
    text = head.lstrip(b"\xef\xbb\xbf").lower()
    if b"<svg" in text:
        raise refused("不接受 SVG 图片（可能含脚本）", "SVG is not accepted: it can carry script")
    if _MARKUP.match(text) or b"<html" in text or b"<script" in text:
        raise refused("不接受网页或 XML 文件（HTML/XML）", "HTML and XML are not accepted")
    if head.startswith(_EXECUTABLES):
        raise refused("不接受可执行文件或脚本", "executables are not accepted")
    raise refused(f"不支持的文件类型：只接受 {ACCEPTED_WORDS}",
                  "only PDF, images and Office documents are accepted")  # fmt: skip


def checked_upload(source: BinaryIO, filename: str | None, data_dir: Path, limit: int) -> NewFile:
    """An upload received into the store's incoming folder and checked; refused uploads
    leave nothing behind. The caller hands the result to geo.ledger.files.add_file, then
    removes `path` if it is still there."""
    name = checked_name(filename)
    path, sha256, size = receive(source, incoming_dir(data_dir), limit)
    try:
        found = identify(path)
        name = _agreeing_name(name, found)
        taken_at, point = photo_facts(path) if found.kind == "image" else (None, None)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return NewFile(path, sha256, size, name, found.media_type, found.kind, taken_at, point)


# -- photos --------------------------------------------------------------------------------------


def _degrees(value, ref) -> float | None:
    try:
        d, m, s = (float(part) for part in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    degrees = d + m / 60 + s / 3600
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    if str(ref or "").strip().upper() in ("S", "W"):
        degrees = -degrees
    return degrees if math.isfinite(degrees) else None


def _moment(text_: object, offset: object) -> datetime | None:
    try:
        moment = datetime.strptime(str(text_).strip("\x00 "), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    zone = BEIJING  # a phone's clock in the county: Beijing time
    found = re.fullmatch(r"([+-])(\d{2}):(\d{2})", str(offset or "").strip("\x00 "))
    if found:
        sign = -1 if found[1] == "-" else 1
        zone = timezone(sign * timedelta(hours=int(found[2]), minutes=int(found[3])))
    return moment.replace(tzinfo=zone)


def photo_facts(path: Path) -> tuple[datetime | None, tuple[float, float] | None]:
    """(taken_at, (lon, lat)) from a photo's EXIF; None for what it does not say. EXIF GPS
    is WGS84; it is kept as EPSG:4490 (CGCS2000) as it is: the two differ by centimetres."""
    try:
        with Image.open(path) as image:
            exif = image.getexif()
            details = exif.get_ifd(ExifTags.IFD.Exif)
            gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    except (OSError, SyntaxError, ValueError):
        return None, None
    taken = details.get(ExifTags.Base.DateTimeOriginal)
    taken_at = _moment(taken, details.get(ExifTags.Base.OffsetTimeOriginal)) if taken else None
    lat = _degrees(gps.get(ExifTags.GPS.GPSLatitude), gps.get(ExifTags.GPS.GPSLatitudeRef))
    lon = _degrees(gps.get(ExifTags.GPS.GPSLongitude), gps.get(ExifTags.GPS.GPSLongitudeRef))
    point = None
    if lat is not None and lon is not None and abs(lat) <= 90 and abs(lon) <= 180:
        point = None if lat == 0 and lon == 0 else (lon, lat)  # 0, 0: no fix
    return taken_at, point


def _jpeg(path: Path, px: int) -> bytes:
    with Image.open(path) as image:
        image.draft("RGB", (px, px))  # a JPEG is decoded at 1/2 … 1/8 scale: fast
        upright = ImageOps.exif_transpose(image)
        upright.thumbnail((px, px))
        if upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info:
            rgba = upright.convert("RGBA")
            upright = Image.new("RGB", rgba.size, "white")
            upright.paste(rgba, mask=rgba.getchannel("A"))
        elif upright.mode != "RGB":
            upright = upright.convert("RGB")
        out = BytesIO()
        upright.save(out, "JPEG", quality=82, optimize=True)
        return out.getvalue()


def thumbnail(data_dir: Path, sha256: str, px: int = THUMB_PX) -> bytes:
    """A small upright JPEG of a stored image, made once and kept (content-addressed, so a
    kept one is never stale). OSError when the stored bytes are gone."""
    kept = Path(data_dir) / "thumbs" / sha256[:2] / f"{sha256}-{px}.jpg"
    if kept.exists():
        return kept.read_bytes()
    body = _jpeg(blob_path(data_dir, sha256), px)
    kept.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=".thumb-", dir=kept.parent)
    with os.fdopen(handle, "wb") as out:
        out.write(body)
    os.replace(name, kept)
    return body
